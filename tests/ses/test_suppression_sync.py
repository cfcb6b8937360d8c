"""The suppression sync over real HTTP: boto3's sesv2 client against the loopback stand-in, on a
warehouse built from generated data."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bouncehouse.ses.pacing import PacedCaller
from bouncehouse.ses.suppression_sync import sync_suppressions
from ses_scenario import AS_OF
from sesv2_standin import SesV2StandIn

REPO_ROOT = Path(__file__).resolve().parents[2]


def ours(settings: Any) -> dict[str, str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return dict(con.execute("select lower(email), reason from suppression_list").fetchall())


def sync_log(settings: Any) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(
            "select action, email, ses_reason, state, dry_run, note from ops.ses_sync_log order by logged_at, email"
        ).fetchall()


def mirror(settings: Any) -> dict[str, tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.execute(
            "select email, reason, message_id, feedback_id from raw.ses_account_suppressions"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def writes(sesv2: SesV2StandIn) -> list[tuple[str, str]]:
    return [
        (op, params["EmailAddress"])
        for op, params in sesv2.requests
        if op in ("PutSuppressedDestination", "DeleteSuppressedDestination")
    ]


def test_dry_run_lists_exactly_the_differences_a_run_makes_them_and_a_second_makes_none(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    suppressed = ours(settings)
    permanent = {e: r for e, r in suppressed.items() if r in ("hard_bounce", "complaint")}
    assert len(permanent) >= 10 and "soft_bounce" in suppressed.values(), "generated data has all kinds"
    already, ses_only = sorted(permanent)[0], "ses.only@example.com"
    sesv2.add(already, "BOUNCE", message_id="m-1", feedback_id="f-1")
    sesv2.add(ses_only, "COMPLAINT", message_id="m-2", feedback_id="f-2")
    expected = {
        ("put", e, "COMPLAINT" if r == "complaint" else "BOUNCE")
        for e, r in permanent.items()
        if e != already
    }

    dry = sync_suppressions(settings, sesv2_client, dry_run=True)
    assert writes(sesv2) == [], "a dry run changes nothing on SES"
    assert {(a, e, r) for a, e, r, state, dry_run, _ in sync_log(settings)} == expected
    assert {row[3] for row in sync_log(settings)} == {"dry_run"}
    assert dry["puts"] == len(expected) and dry["deletes"] == 0
    # The pull mirrored SES's list with the details GetSuppressedDestination gives.
    assert mirror(settings) == {already: ("BOUNCE", "m-1", "f-1"), ses_only: ("COMPLAINT", "m-2", "f-2")}

    real = sync_suppressions(settings, sesv2_client)
    assert real["puts"] == len(expected)
    assert sorted(writes(sesv2)) == sorted(("PutSuppressedDestination", e) for _, e, _ in expected)
    assert {e: entry.reason for e, entry in sesv2.entries.items()} == {
        **{e: r for _, e, r in expected},
        already: "BOUNCE",
        ses_only: "COMPLAINT",
    }
    done = [row for row in sync_log(settings) if not row[4]]
    assert {(a, e, r) for a, e, r, *_ in done} == expected and {row[3] for row in done} == {"done"}

    before = len(sesv2.requests)
    again = sync_suppressions(settings, sesv2_client)
    assert (again["puts"], again["deletes"], again["full_pull"]) == (0, 0, False)
    assert writes(sesv2)[len(expected) :] == [], "a second run changes nothing"
    assert len(sync_log(settings)) == 2 * len(expected), "and logs nothing new"
    # The second pull was incremental: it asked only for what changed since the first one began.
    lists = [params for op, params in sesv2.requests[before:] if op == "ListSuppressedDestinations"]
    assert lists and all("StartDate" in params for params in lists)


def test_paging_pulls_every_page_and_the_mart_compares_both_lists(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    for n in range(23):
        sesv2.add(f"ses{n:02d}@example.com", "BOUNCE", message_id=f"m{n}", feedback_id=f"f{n}")
    counts = sync_suppressions(settings, sesv2_client, dry_run=True, page_size=5)
    lists = sesv2.calls("ListSuppressedDestinations")
    assert len(lists) == 5 and [p.get("NextToken") for p in lists] == [None, "5", "10", "15", "20"]
    assert all(p["PageSize"] == 5 for p in lists)
    assert counts["listed"] == 23 and len(mirror(settings)) == 23
    assert mirror(settings)["ses07@example.com"] == ("BOUNCE", "m7", "f7")


def test_a_run_stops_at_its_request_budget_and_the_next_carries_on(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    for n in range(6):
        sesv2.add(f"ses{n:02d}@example.com", "BOUNCE", message_id=f"m{n}", feedback_id=f"f{n}")
    expected = {e for e, r in ours(settings).items() if r in ("hard_bounce", "complaint")}
    budget = settings.with_overrides(ses_max_requests=8)
    first = sync_suppressions(budget, sesv2_client)
    assert first["requests"] == 8 and first["left_for_next_run"] == len(expected) - 7
    assert first["details_pending"] == 6, "no budget left for the details this time"
    runs = [first]
    while runs[-1]["left_for_next_run"] or runs[-1]["details_pending"]:
        runs.append(sync_suppressions(budget, sesv2_client))
        assert len(runs) < 10
    assert set(sesv2.entries) == expected | {f"ses{n:02d}@example.com" for n in range(6)}
    puts = [e for op, e in writes(sesv2) if op == "PutSuppressedDestination"]
    assert sorted(puts) == sorted(expected), "each change made once over the runs"
    assert mirror(settings)["ses05@example.com"] == ("BOUNCE", "m5", "f5")
    reads = [p["EmailAddress"] for op, p in sesv2.requests if op == "GetSuppressedDestination"]
    assert sorted(reads) == [f"ses{n:02d}@example.com" for n in range(6)], "our own puts need no read"


def test_throttling_backs_off_and_the_pace_holds(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    sesv2.throttle_next = 3
    waits: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    caller = PacedCaller(interval=0.5, sleep=sleep, clock=lambda: clock[0])
    counts = sync_suppressions(settings, sesv2_client, caller=caller)
    assert counts["throttled"] == 3 and counts["puts"] > 0
    assert len(sesv2.entries) == counts["puts"], "every change got through after the backoff"
    # Backoff doubles (0.5, 1, 2 s); after it, every request waits its turn (0.5 s apart on this clock).
    assert waits == [0.5, 1.0, 2.0] + [0.5] * (caller.requests - 4)
    assert caller.requests == len(sesv2.requests)


class Killed(BaseException):
    """The process dying (SIGKILL, OOM) between SES's answer and the warehouse write."""


@pytest.mark.parametrize("when", ["after_request", "before_request"])
def test_a_run_killed_midway_resumes_without_repeating_or_skipping(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any, when: str
) -> None:
    expected = {e for e, r in ours(settings).items() if r in ("hard_bounce", "complaint")}
    real_put = sesv2_client.put_suppressed_destination
    calls = {"n": 0}

    def dying_put(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4 and when == "before_request":
            raise Killed
        answer = real_put(**kwargs)
        if calls["n"] == 4:
            raise Killed
        return answer

    sesv2_client.put_suppressed_destination = dying_put
    with pytest.raises(Killed):
        sync_suppressions(settings, sesv2_client)
    assert [row[3] for row in sync_log(settings)].count("pending") == 1
    sesv2_client.put_suppressed_destination = real_put

    counts = sync_suppressions(settings, sesv2_client)
    assert counts["resumed"] == 1
    puts = [e for op, e in writes(sesv2) if op == "PutSuppressedDestination"]
    assert sorted(puts) == sorted(expected), "each address put exactly once across both runs"
    assert set(sesv2.entries) == expected
    states = [row[3] for row in sync_log(settings)]
    assert states.count("done") == len(expected) and "pending" not in states
    note = {row[1]: row[5] for row in sync_log(settings) if row[5]}
    assert list(note.values()) == [
        "resumed: SES had made it before the run was killed"
        if when == "after_request"
        else "resumed: made after the run was killed"
    ]
    assert sync_suppressions(settings, sesv2_client)["puts"] == 0


def test_a_pull_killed_between_pages_lists_again_but_reads_no_address_twice(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    for n in range(12):
        sesv2.add(f"ses{n:02d}@example.com", "COMPLAINT", message_id=f"m{n}", feedback_id=f"f{n}")
    real_list = sesv2_client.list_suppressed_destinations
    pages = {"n": 0}

    def dying_list(**kwargs: Any) -> Any:
        pages["n"] += 1
        if pages["n"] == 3:
            raise Killed
        return real_list(**kwargs)

    sesv2_client.list_suppressed_destinations = dying_list
    with pytest.raises(Killed):
        sync_suppressions(settings, sesv2_client, page_size=5)
    assert len(mirror(settings)) == 10 and writes(sesv2) == [], "two pages in, nothing pushed yet"
    sesv2_client.list_suppressed_destinations = real_list

    counts = sync_suppressions(settings, sesv2_client, page_size=5)
    assert counts["full_pull"] and counts["listed"] == 12 and counts["details_fetched"] == 12
    reads = [params["EmailAddress"] for op, params in sesv2.requests if op == "GetSuppressedDestination"]
    assert sorted(reads) == sorted(f"ses{n:02d}@example.com" for n in range(12)), "each address read once"
    assert len(mirror(settings)) == 12 + counts["puts"]


def _retransform(settings: Any, **changes: Any) -> Any:
    from bouncehouse.transform import transform

    settings = settings.with_overrides(**changes)
    transform(settings)
    return settings


def test_a_manual_lift_deletes_from_ses_only_what_bouncehouse_put_there_and_the_mart_compares(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    permanent = sorted(e for e, r in ours(settings).items() if r in ("hard_bounce", "complaint"))
    pushed, ses_own = permanent[0], permanent[1]
    sesv2.add(ses_own, "BOUNCE", message_id="m-own", feedback_id="f-own")  # SES suppressed it itself
    sync_suppressions(settings, sesv2_client)
    assert {pushed, ses_own} <= set(sesv2.entries)

    project = tmp_path / "dbt"
    shutil.copytree(REPO_ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs"))
    seed = project / "seeds" / "manual_suppressions.csv"
    lifted_at = (AS_OF - timedelta(hours=1)).isoformat(sep=" ")
    seed.write_text(
        seed.read_text() + f"{pushed},lift,works again,{lifted_at}\n{ses_own},lift,works again,{lifted_at}\n"
    )
    monkeypatch.setenv("BOUNCEHOUSE_DBT_PROJECT_DIR", str(project))
    settings = _retransform(settings)
    mine = ours(settings)
    assert pushed not in mine and ses_own not in mine
    # The transform's mart: both lifted addresses are now only on SES's list; the rest on both.
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        sides = dict(con.execute("select email, side from ses_suppression_comparison").fetchall())
    assert sides == {
        **{e: ("both" if e in sesv2.entries else "ours_only") for e in mine},
        pushed: "ses_only",
        ses_own: "ses_only",
    }

    def planned_deletes(policy: str) -> set[str]:
        counts = sync_suppressions(
            settings.with_overrides(ses_lift_policy=policy), sesv2_client, dry_run=True
        )
        return {c.split()[1] for c in counts["changes"] if c.startswith("delete ")}

    assert planned_deletes("never") == set()
    assert planned_deletes("all") == {pushed, ses_own}
    assert writes(sesv2)[-1][0] == "PutSuppressedDestination", "dry runs delete nothing"

    counts = sync_suppressions(settings.with_overrides(ses_lift_policy="ours"), sesv2_client)
    assert (counts["deletes"], counts["puts"]) == (1, 0)
    assert [w for w in writes(sesv2) if w[0] == "DeleteSuppressedDestination"] == [
        ("DeleteSuppressedDestination", pushed)
    ]
    assert pushed not in sesv2.entries and pushed not in mirror(settings) and ses_own in sesv2.entries
    assert sync_suppressions(settings.with_overrides(ses_lift_policy="ours"), sesv2_client)["deletes"] == 0
    # With the policy `all`, the address SES itself suppressed goes too.
    assert sync_suppressions(settings.with_overrides(ses_lift_policy="all"), sesv2_client)["deletes"] == 1
    assert ses_own not in sesv2.entries


def test_soft_bounces_pushed_only_when_configured_and_deleted_at_expiry(
    settings: Any, sesv2: SesV2StandIn, sesv2_client: Any
) -> None:
    soft = {e for e, r in ours(settings).items() if r == "soft_bounce"}
    assert soft
    sync_suppressions(settings, sesv2_client)
    assert not soft & set(sesv2.entries), "soft bounces stay off SES's list by default"

    settings = settings.with_overrides(ses_sync_soft_bounces=True)
    counts = sync_suppressions(settings, sesv2_client)
    assert counts["puts"] == len(soft) and {sesv2.entries[e].reason for e in soft} == {"BOUNCE"}

    # Two weeks on, the soft-bounce suppressions have expired; the permanent ones have not.
    settings = _retransform(settings, as_of=AS_OF + timedelta(days=15))
    assert not soft & set(ours(settings))
    counts = sync_suppressions(settings, sesv2_client)
    assert counts["deletes"] == len(soft) and counts["puts"] == 0
    assert not soft & set(sesv2.entries)
    assert {e for op, e in writes(sesv2) if op == "DeleteSuppressedDestination"} == soft


def test_the_cli_dry_run_prints_its_counts_and_an_unreachable_ses_is_one_line(
    settings: Any, sesv2: SesV2StandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from bouncehouse.cli import main

    monkeypatch.setenv("BOUNCEHOUSE_SES_ENDPOINT_URL", sesv2.endpoint_url)
    monkeypatch.setenv("BOUNCEHOUSE_SES_REQUESTS_PER_SECOND", "100")
    args = ["ses-sync", "--warehouse", str(settings.warehouse), "--as-of", AS_OF.isoformat(), "--dry-run"]
    assert main(args) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    permanent = [r for r in ours(settings).values() if r in ("hard_bounce", "complaint")]
    assert counts["dry_run"] is True and counts["puts"] == len(permanent)
    assert writes(sesv2) == []

    monkeypatch.setenv("BOUNCEHOUSE_SES_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bouncehouse ses-sync: error: SES: ") and "Traceback" not in "\n".join(err)
