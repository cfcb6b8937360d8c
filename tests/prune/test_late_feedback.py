"""Late feedback for pruned messages, through the real code paths: ingest -> transform -> prune -> a late
landing object -> ingest -> transform. A late Complaint or Bounce of a pruned message must load and count
exactly as it would have had prune never run (the oracle: a second warehouse that loads the same landing
tree and is never pruned), while a late copy of an event prune removed stays dropped."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bouncehouse.config import Settings, load_settings
from bouncehouse.ingest import ingest
from bouncehouse.prune import prune
from bouncehouse.transform import transform
from landing_builder import envelope, write_object
from ses_events import Event, Message
from warehouse_reads import fetch

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prune")]

OLD = datetime(2026, 10, 1, 9, 0)  # well before the 30-day cutoff of AS_OF (2026-10-23 06:00)
LATE = datetime(2026, 11, 20, 14, 0)  # a feedback loop's complaint, seven weeks after the send
AS_OF = datetime(2026, 11, 22, 6, 0)
RECENT = AS_OF - timedelta(days=3)
CUSTOMER = {"user_type": ["customer"]}
DIGEST = {"bouncehouse_message": ["digest"]}

# Every column of message_status but last_loaded_at (when ingest loaded the events: the wall clock).
STATUS_COLUMNS = (
    "message_id, recipient, final_status, status_at, sent_at, bounce_type, bounce_sub_type, diagnostic_code, "
    "complaint_feedback_type, is_auto_reply, opened, clicked, delivered, tags::varchar, is_digest, "
    "source_address, subject, last_event_at"
)


def marts(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "message_status": fetch(path, f"select {STATUS_COLUMNS} from message_status order by all"),
        "suppression_list": fetch(path, "select * from suppression_list order by all"),
        "deliverability_daily": fetch(
            path, "select day::date, * exclude (day) from deliverability_daily order by day"
        ),
    }


def day_figures(path: Path, day: datetime) -> dict[str, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cursor = con.execute("select * from deliverability_daily where day::date = ?", [day.date()])
        names = [d[0] for d in cursor.description]
        (row,) = cursor.fetchall()
        return dict(zip(names, row, strict=True))
    finally:
        con.close()


def settings_for(landing: Path, path: Path) -> Settings:
    return load_settings({"source": str(landing), "warehouse": str(path), "as_of": AS_OF, "lock_timeout": 30})


def sns(events: list[Event], prefix: str) -> list[dict[str, Any]]:
    return [envelope(e.payload, f"{prefix}-{n}") for n, e in enumerate(events)]


# The original feedback: one Firehose object, every record in an SNS envelope (sns-<n>).
NEWS = Message("news-1", ["angry@ex.com", "away@ex.com", "quiet@ex.com", "slow@ex.com"], OLD, tags=CUSTOMER)
CALM = Message("news-2", ["calm@ex.com"], OLD + timedelta(hours=3), tags=CUSTOMER)
ADMIN = Message("digest-1", ["admin@ex.com"], OLD + timedelta(hours=1), tags=DIGEST)
FRESH = Message("news-3", ["fresh@ex.com"], RECENT, tags=CUSTOMER)
ORIGINAL = [
    NEWS.send(),
    NEWS.delivery(OLD + timedelta(minutes=1), "angry@ex.com", "away@ex.com"),
    NEWS.delay(OLD + timedelta(minutes=5), "slow@ex.com"),
    NEWS.delay(OLD + timedelta(minutes=65), "slow@ex.com"),
    NEWS.open(OLD + timedelta(hours=2)),
    CALM.send(),
    CALM.delivery(OLD + timedelta(hours=3, minutes=1), "calm@ex.com"),
    ADMIN.send(),
    ADMIN.delivery(OLD + timedelta(hours=1, minutes=1), "admin@ex.com"),
    FRESH.send(),
    FRESH.delivery(RECENT + timedelta(minutes=1), "fresh@ex.com"),
]
ORIGINAL_RECORDS = sns(ORIGINAL, "sns")
# Weeks later: a complaint, an out-of-office reply (Transient/General) for a delivered recipient and a
# complaint about the digest's own email, all of pruned messages; and SNS redelivering two records of
# the original object (same MessageId: duplicates, whatever prune did).
LATE_RECORDS = [
    *sns(
        [
            NEWS.complaint(LATE, "angry@ex.com"),
            NEWS.soft_bounce(OLD + timedelta(minutes=10), "away@ex.com", sub_type="General"),
            ADMIN.complaint(LATE, "admin@ex.com"),
        ],
        "sns-late",
    ),
    ORIGINAL_RECORDS[1],  # the Delivery to angry and away
    ORIGINAL_RECORDS[0],  # the Send
]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    write_object(root, "2026/10/01/09/original", ORIGINAL_RECORDS)
    return root


def add_late_object(landing: Path) -> None:
    write_object(landing, "2026/11/21/10/late", LATE_RECORDS)


def test_a_late_complaint_and_auto_reply_of_pruned_messages_count_as_if_never_pruned(
    landing: Path, tmp_path: Path
) -> None:
    pruned_path = tmp_path / "pruned" / "bouncehouse.duckdb"
    settings = settings_for(landing, pruned_path)
    assert ingest(settings)["events_loaded"] == len(ORIGINAL)
    transform(settings)
    before = marts(pruned_path)
    old_day_before = day_figures(pruned_path, OLD)
    assert (old_day_before["sent"], old_day_before["delivered"], old_day_before["delayed"]) == (5, 3, 1)

    counts = prune(settings)

    assert counts["messages"] == 3 and counts["recipients"] == 6
    assert {m for (m,) in fetch(pruned_path, "select message_id from raw.pruned_messages")} == {
        "news-1",
        "news-2",
        "digest-1",
    }
    # What prune remembers of each recipient is exactly what message_status said.
    assert fetch(
        pruned_path,
        "select message_id, recipient, final_status, status_at, sent_at, is_digest "
        "from raw.pruned_recipients order by all",
    ) == [
        row[:5] + (row[14],) for row in before["message_status"] if row[0] in ("news-1", "news-2", "digest-1")
    ]

    add_late_object(landing)
    late = ingest(settings)

    # The three late feedback events load; the redelivered Send and Delivery are still dropped.
    assert (late["objects_loaded"], late["events_loaded"], late["duplicates"]) == (1, 3, 2)
    assert fetch(
        pruned_path,
        "select message_id, event_type, event_at from raw.ses_events "
        "where message_id in ('news-1', 'digest-1') order by all",
    ) == [
        ("digest-1", "Complaint", LATE),
        ("news-1", "Bounce", OLD + timedelta(minutes=10)),
        ("news-1", "Complaint", LATE),
    ]

    transform(settings)
    after = marts(pruned_path)

    # message_status: the revived recipients are as they were, plus what the late feedback says.
    status = {
        (r[0], r[1]): r
        for r in fetch(
            pruned_path,
            "select message_id, recipient, final_status, sent_at, is_auto_reply, bounce_type, "
            "bounce_sub_type, complaint_feedback_type, status_at, delivered, opened "
            "from message_status where message_id in ('news-1', 'digest-1')",
        )
    }
    assert status[("news-1", "angry@ex.com")][2:] == (
        "complained", OLD, False, None, None, "abuse", LATE, True, True
    )  # fmt: skip
    # The out-of-office reply: delivered, an auto-reply, not a soft bounce.
    assert status[("news-1", "away@ex.com")][2:] == (
        "delivered", OLD, True, "Transient", "General", None, OLD + timedelta(minutes=1), True, True
    )  # fmt: skip
    assert status[("news-1", "quiet@ex.com")][2] == "sent"
    assert status[("news-1", "slow@ex.com")][2] == "delayed"
    assert status[("digest-1", "admin@ex.com")][2] == "complained"
    assert ("news-2", "calm@ex.com") not in status

    # suppression_list: both complainants suppressed; the auto-reply suppresses no one.
    suppressed = {(email, reason) for email, reason, *_ in after["suppression_list"]}
    assert suppressed == {("angry@ex.com", "complaint"), ("admin@ex.com", "complaint")}

    # deliverability_daily: the send day still counts 5 sent; angry moves from delivered to complained.
    old_day = day_figures(pruned_path, OLD)
    assert old_day["sent"] == old_day_before["sent"]
    assert old_day["delivered"] == old_day_before["delivered"] - 1
    assert old_day["complained"] == old_day_before["complained"] + 1
    assert old_day["soft_bounced"] == old_day_before["soft_bounced"] == 0
    assert old_day["delayed"] == old_day_before["delayed"]
    unchanged_days = [row for row in after["deliverability_daily"] if row[0] != OLD.date()]
    assert unchanged_days == [row for row in before["deliverability_daily"] if row[0] != OLD.date()]

    # The oracle: the same landing tree, never pruned. Every figure, status and suppression agrees.
    oracle_path = tmp_path / "oracle" / "bouncehouse.duckdb"
    oracle_settings = settings_for(landing, oracle_path)
    oracle_counts = ingest(oracle_settings)
    assert (oracle_counts["events_loaded"], oracle_counts["duplicates"]) == (len(ORIGINAL) + 3, 2)
    transform(oracle_settings)
    oracle = marts(oracle_path)
    assert after["deliverability_daily"] == oracle["deliverability_daily"]
    assert after["suppression_list"] == oracle["suppression_list"]
    assert after["message_status"] == [row for row in oracle["message_status"] if row[0] != "news-2"]

    # A revived message now holds a complaint or bounce: prune keeps it, and nothing changes.
    again = prune(settings)
    assert again["messages"] == 0
    assert marts(pruned_path) == after
