"""A record cut off mid-way in an object whose records are back to back (`}{`): its braces never
balance (or balance inside the records after it, when the cut is inside a string), yet it is one
rejected record and every record after it loads (contract: a bad record never stops the rest of its
object)."""

from __future__ import annotations

import json

import pytest
from bouncehouse.ingest.records import split_records
from landing_builder import encode, envelope, object_bytes, record_offsets, ses_event, write_object

HOUR = "2026/11/20/10"

# An SNS envelope as the generator cuts it: after a key, with no value and nothing more.
CUT_AFTER_KEY = (
    b'{"Type":"Notification","MessageId":"sns-cut","Message":"{\\"eventType\\":\\"Send\\",\\"send\\":{}}",'
    b'"Timestamp":"2026-11-20T10:00:06.000Z","SignatureVersion":'
)
# ...cut inside a string: a brace-depth scanner reads every later string inside out.
CUT_IN_STRING = (
    b'{"Type":"Notification","MessageId":"sns-cut","Message":"{\\"eventType\\":\\"Send\\",\\"send\\":{}}",'
    b'"Timestamp":"2026-11-20T10:00:06.000Z","SigningCertURL":"https://sns.us-east-1.amazonaws.com/Si'
)


def _bare_cut_after_mail() -> bytes:
    """A bare SES JSON cut in its detail object: its complete nested "mail" object (and the
    "tags" inside it) decode as JSON objects, but are not records."""
    whole = encode(ses_event("Bounce", "m-cut", bounceType="Permanent"))
    cut = whole.index(b'"bounce":') + len(b'"bounce":{"recipients":["ro')
    assert whole.index(b'"mail":{') < cut
    return whole[:cut]


CUTS = {
    "envelope_cut_after_a_key": CUT_AFTER_KEY,
    "envelope_cut_inside_a_string": CUT_IN_STRING,
    "bare_ses_json_cut_after_its_mail_object": _bare_cut_after_mail(),
}


def _records(cut: bytes) -> list:
    return [
        envelope(ses_event("Send", "m-1"), "sns-1"),
        cut,
        envelope(ses_event("Delivery", "m-1"), "sns-2"),
        ses_event("Open", "m-1"),
    ]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("cut", list(CUTS.values()), ids=list(CUTS))
def test_a_cut_off_record_back_to_back_is_one_rejection_and_the_rest_loads(lake, cut, gzipped):
    records = _records(cut)
    write_object(lake.landing, f"{HOUR}/concat", records, framing="concatenated", gzipped=gzipped)

    counts = lake.ingest()

    assert (counts["events_loaded"], counts["rejected"], counts["records"]) == (3, 1, 4)
    rejected = lake.rows("select position, byte_offset, error, excerpt from raw.rejected_records")
    offsets = record_offsets(records, framing="concatenated")
    assert [(p, o, e.split(":")[0]) for p, o, e, _ in rejected] == [(2, offsets[1], "not_json")]
    assert rejected[0][3] == cut[:200].decode()
    assert sorted(lake.rows("select source_position from raw.ses_events")) == [(1,), (3,), (4,)]
    assert sorted(lake.rows("select event_type from raw.ses_events")) == [("Delivery",), ("Open",), ("Send",)]
    assert lake.rows("select records, events_loaded, rejected from raw.ingested_objects") == [(4, 3, 1)]


@pytest.mark.parametrize("cut", list(CUTS.values()), ids=list(CUTS))
def test_a_cut_off_record_at_the_end_of_the_object_is_one_rejection(lake, cut):
    records = [*_records(cut)[::2], cut]  # good, good, cut
    write_object(lake.landing, f"{HOUR}/concat", records, framing="concatenated")
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"]) == (2, 1)
    offsets = record_offsets(records, framing="concatenated")
    assert lake.rows("select position, byte_offset from raw.rejected_records") == [(3, offsets[2])]


def test_a_balanced_bad_record_before_a_cut_off_one_stays_a_record_of_its_own(lake):
    unquoted = b'{Type:"Notification",MessageId:"x",Message:"keys not quoted"}'
    records = [
        envelope(ses_event("Send", "m-1"), "sns-1"),
        unquoted,
        CUT_IN_STRING,
        ses_event("Delivery", "m-1"),
    ]
    write_object(lake.landing, f"{HOUR}/concat", records, framing="concatenated")
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"]) == (2, 2)
    offsets = record_offsets(records, framing="concatenated")
    assert lake.rows("select position, byte_offset from raw.rejected_records order by 1") == [
        (2, offsets[1]), (3, offsets[2]),
    ]  # fmt: skip


def test_a_cut_off_record_followed_by_another_bad_one_is_one_rejection_and_the_rest_loads(lake):
    """Nothing in a cut-off record says where it stops: it ends at the next record that decodes."""
    unquoted = b'{Type:"Notification",MessageId:"x",Message:"keys not quoted"}'
    records = [CUT_AFTER_KEY, unquoted, envelope(ses_event("Send", "m-1"), "sns-1"), CUT_IN_STRING,
               CUT_AFTER_KEY, ses_event("Delivery", "m-1")]  # fmt: skip
    write_object(lake.landing, f"{HOUR}/concat", records, framing="concatenated")
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"], counts["records"]) == (2, 2, 4)
    offsets = record_offsets(records, framing="concatenated")
    assert lake.rows("select position, byte_offset from raw.rejected_records order by 1") == [
        (1, offsets[0]), (3, offsets[3]),
    ]  # fmt: skip
    assert sorted(lake.rows("select source_position from raw.ses_events")) == [(2,), (4,)]


def test_the_splitter_resumes_at_the_next_record_with_byte_offsets_past_non_ascii_text():
    records = [
        envelope(ses_event("Send", "m-1", subject="Café ✓"), "sns-1"),
        _bare_cut_after_mail(),
        ses_event("Delivery", "m-1", subject="naïve"),
        CUT_IN_STRING,
        envelope(ses_event("Open", "m-1"), "sns-2"),
    ]
    split = list(split_records(object_bytes(records, framing="concatenated")))
    assert [r.position for r in split] == [1, 2, 3, 4, 5]
    assert [r.byte_offset for r in split] == record_offsets(records, framing="concatenated")
    assert [r.error is not None for r in split] == [False, True, False, True, False]
    assert [json.loads(r.text) for r in split if r.text] == [records[0], records[2], records[4]]


def test_a_newline_framed_record_cut_after_a_backslash_ends_at_its_line(lake):
    """A raw newline is never part of a string, even right after a backslash."""
    whole = encode(envelope(ses_event("Send", "m-cut"), "sns-cut"))
    cut = whole[: whole.index(b"\\") + 1]
    records = [cut, envelope(ses_event("Delivery", "m-1"), "sns-1"), ses_event("Open", "m-1")]
    write_object(lake.landing, f"{HOUR}/lines", records)
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"]) == (2, 1)
    assert lake.rows("select position, byte_offset from raw.rejected_records") == [(1, 0)]


def test_a_record_nested_too_deeply_for_the_decoder_is_set_aside_and_the_rest_loads(lake):
    records = [envelope(ses_event("Send", "m-1"), "sns-1"), b"[" * 100_000, ses_event("Delivery", "m-1")]
    write_object(lake.landing, f"{HOUR}/concat", records, framing="concatenated")
    counts = lake.ingest()
    assert (counts["events_loaded"], counts["rejected"]) == (2, 1)
    offsets = record_offsets(records, framing="concatenated")
    assert lake.rows("select position, byte_offset, error from raw.rejected_records") == [
        (2, offsets[1], "not_json: nested too deeply")
    ]
