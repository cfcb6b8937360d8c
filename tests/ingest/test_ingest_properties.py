"""Property: however the same records are split into objects, reordered, repeated, framed or
compressed, and whatever record cut off mid-way lands among them, raw.ses_events ends up the same; and
the record splitter agrees with the records written."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path

import duckdb
from bouncehouse.config import load_settings
from bouncehouse.ingest import ingest
from bouncehouse.ingest.records import split_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from landing_builder import encode, envelope, record_offsets, ses_event, write_object

EVENT_TYPES = ["Send", "Delivery", "Bounce", "Complaint", "Open", "Click", "DeliveryDelay", "Reject"]


def _records() -> list:
    """Distinct events: enveloped and bare, event publishing and identity notifications, tricky text."""
    records = []
    for n, event_type in enumerate(EVENT_TYPES):
        event = ses_event(event_type, f"m-{n % 3}", at=f"2026-11-20T1{n}:00:00.000Z", note=f"é }}{{ \\n {n}")
        records.append(envelope(event, f"sns-{n}") if n % 2 else event)
    records.append(ses_event("Bounce", "m-9", identity=True))
    return records


RECORDS = _records()
COLUMNS = "event_id, event_type, message_id, event_at, payload"

# A record cut off mid-way (as a producer or Firehose leaves it): (which record, where it is cut,
# where in the object it lands).
cuts = st.none() | st.tuples(st.sampled_from(range(len(RECORDS))), st.integers(0, 1 << 20), st.integers(0, 8))

objects = st.lists(
    st.tuples(
        st.lists(
            st.sampled_from(range(len(RECORDS))), min_size=0, max_size=8
        ),  # record indexes, repeats allowed
        st.booleans(),  # gzip
        st.sampled_from(["newline", "concatenated"]),
        cuts,
    ),
    min_size=1,
    max_size=5,
)


def _with_cut(records: list, cut: tuple[int, int, int] | None) -> tuple[list, int | None]:
    """The records with the cut-off one inserted, and its index (None when there is none)."""
    if cut is None:
        return records, None
    index, cut_at, insert_at = cut
    whole = encode(RECORDS[index])
    insert_at = min(insert_at, len(records))
    return [*records[:insert_at], whole[: 1 + cut_at % (len(whole) - 1)], *records[insert_at:]], insert_at


def _load(layout, root: Path) -> list[tuple]:
    landing = root / "landing"
    landing.mkdir(parents=True)
    for number, (indexes, gzipped, framing, cut) in enumerate(layout):
        write_object(
            landing,
            f"2026/11/20/{number:02d}/o",
            _with_cut([RECORDS[i] for i in indexes], cut)[0],
            gzipped=gzipped,
            framing=framing,
        )
    warehouse = root / "w.duckdb"
    ingest(load_settings({"source": str(landing), "warehouse": str(warehouse)}))
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select {COLUMNS} from raw.ses_events order by event_id").fetchall()
    finally:
        con.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=objects)
def test_splitting_reordering_and_repeating_records_never_changes_ses_events(layout, tmp_path):
    used = sorted(set(itertools.chain.from_iterable(indexes for indexes, _, _, _ in layout)))
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        reference = _load([(used, False, "newline", None)], scratch / "reference")
        assert len(reference) == len(used)
        assert _load(layout, scratch / "layout") == reference
    finally:
        shutil.rmtree(scratch)


@given(
    indexes=st.lists(st.sampled_from(range(len(RECORDS))), min_size=1, max_size=10),
    framing=st.sampled_from(["newline", "concatenated"]),
)
def test_splitter_returns_each_record_with_its_position_and_byte_offset(indexes, framing):
    records = [RECORDS[i] for i in indexes]
    body = (b"\n" if framing == "newline" else b"").join(encode(r) for r in records)
    split = list(split_records(body))
    assert [r.position for r in split] == list(range(1, len(records) + 1))
    assert [r.byte_offset for r in split] == record_offsets(records, framing=framing)
    assert [json.loads(r.text) for r in split] == [json.loads(encode(r)) for r in records]


@given(
    indexes=st.lists(st.sampled_from(range(len(RECORDS))), min_size=0, max_size=10),
    framing=st.sampled_from(["newline", "concatenated"]),
    cut=cuts.filter(lambda c: c is not None),
)
def test_a_cut_off_record_is_one_bad_record_and_every_other_record_splits_as_written(indexes, framing, cut):
    """Back to back too: the cut-off record ends where the next record starts, not where its braces
    (which never balance, or balance inside a later record) say."""
    records, bad = _with_cut([RECORDS[i] for i in indexes], cut)
    body = (b"\n" if framing == "newline" else b"").join(encode(r) for r in records)
    split = list(split_records(body))
    assert [r.position for r in split] == list(range(1, len(records) + 1))
    assert [r.byte_offset for r in split] == record_offsets(records, framing=framing)
    assert [n for n, r in enumerate(split) if r.error] == [bad]
    assert split[bad].error.split(":")[0] in ("not_json", "invalid_utf8")  # a cut may split a character
    assert [json.loads(r.text) for r in split if r.text] == [
        json.loads(encode(r)) for n, r in enumerate(records) if n != bad
    ]
