"""Two senders, one digest: the claim in ``ops.digest_log`` has an owner, so a second run of the same day
(an operator's ``python -m bouncehouse digest`` while the DAG sends) never sends a route twice; and a
route that was not sent or not confirmed fails the run, after every other route had its turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bouncehouse.digest as digest
import pytest
from bouncehouse import warehouse
from bouncehouse.config import Settings
from bouncehouse.digest import DigestDeliveryError, SmtpSettings, send_digests
from digest_scenario import AS_OF, DAY, EXPECTED_ROWS, ROUTES_YAML, SUPPRESSED_ADMIN, DigestEnv
from smtp_handlers import FirstTryPerRouteHandler, FlakyHandler

ROUTES = list(EXPECTED_ROWS)
# A route whose only admin is on the suppression list: nobody can receive its digest.
NOBODY_ROUTE = f"""
  - name: alerts
    admins: [{SUPPRESSED_ADMIN}]
    when: {{tag: team, equals: alerts}}
"""


def _only_trials(env: DigestEnv) -> None:
    (env.home / "routes.yml").write_text(
        "routes:\n  - name: trials\n    admins: [growth@example.com]\n    when: {tag: user_type, equals: trial}\n"
    )


def _cli(settings: Settings, smtp: SmtpSettings | None = None) -> list[str]:
    return [
        sys.executable, "-m", "bouncehouse", "digest", "--warehouse", str(settings.warehouse),
        "--as-of", AS_OF.isoformat() + "Z", "--outbox", str(settings.outbox), "--routes", str(settings.routes),
        "--digest-transport", "smtp" if smtp else "outbox",
    ]  # fmt: skip


def _cli_env(smtp: SmtpSettings | None = None) -> dict[str, str]:
    env = dict(os.environ, BOUNCEHOUSE_DIGEST_SENDER="bouncehouse@example.com")
    if smtp:
        env.update(BOUNCEHOUSE_SMTP_HOST=smtp.host, BOUNCEHOUSE_SMTP_PORT=str(smtp.port))
    return env


def run_cli(settings: Settings, smtp: SmtpSettings | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m bouncehouse digest`` in a process of its own, as an operator runs it by hand."""
    return subprocess.run(
        _cli(settings, smtp), env=_cli_env(smtp), capture_output=True, text=True, timeout=180, check=False
    )


def _summary(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def _states(settings: Settings) -> dict[str, tuple[Any, ...]]:
    with warehouse.session(settings.warehouse) as con:
        rows = con.execute(
            "select route, state, transport from ops.digest_log where digest_day = ?", [DAY]
        ).fetchall()
    return {route: tuple(rest) for route, *rest in rows}


def _outbox_routes(settings: Settings) -> list[str]:
    return sorted(
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["X-Bouncehouse-Route"])
        for path in Path(settings.outbox).glob("*.eml")
    )


def _insert_claim(settings: Settings, route: str, state: str, transport: str, **owner: Any) -> None:
    columns = ["route", "digest_day", "state", "recipients", "transport", "attempts", "claimed_at", *owner]
    values = [route, DAY.date(), state, ["growth@example.com"], transport, 1, AS_OF, *owner.values()]
    with warehouse.session(settings.warehouse) as con:
        con.execute(
            f"insert into ops.digest_log ({', '.join(columns)}) values ({', '.join('?' * len(values))})",
            values,
        )


def _wall_clock() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- one owner per claim -----------------------------------------------------------------------------


def test_a_run_arriving_between_the_claim_and_the_send_does_not_send(
    digest_env: DigestEnv, custom_smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG has claimed the route; before it transmits, an operator runs the digest by hand."""
    _only_trials(digest_env)
    handler = FlakyHandler(failures=0)
    smtp = custom_smtp(handler)
    settings = digest_env.with_(digest_transport="smtp")
    claim = digest._claim
    hand_runs: list[subprocess.CompletedProcess[str]] = []

    def claim_then_run_by_hand(*args: Any, **kwargs: Any) -> Any:
        decision = claim(*args, **kwargs)
        hand_runs.append(run_cli(settings, smtp))
        return decision

    monkeypatch.setattr(digest, "_claim", claim_then_run_by_hand)
    counts = send_digests(settings, smtp=smtp)

    assert len(handler.received) == 1, "the digest went out twice"
    assert counts["sent"] == 1
    [hand] = hand_runs
    assert hand.returncode == 2
    assert "trials" in _error_line(hand.stderr) and "another run" in _error_line(hand.stderr)
    assert _summary(hand.stdout)["in_progress"] == 1 and _summary(hand.stdout)["sent"] == 0
    assert _states(settings) == {"trials": ("sent", "smtp")}


def test_a_run_arriving_during_the_retry_backoff_does_not_send(
    digest_env: DigestEnv, custom_smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt got a 451; while the DAG waits to retry (state 'retrying'), a hand run starts."""
    _only_trials(digest_env)
    handler = FlakyHandler(failures=1)
    smtp = custom_smtp(handler)
    settings = digest_env.with_(digest_transport="smtp")
    hand_runs: list[subprocess.CompletedProcess[str]] = []

    def sleep(seconds: float) -> None:
        if not hand_runs:
            hand_runs.append(run_cli(settings, smtp))
        time.sleep(seconds)

    monkeypatch.setattr(digest, "time", SimpleNamespace(sleep=sleep))
    counts = send_digests(settings, smtp=smtp)

    assert len(handler.received) == 1, "the digest went out twice"
    assert counts["sent"] == 1 and handler.attempts == 2
    [hand] = hand_runs
    assert hand.returncode == 2 and _summary(hand.stdout)["in_progress"] == 1
    assert _states(settings) == {"trials": ("sent", "smtp")}


def test_two_concurrent_runs_send_every_route_exactly_once(digest_env: DigestEnv, custom_smtp) -> None:
    """Two real processes on one warehouse and one SMTP server. Each route's first DATA gets a 451, so
    every route sits in 'retrying' for a backoff while the other process is looking at it."""
    handler = FirstTryPerRouteHandler()
    smtp = custom_smtp(handler)
    settings = digest_env.with_(digest_transport="smtp")
    processes = [
        subprocess.Popen(
            _cli(settings, smtp),
            env=_cli_env(smtp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]

    assert {route: len(messages) for route, messages in handler.received.items()} == dict.fromkeys(ROUTES, 1)
    summaries = [_summary(stdout) for stdout, _ in outputs]
    assert sum(summary["sent"] for summary in summaries) == len(ROUTES)
    for process, summary, (_, stderr) in zip(processes, summaries, outputs, strict=True):
        # Each run either sent a route, found it sent, or left it to the run that was sending it.
        assert summary["sent"] + summary["already_sent"] + summary["in_progress"] == len(ROUTES), summary
        assert process.returncode == (2 if summary["in_progress"] else 0), stderr[-2000:]
    assert _states(settings) == dict.fromkeys(ROUTES, ("sent", "smtp"))


def test_a_live_claim_of_another_run_is_left_alone(digest_env: DigestEnv) -> None:
    _only_trials(digest_env)
    lease = _wall_clock() + timedelta(minutes=5)
    _insert_claim(
        digest_env.settings, "trials", "retrying", "outbox", claimed_by="dag-run-1", lease_until=lease
    )
    with pytest.raises(DigestDeliveryError, match=r"trials: .*another run \(dag-run-1"):
        send_digests(digest_env.settings)
    assert _outbox_routes(digest_env.settings) == []
    with warehouse.session(digest_env.settings.warehouse) as con:
        assert con.execute("select state, claimed_by, lease_until from ops.digest_log").fetchall() == [
            ("retrying", "dag-run-1", lease)
        ]


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param({"claimed_by": "dead-run", "lease_until": datetime(2026, 1, 1)}, id="expired-lease"),
        pytest.param({}, id="row-from-before-owners"),
    ],
)
def test_a_retrying_claim_nobody_holds_is_taken_over_and_sent(digest_env: DigestEnv, owner: dict) -> None:
    """A run that died between attempts leaves 'retrying' (certainly not delivered): the next run sends."""
    _only_trials(digest_env)
    _insert_claim(digest_env.settings, "trials", "retrying", "outbox", **owner)
    counts = send_digests(digest_env.settings)
    assert counts["sent"] == 1 and _outbox_routes(digest_env.settings) == ["trials"]
    with warehouse.session(digest_env.settings.warehouse) as con:
        [(state, holder)] = con.execute("select state, claimed_by from ops.digest_log").fetchall()
    assert state == "sent" and holder not in (None, "dead-run")


OLD_DIGEST_LOG = """
drop table if exists ops.digest_log;
create table ops.digest_log (
    route varchar not null, digest_day date not null, state varchar not null, recipients varchar[] not null,
    skipped varchar[], transport varchar not null, message_ref varchar, message_id varchar, subject varchar,
    bounced bigint, complained bigint, attempts integer not null default 0, last_error varchar,
    claimed_at timestamp not null, sent_at timestamp, primary key (route, digest_day)
);
"""


def test_a_digest_log_made_before_owners_gains_the_columns_and_keeps_its_rows(digest_env: DigestEnv) -> None:
    import duckdb

    _only_trials(digest_env)
    con = duckdb.connect(str(digest_env.settings.warehouse))
    con.execute(OLD_DIGEST_LOG)
    con.close()
    _insert_claim(digest_env.settings, "trials", "sent", "smtp")
    assert send_digests(digest_env.settings)["already_sent"] == 1
    with warehouse.session(digest_env.settings.warehouse) as con:
        columns = {row[0] for row in con.execute("describe ops.digest_log").fetchall()}
        assert {"claimed_by", "lease_until"} <= columns
        assert con.execute("select route, state from ops.digest_log").fetchall() == [("trials", "sent")]


# --- a route not sent fails the run ------------------------------------------------------------------


def test_a_route_whose_admins_are_all_suppressed_is_reported_and_the_others_go_out(
    digest_env: DigestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody to send to is not a failed send: nothing goes to the suppressed admin, the run says so
    (an error log line and "problems"), and it does not fail (see REPORTED_ONLY)."""
    (digest_env.home / "routes.yml").write_text(ROUTES_YAML + NOBODY_ROUTE)
    with caplog.at_level("ERROR", logger="bouncehouse.digest"):
        counts = send_digests(digest_env.settings)
    assert counts["undeliverable"] == 1 and counts["sent"] == len(ROUTES)
    assert counts["problems"] == {"alerts": "undeliverable"}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("alerts" in e and SUPPRESSED_ADMIN in e for e in errors), errors
    # Every other route went out and is logged as today; the undeliverable one has no row.
    assert _outbox_routes(digest_env.settings) == sorted(ROUTES)
    assert _states(digest_env.settings) == dict.fromkeys(ROUTES, ("sent", "outbox"))


def test_cli_reports_an_undeliverable_route_and_succeeds(digest_env: DigestEnv) -> None:
    (digest_env.home / "routes.yml").write_text(ROUTES_YAML + NOBODY_ROUTE)
    done = run_cli(digest_env.settings)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "alerts" in done.stderr and SUPPRESSED_ADMIN in done.stderr
    summary = _summary(done.stdout)
    assert (summary["sent"], summary["undeliverable"], summary["routes"]) == (len(ROUTES), 1, len(ROUTES) + 1)
    assert summary["problems"] == {"alerts": "undeliverable"}
    assert _outbox_routes(digest_env.settings) == sorted(ROUTES)


def test_cli_fails_on_an_earlier_send_whose_outcome_is_unknown(digest_env: DigestEnv) -> None:
    """A previous run left 'trials' in 'sending' over SMTP: not resent, the others are, and the run fails."""
    _insert_claim(digest_env.settings, "trials", "sending", "smtp")
    done = run_cli(digest_env.settings)
    assert done.returncode == 2, done.stderr[-2000:]
    error = _error_line(done.stderr)
    assert "trials" in error and "unknown" in error
    summary = _summary(done.stdout)
    assert (summary["sent"], summary["unconfirmed"]) == (len(ROUTES) - 1, 1)
    assert _outbox_routes(digest_env.settings) == sorted(set(ROUTES) - {"trials"})
    assert _states(digest_env.settings)["trials"] == ("sending", "smtp")
