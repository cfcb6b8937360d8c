"""Property: for an object DuckDB read whole, ``records.resplit`` (DuckDB's reading kept, only what it
could not read split in Python) gives exactly what ``split_records`` gives for the whole object, or
says it cannot; and ingest no longer splits such an object record by record in Python."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from bouncehouse.ingest import read as read_module
from bouncehouse.ingest.records import cut_into_lines, resplit, split_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from landing_builder import encode, envelope, ses_event, write_object

GOOD = [
    encode(envelope(ses_event("Send", "m-1"), "sns-1")),
    encode(ses_event("Bounce", "m-2", note="é }{ \\n")),
    encode(envelope(ses_event("Delivery", "m-3", note='ends in }{"'), "sns-3")),
    b'{"Type":"SubscriptionConfirmation","MessageId":"x"}',
]
BROKEN = [
    b'{"Type":"Notification","Message":"cut off',
    b'{Type:"Notification",Message:"keys without quotes"}',
    b'{"eventType":"Send","mail":{"subject":"caf\xe9"}}',
    b"oops",
]

objects = st.tuples(
    st.lists(st.sampled_from(GOOD + BROKEN), min_size=1, max_size=8),
    st.sampled_from(["newline", "concatenated"]),
)


def _duckdb_texts(path: Path, *, lines: bool) -> list[str | None] | None:
    options = "format = 'newline_delimited', ignore_errors = true" if lines else "format = 'unstructured'"
    try:
        rows = (
            duckdb.connect()
            .execute(
                f"select json::varchar from read_json_objects($1, {options}) with ordinality order by ordinality",
                [str(path)],
            )
            .fetchall()
        )
    except duckdb.Error:
        return None
    return [text for (text,) in rows]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects)
def test_resplit_finds_what_split_records_finds(layout):
    records, framing = layout
    content = (b"\n" if framing == "newline" else b"").join(records) + b"\n"
    expected = [(r.position, r.byte_offset, r.text, r.error, r.excerpt) for r in split_records(content)]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "object")
        cut = False
        path.write_bytes(content)
        texts = _duckdb_texts(path, lines=framing == "newline")
        if texts is None:  # back to back with a broken record: read again through a copy cut into lines
            cut = True
            path.write_bytes(cut_into_lines(content))
            texts = _duckdb_texts(path, lines=True)
        assert texts is not None
    lines = framing == "newline" or cut
    found = resplit(content, texts, lines=lines, cut=cut, named=range(1, len(texts) + 1))
    if found is None:
        return  # the caller splits the whole object with split_records
    unread = set(found.unread)
    got = [
        (found.moved.get(row, row), found.named[row][0], text, None, found.named[row][1])
        for row, text in enumerate(texts, start=1)
        if row not in unread
    ]
    got += [(r.position, r.byte_offset, r.text, r.error, r.excerpt) for r in found.records]
    assert sorted(got, key=lambda record: record[0]) == expected


@pytest.mark.parametrize("framing", ["newline", "concatenated"])
def test_an_object_with_one_broken_record_is_not_split_record_by_record(lake, monkeypatch, framing):
    """Before: an object holding one broken record was split record by record in Python (every
    record parsed again); after: only the broken record is."""
    records = [envelope(ses_event("Send", f"m-{i}"), f"sns-{i}") for i in range(50)]
    records.insert(20, BROKEN[0])
    write_object(lake.landing, "2026/11/20/10/object", records, framing=framing)
    whole_splits = []
    original = read_module.read_per_record
    monkeypatch.setattr(
        read_module, "read_per_record", lambda *a, **k: whole_splits.append(a[1].key) or original(*a, **k)
    )

    counts = lake.ingest()

    assert whole_splits == []
    assert (counts["events_loaded"], counts["rejected"]) == (50, 1)
    ((position, offset, error),) = lake.rows("select position, byte_offset, error from raw.rejected_records")
    separator = 1 if framing == "newline" else 0
    assert position == 21
    assert offset == sum(len(encode(r)) + separator for r in records[:20])
    assert error.startswith("not_json: ")
    assert json.loads(lake.rows("select payload from raw.ses_events where message_id = 'm-49'")[0][0])
