"""The generator, the standard-library reader and ingest agree on a tree where a record cut off
mid-way is written again, by a Firehose retry, at the head of a back-to-back (`}{`) object: what the
generator says it wrote is what the reader finds, and ingest loads exactly the reader's events."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from bouncehouse.demo import generate
from landing_reader import read_landing, split_records


def _cut_records_followed_by_others_back_to_back(files: dict[str, bytes]) -> int:
    """How many records that are not JSON sit before other records in a `}{` object."""
    found = 0
    for raw in files.values():
        body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        framing, records = split_records(body)
        if framing != "concatenated":
            continue
        for record in records[:-1]:
            try:
                json.loads(record.decode("latin-1"))
            except ValueError:
                found += 1
    return found


@pytest.mark.parametrize("start", ["2026-11-20T09:00:00", "2026-11-20T09:06:36"])
def test_generator_reader_and_ingest_agree_when_a_cut_off_record_lands_back_to_back(tmp_path: Path, start):
    root = tmp_path / "landing"
    result = generate(root, messages=3000, days=3, start=datetime.fromisoformat(start), seed=7)
    landing = read_landing(root)

    # The case under test is there: a cut-off record with good records after it, no separators.
    assert _cut_records_followed_by_others_back_to_back(landing.files) >= 1

    assert result["records"] == landing.records
    assert result["events"] == len(landing.events)
    assert result["duplicates"] == sum(n - 1 for n in landing.copies.values())
    assert result["malformed_by_kind"] == dict(landing.rejected)

    warehouse = tmp_path / "warehouse" / "bouncehouse.duckdb"
    completed = subprocess.run(
        [sys.executable, "-m", "bouncehouse", "-q", "ingest", "--source", str(root), "--warehouse", str(warehouse)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    counts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert counts["records"] == landing.records
    assert counts["events_loaded"] == len(landing.events)
    assert counts["duplicates"] == result["duplicates"]
    assert counts["rejected"] == sum(landing.rejected.values())

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        loaded = {row[0] for row in con.execute("select event_id from raw.ses_events").fetchall()}
    finally:
        con.close()
    assert loaded == set(landing.events)
