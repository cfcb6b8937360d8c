"""Ingest from a local folder: every input shape, every kind of bad record, exactly-once loading."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from bouncehouse.errors import ConfigError
from landing_builder import bare_event_id, envelope, object_bytes, record_offsets, ses_event, write_object

HOUR = "2026/11/20/10"


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", ["obj", "obj.gz", "obj.json"])
@pytest.mark.parametrize("framing", ["newline", "concatenated"])
def test_every_shape_loads_the_same_events(lake, gzipped, name, framing):
    """Compression is detected from the content (a .gz name on a plain object and no extension on a
    gzip one both load), and either framing splits into the same records."""
    records = [
        envelope(ses_event("Send", "m-1"), "sns-1"),
        envelope(ses_event("Delivery", "m-1"), "sns-2"),
        ses_event("Bounce", "m-2", at="2026-11-20T11:00:00.000Z", identity=True),  # bare notification
        ses_event("Open", "m-1", at="2026-11-20T12:30:00.000Z"),  # bare event publishing
    ]
    write_object(lake.landing, f"{HOUR}/{name}", records, gzipped=gzipped, framing=framing)

    counts = lake.ingest()

    assert counts["objects_loaded"] == 1 and counts["events_loaded"] == 4
    assert counts["duplicates"] == 0 and counts["rejected"] == 0
    rows = lake.rows(
        "select event_id, event_type, message_id, event_at, source_key, sns_message_id, source_position "
        "from raw.ses_events order by source_position"
    )
    assert rows == [
        ("sns-1", "Send", "m-1", datetime(2026, 11, 20, 10, 0), f"{HOUR}/{name}", "sns-1", 1),
        ("sns-2", "Delivery", "m-1", datetime(2026, 11, 20, 10, 0, 5), f"{HOUR}/{name}", "sns-2", 2),
        (bare_event_id(records[2]), "Bounce", "m-2", datetime(2026, 11, 20, 11), f"{HOUR}/{name}", None, 3),
        (bare_event_id(records[3]), "Open", "m-1", datetime(2026, 11, 20, 12, 30), f"{HOUR}/{name}", None, 4),
    ]
    compression = lake.scalar("select compression from raw.ingested_objects")
    assert compression == ("gzip" if gzipped else "none")


def test_payload_is_the_ses_json_not_the_envelope(lake):
    event = ses_event(
        "Complaint",
        "m-9",
        complaint={"complaintFeedbackType": "abuse", "timestamp": "2026-11-20T13:00:00.000Z"},
    )
    write_object(lake.landing, f"{HOUR}/a", [envelope(event, "sns-9")])
    lake.ingest()
    payload, event_at = lake.rows("select payload, event_at from raw.ses_events")[0]
    assert json.loads(payload) == event
    assert event_at == datetime(2026, 11, 20, 13)


def test_brace_pair_inside_a_string_does_not_split_the_record(lake):
    """`}{` can appear inside a value (a diagnostic code, a subject); only real boundaries split."""
    tricky = ses_event(
        "Bounce", "m-3", bounce={"timestamp": "2026-11-20T10:01:00.000Z", "bouncedRecipients": [
            {"emailAddress": "a@example.org", "diagnosticCode": 'smtp; 550 {"x":1}{"y":2} mailbox }{ full'}
        ]},
    )  # fmt: skip
    records = [
        tricky,
        envelope(tricky | {"mail": tricky["mail"] | {"messageId": "m-4"}}, "sns-4"),
        ses_event("Send", "m-5"),
    ]
    write_object(lake.landing, f"{HOUR}/back-to-back", records, framing="concatenated")
    write_object(lake.landing, f"{HOUR}/lines.gz", records, framing="newline", gzipped=True)

    counts = lake.ingest()

    assert counts["rejected"] == 0
    assert counts["events_loaded"] == 3 and counts["duplicates"] == 3
    payloads = {m: json.loads(p) for m, p in lake.rows("select message_id, payload from raw.ses_events")}
    assert payloads["m-3"]["bounce"]["bouncedRecipients"][0]["diagnosticCode"].endswith("mailbox }{ full")


def test_unknown_event_types_and_fields_are_kept(lake):
    future = ses_event("Quarantine", "m-6", at="2026-11-20T14:00:00.000Z", newTopLevel={"kept": True})
    write_object(lake.landing, f"{HOUR}/a", [envelope(future, "sns-6")])
    counts = lake.ingest()
    assert counts["events_loaded"] == 1 and counts["rejected"] == 0
    event_type, payload, event_at = lake.rows("select event_type, payload, event_at from raw.ses_events")[0]
    assert event_type == "Quarantine"
    assert json.loads(payload)["newTopLevel"] == {"kept": True}
    assert event_at == datetime(2026, 11, 20, 10)  # a type ingest does not know: the send time


def test_each_bad_record_is_set_aside_with_reason_and_position_and_the_rest_loads(lake):
    good = [envelope(ses_event("Delivery", f"m-{i}"), f"sns-{i}") for i in range(6)]
    bad_utf8 = object_bytes([ses_event("Send", "m-x", subject="Caf__")]).strip().replace(b"__", b"\xe9")
    records = [
        good[0],
        b'{"Type":"Notification","MessageId":"sns-cut","Message":"{\\"eventType\\":\\"Se',  # cut off
        good[1],
        bad_utf8,
        good[2],
        # (SES's "Successfully validated SNS topic" text and a SubscriptionConfirmation are named
        # for what they are: test_ingest_not_feedback.py.)
        envelope("Hello world!", "sns-text"),  # a Notification of some other publisher
        good[3],
        envelope({"uuid": "12341234uu", "status": "Processing"}, "sns-other"),  # JSON, but not SES's
        good[4],
        {"ticker_symbol": "QXZ", "price": 84.51},
        good[5],
    ]
    write_object(lake.landing, f"{HOUR}/mixed", records)

    counts = lake.ingest()

    assert counts["events_loaded"] == 6 and counts["rejected"] == 5 and counts["records"] == 11
    assert lake.scalar("select count(*) from raw.ses_events") == 6
    rejected = lake.rows(
        "select source_key, position, byte_offset, error, excerpt from raw.rejected_records order by position"
    )
    offsets = record_offsets(records)
    assert [(r[1], r[3].split(":")[0]) for r in rejected] == [
        (2, "not_json"), (4, "invalid_utf8"), (6, "message_not_json"), (8, "no_ses_type"), (10, "no_ses_type"),
    ]  # fmt: skip
    assert [r[2] for r in rejected] == [offsets[p - 1] for p in (2, 4, 6, 8, 10)]
    assert all(r[0] == f"{HOUR}/mixed" for r in rejected)
    assert rejected[0][4].startswith('{"Type":"Notification","MessageId":"sns-cut"')
    assert "byte 0xe9" in rejected[1][3]
    assert rejected[1][4].startswith('{"eventType":"Send"')
    ledger = lake.rows("select records, events_loaded, duplicates, rejected from raw.ingested_objects")
    assert ledger == [(11, 6, 0, 5)]


def test_broken_records_in_back_to_back_objects(lake):
    """Without newlines a bad record still ends where its braces balance; the next one loads."""
    records = [
        envelope(ses_event("Send", "m-1"), "sns-1"),
        b'{Type:"Notification",MessageId:"x",Message:"truncated by producer"}',
        envelope(ses_event("Delivery", "m-1"), "sns-2"),
        b'{"eventType":"Send","mail":{"messageId":"m-2","subject":"\xe9t\xe9"}}',
        ses_event("Open", "m-1"),
    ]
    write_object(lake.landing, f"{HOUR}/concat.gz", records, framing="concatenated", gzipped=True)
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"]) == (3, 2)
    rejected = lake.rows(
        "select position, byte_offset, split_part(error, ':', 1) from raw.rejected_records order by 1"
    )
    offsets = record_offsets(records, framing="concatenated")
    assert rejected == [(2, offsets[1], "not_json"), (4, offsets[3], "invalid_utf8")]
    assert sorted(lake.rows("select source_position from raw.ses_events")) == [(1,), (3,), (5,)]


def test_an_event_delivered_twice_is_one_row_within_and_across_objects_and_runs(lake):
    send = ses_event("Send", "m-1")
    bare = ses_event("Delivery", "m-1")
    write_object(lake.landing, f"{HOUR}/a", [envelope(send, "sns-1"), envelope(send, "sns-1"), bare, bare])
    write_object(lake.landing, f"{HOUR}/b", [envelope(send, "sns-1"), bare], framing="concatenated")
    first = lake.ingest()
    assert (first["events_loaded"], first["duplicates"]) == (2, 4)

    # A later object repeats both events again (SNS retry, Firehose retry): still one row each.
    write_object(lake.landing, "2026/11/20/11/c", [bare, envelope(send, "sns-1")], gzipped=True)
    second = lake.ingest()
    assert (second["objects_loaded"], second["objects_skipped"]) == (1, 2)
    assert (second["events_loaded"], second["duplicates"]) == (0, 2)
    assert lake.rows("select event_id, source_key, source_position from raw.ses_events order by 1") == sorted(
        [("sns-1", f"{HOUR}/a", 1), (bare_event_id(bare), f"{HOUR}/a", 3)]
    )
    per_object = lake.rows(
        "select key, records, events_loaded, duplicates from raw.ingested_objects order by key"
    )
    assert per_object == [(f"{HOUR}/a", 4, 2, 2), (f"{HOUR}/b", 2, 0, 2), ("2026/11/20/11/c", 2, 0, 2)]


def test_a_second_run_loads_nothing(lake):
    write_object(lake.landing, f"{HOUR}/a", [envelope(ses_event("Send", "m-1"), "sns-1"), b"not json"])
    write_object(lake.landing, f"{HOUR}/b.gz", [ses_event("Delivery", "m-1")], gzipped=True)
    lake.ingest()
    before = lake.rows("select * from raw.ingested_objects order by key")

    again = lake.ingest()

    assert again["objects_seen"] == 2 and again["objects_skipped"] == 2
    assert {
        k: again[k] for k in ("objects_loaded", "events_loaded", "duplicates", "rejected")
    } == dict.fromkeys(("objects_loaded", "events_loaded", "duplicates", "rejected"), 0)
    assert lake.rows("select * from raw.ingested_objects order by key") == before
    assert lake.scalar("select count(*) from raw.rejected_records") == 1


def test_a_late_object_under_an_earlier_hour_is_found(lake):
    write_object(lake.landing, "2026/11/20/12/x", [envelope(ses_event("Send", "m-1"), "sns-1")])
    lake.ingest()
    write_object(lake.landing, "2026/11/20/09/late", [envelope(ses_event("Delivery", "m-1"), "sns-2")])
    counts = lake.ingest()
    assert (counts["objects_loaded"], counts["events_loaded"]) == (1, 1)
    assert (
        lake.scalar("select source_key from raw.ses_events where event_id = 'sns-2'") == "2026/11/20/09/late"
    )


def test_a_rewritten_object_is_read_again_and_its_events_stay_single(lake):
    first_part = [
        envelope(ses_event("Send", "m-1"), "sns-1"),
        b"garbage",
        envelope(ses_event("Delivery", "m-1"), "sns-2"),
    ]
    path = write_object(lake.landing, f"{HOUR}/obj", first_part)
    lake.ingest()

    # Firehose rewrites the object after a partial retry: same key, more records.
    write_object(
        lake.landing, f"{HOUR}/obj", [*first_part, envelope(ses_event("Open", "m-1"), "sns-3")], gzipped=True
    )
    counts = lake.ingest()

    assert (counts["objects_loaded"], counts["events_loaded"], counts["duplicates"]) == (1, 1, 2)
    assert counts["objects_reread"] == 1
    assert lake.scalar("select count(*) from raw.ses_events") == 3
    assert lake.rows(
        "select size, compression, records, events_loaded, duplicates, rejected, times_loaded from raw.ingested_objects"
    ) == [(path.stat().st_size, "gzip", 4, 1, 2, 1, 2)]
    assert lake.scalar("select count(*) from raw.rejected_records") == 1  # the bad record is not listed twice


def test_same_size_rewrite_is_caught_by_checksum_and_a_mere_touch_is_not(lake):
    path = write_object(lake.landing, f"{HOUR}/obj", [envelope(ses_event("Send", "m-1"), "sns-1")])
    lake.ingest()
    os.utime(path, (1_900_000_000, 1_900_000_000))  # touched, content unchanged
    touched = lake.ingest()
    assert (touched["objects_loaded"], touched["objects_skipped"]) == (0, 1)

    write_object(lake.landing, f"{HOUR}/obj", [envelope(ses_event("Send", "m-2"), "sns-2")])  # same size
    os.utime(path, (1_900_000_100, 1_900_000_100))
    rewritten = lake.ingest()
    assert (rewritten["objects_loaded"], rewritten["events_loaded"]) == (1, 1)
    assert lake.scalar("select count(*) from raw.ses_events") == 2


def test_events_of_a_pruned_message_are_dropped_as_duplicates(lake):
    lake.execute("create schema if not exists raw")
    lake.execute(
        "insert into raw.pruned_messages (message_id, sent_at, pruned_at) values ('m-old', '2026-10-01', '2026-11-01')"
    )
    write_object(
        lake.landing,
        f"{HOUR}/a",
        [envelope(ses_event("Delivery", "m-old"), "sns-late"), ses_event("Send", "m-new")],
    )
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["duplicates"]) == (1, 1)
    assert lake.rows("select message_id from raw.ses_events") == [("m-new",)]


# Every type SES publishes: only the ones that can change a recipient's fate once it went out fine
# (prune.KEEP_EVENT_TYPES) come back for a pruned message.
LATE_TYPES = [
    "Send", "Delivery", "DeliveryDelay", "Open", "Click", "Subscription", "Rendering Failure",
    "Bounce", "Complaint", "Reject",
]  # fmt: skip


def _pruned(lake, message_id="m-old", *, recipients_recorded=True):
    lake.execute(
        "insert into raw.pruned_messages (message_id, sent_at, pruned_at, recipients_recorded) "
        "values (?, '2026-10-01', '2026-11-01', ?)",
        [message_id, recipients_recorded],
    )


@pytest.mark.parametrize("identity", [False, True], ids=["eventType", "notificationType"])
@pytest.mark.parametrize("event_type", LATE_TYPES)
def test_late_feedback_of_a_pruned_message_loads_and_its_other_late_events_are_dropped(
    lake, event_type, identity
):
    """A late Bounce, Complaint or Reject of a pruned message loads (it must still suppress the address;
    dbt gives the message back the recipients prune recorded); any other late event of it is dropped and
    counted as a duplicate, as before."""
    from bouncehouse.prune import KEEP_EVENT_TYPES

    _pruned(lake)
    late = ses_event(event_type, "m-old", at="2026-11-20T09:00:00.000Z", identity=identity)
    write_object(lake.landing, f"{HOUR}/a", [envelope(late, "sns-late"), ses_event("Send", "m-new")])

    counts = lake.ingest()

    loads = event_type in KEEP_EVENT_TYPES
    assert (counts["events_loaded"], counts["duplicates"]) == (1 + loads, 1 - loads)
    expected = [("m-new", "Send", None)] + [("m-old", event_type, "sns-late")] * loads
    assert (
        lake.rows("select message_id, event_type, sns_message_id from raw.ses_events order by 1") == expected
    )
    assert lake.rows("select events_loaded, duplicates from raw.ingested_objects") == [(1 + loads, 1 - loads)]


def test_a_late_complaint_of_a_pruned_message_loads_once(lake):
    """Redelivered in the same object and again in a later one, the late complaint is one row."""
    _pruned(lake)
    complaint = envelope(ses_event("Complaint", "m-old", at="2026-11-20T09:00:00.000Z"), "sns-late")
    write_object(lake.landing, f"{HOUR}/a", [complaint, complaint])
    first = lake.ingest()
    write_object(lake.landing, "2026/11/21/10/b", [complaint])
    second = lake.ingest()
    assert (first["events_loaded"], first["duplicates"]) == (1, 1)
    assert (second["events_loaded"], second["duplicates"]) == (0, 1)
    assert lake.scalar("select count(*) from raw.ses_events") == 1


def test_late_feedback_of_a_message_pruned_before_its_recipients_were_kept_is_dropped(lake):
    """A message pruned before prune recorded raw.pruned_recipients (recipients_recorded false): dbt could
    not give it back its recipients, so its figures would count twice; every late event of it stays dropped."""
    _pruned(lake, recipients_recorded=False)
    late = [
        envelope(ses_event("Complaint", "m-old"), "sns-c"),
        envelope(ses_event("Bounce", "m-old"), "sns-b"),
        envelope(ses_event("Reject", "m-old"), "sns-r"),
    ]
    write_object(lake.landing, f"{HOUR}/a", late)
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["duplicates"]) == (0, 3)


def test_empty_objects_and_hidden_files(lake):
    (lake.landing / HOUR).mkdir(parents=True)
    (lake.landing / HOUR / "empty").write_bytes(b"")
    (lake.landing / ".DS_Store").write_bytes(b"\x00\x01")
    counts = lake.ingest()
    assert (counts["objects_seen"], counts["objects_loaded"], counts["records"]) == (1, 1, 0)
    assert lake.ingest()["objects_skipped"] == 1


def test_file_uri_source(lake):
    write_object(lake.landing, f"{HOUR}/a", [envelope(ses_event("Send", "m-1"), "sns-1")])
    counts = lake.ingest(source=lake.landing.as_uri())
    assert counts["events_loaded"] == 1


def test_a_missing_folder_is_a_config_error(lake, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        lake.ingest(source=str(tmp_path / "nowhere"))
    assert not lake.warehouse.exists()  # nothing created for a source that is not there


def test_a_truncated_gzip_object_loads_what_it_holds_and_records_the_damage(lake):
    records = [envelope(ses_event("Send", f"m-{i}", padding="x" * 3000), f"sns-{i}") for i in range(40)]
    body = object_bytes(records, gzipped=True)
    (lake.landing / HOUR).mkdir(parents=True)
    (lake.landing / HOUR / "cut.gz").write_bytes(body[: len(body) * 3 // 4])
    counts = lake.ingest()
    assert 0 < counts["events_loaded"] < 40
    errors = [e for (e,) in lake.rows("select error from raw.rejected_records order by position")]
    assert errors[-1].startswith("gzip_corrupt:")
    assert lake.scalar("select records from raw.ingested_objects") == counts["events_loaded"] + len(errors)
