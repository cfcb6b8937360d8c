"""``python -m bouncehouse run`` as a real process on hand-made Firehose objects: ingest, dbt build,
digest and prune in order, with the contract's statuses, suppressions and digests, and a second run
that changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
from bouncehouse import warehouse
from landing_builder import envelope, write_object
from ses_events import Message

REPO_ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-22T06:00:00Z"  # the digest reports on 2026-11-21
SENT = datetime(2026, 11, 21, 10, 0)


def at(minutes: int) -> datetime:
    return SENT.replace(minute=minutes)


def landing_objects(root: Path) -> None:
    hard = Message("m-hard", ["Bob <BOB@Ex.com>"], SENT, tags={"user_type": ["customer"]})
    complained = Message("m-comp", ["carol@ex.com"], SENT, tags={"user_type": ["trial"]})
    out_of_office = Message("m-ooo", ["dan@ex.com"], SENT, tags={"user_type": ["customer"]})
    not_spam = Message("m-ns", ["erin@ex.com"], SENT, tags={"user_type": ["trial"]})
    records = [
        envelope(hard.send().payload, "sns-1"),
        envelope(hard.bounce(at(1), "bob@ex.com").payload, "sns-2"),
        envelope(complained.send().payload, "sns-3"),
        complained.delivery(at(1), "carol@ex.com").payload,
        envelope(complained.complaint(at(30), "carol@ex.com").payload, "sns-4"),
        out_of_office.send().payload,
        out_of_office.delivery(at(1), "dan@ex.com").payload,
        out_of_office.bounce(at(2), "dan@ex.com", bounce_type="Transient", sub_type="General").payload,
        not_spam.delivery(at(1), "erin@ex.com").payload,
        not_spam.complaint(at(40), "erin@ex.com", feedback_type="not-spam").payload,
        b"not json at all",
    ]
    # At-least-once delivery: two of the first object's records again (a Firehose retry) and one SNS duplicate.
    write_object(root, "2026/11/21/10/a", records[:6], gzipped=True)
    write_object(root, "2026/11/21/11/b", [*records[4:], records[0]], framing="concatenated")


def run(
    tmp_path: Path, *, customers_admin: str = "cs@admin.example", expect: int = 0
) -> tuple[dict, subprocess.CompletedProcess]:
    routes = tmp_path / "routes.yml"
    routes.write_text(
        "routes:\n"
        f"  - {{name: customers, admins: [{customers_admin}], when: {{tag: user_type, equals: customer}}}}\n"
        "  - {name: rest, admins: [ops@admin.example]}\n"
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "bouncehouse", "run",
            "--source", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "wh.duckdb"),
            "--as-of", AS_OF, "--outbox", str(tmp_path / "outbox"), "--routes", str(routes),
        ],
        capture_output=True, text=True, cwd=REPO_ROOT, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert done.returncode == expect, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done


def test_run_loads_builds_digests_and_prunes_once(tmp_path: Path) -> None:
    landing_objects(tmp_path / "landing")

    first, _ = run(tmp_path)
    assert {k: first[k] for k in ("objects_loaded", "objects_skipped", "events_loaded", "duplicates", "rejected")} == {
        "objects_loaded": 2, "objects_skipped": 0, "events_loaded": 10, "duplicates": 3, "rejected": 1,
    }  # fmt: skip
    assert set(first) >= {"ingest", "transform", "digest", "prune"}

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        statuses = con.execute(
            "select message_id, recipient, final_status, is_auto_reply from message_status order by 1"
        ).fetchall()
        suppressed = con.execute(
            "select email, reason, expires_at from suppression_list order by 1"
        ).fetchall()
        daily = con.execute(
            "select day, sent, delivered, hard_bounced, soft_bounced, complained from deliverability_daily"
        ).fetchall()
    finally:
        con.close()
    assert statuses == [
        ("m-comp", "carol@ex.com", "complained", False),
        ("m-hard", "bob@ex.com", "hard_bounced", False),
        ("m-ns", "erin@ex.com", "delivered", False),
        ("m-ooo", "dan@ex.com", "delivered", True),
    ]
    assert suppressed == [("bob@ex.com", "hard_bounce", None), ("carol@ex.com", "complaint", None)]
    assert [row[1:] for row in daily] == [(4, 2, 1, 0, 1)]

    digests = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert [name.rsplit("-", 1)[0] for name in digests] == [
        "digest_2026-11-21_customers",
        "digest_2026-11-21_rest",
    ]
    customers = next((tmp_path / "outbox").glob("*customers*.eml")).read_bytes()
    assert b"bob@ex.com" in customers and b"carol@ex.com" not in customers

    second, _ = run(tmp_path)
    assert (second["objects_loaded"], second["objects_skipped"], second["events_loaded"]) == (0, 2, 0)
    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.eml")) == digests


def test_run_with_an_unconfirmed_digest_finishes_every_step_then_fails(tmp_path: Path) -> None:
    # A previous SMTP send of the customers digest died mid-transmission (left in 'sending'): its outcome
    # is unknown, so this run must not resend it, must still send the other route and prune, then fail.
    landing_objects(tmp_path / "landing")
    with warehouse.session(tmp_path / "wh.duckdb") as con:
        con.execute(
            "insert into ops.digest_log (route, digest_day, state, recipients, transport, attempts, claimed_at) "
            "values ('customers', date '2026-11-21', 'sending', ['cs@admin.example'], 'smtp', 1, timestamp '2026-11-22 02:00')"
        )

    summary, done = run(tmp_path, expect=2)

    error_lines = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert error_lines and "customers" in error_lines[-1], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert summary["digest"]["problems"] == {"customers": "unconfirmed"}
    assert summary["events_loaded"] == 10
    assert "prune" in summary, "prune must still run after a digest route failed"
    assert [p.name.rsplit("-", 1)[0] for p in (tmp_path / "outbox").glob("*.eml")] == [
        "digest_2026-11-21_rest"
    ]
