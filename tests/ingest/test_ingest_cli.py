"""``python -m bouncehouse ingest`` as a real process: its output, its errors, and a SIGKILL midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from landing_builder import envelope, ses_event, write_object

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "bouncehouse", "ingest", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )


def test_cli_prints_the_counts_as_json_on_its_last_line(lake):
    write_object(lake.landing, "2026/11/20/10/a", [envelope(ses_event("Send", "m-1"), "sns-1"), b"oops"])
    done = run_cli("--source", str(lake.landing), "--warehouse", str(lake.warehouse))
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert {k: counts[k] for k in ("objects_loaded", "objects_skipped", "events_loaded", "duplicates", "rejected")} == {
        "objects_loaded": 1, "objects_skipped": 0, "events_loaded": 1, "duplicates": 0, "rejected": 1,
    }  # fmt: skip
    assert "objects 1/1 (100%)" in done.stderr  # progress is logged


def test_cli_missing_source_exits_2_with_one_line(lake, tmp_path):
    done = run_cli("--source", str(tmp_path / "missing"), "--warehouse", str(lake.warehouse))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""


def _landing_with_many_objects(root: Path, objects: int) -> None:
    for n in range(objects):
        records = [envelope(ses_event("Delivery", f"m-{n}-{i}"), f"sns-{n}-{i}") for i in range(20)]
        if n:
            records.append(
                envelope(ses_event("Delivery", f"m-{n - 1}-0"), f"sns-{n - 1}-0")
            )  # a late duplicate
        if n % 7 == 0:
            records.insert(3, b'{Type:"Notification",Message:"not JSON: keys without quotes"}')
        write_object(
            root,
            f"2026/11/20/{n % 24:02d}/obj-{n:04d}",
            records,
            gzipped=n % 2 == 0,
            framing="newline" if n % 3 else "concatenated",
        )


def _tables(warehouse: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            "ses_events": con.execute(
                "select event_id, event_type, message_id, event_at, source_key, payload, sns_message_id, "
                "source_position from raw.ses_events order by event_id"
            ).fetchall(),
            "ingested_objects": con.execute(
                "select key, size, etag, checksum, compression, records, events_loaded, duplicates, rejected, "
                "times_loaded from raw.ingested_objects order by key"
            ).fetchall(),
            "rejected_records": con.execute(
                "select source_key, position, byte_offset, error, excerpt from raw.rejected_records order by all"
            ).fetchall(),
        }
    finally:
        con.close()


def test_a_run_killed_midway_then_rerun_equals_a_clean_run(lake_factory):
    killed, clean = lake_factory("killed"), lake_factory("clean")
    for lake in (killed, clean):
        _landing_with_many_objects(lake.landing, 160)
    small_batches = {"BOUNCEHOUSE_INGEST_BATCH_BYTES": "4000"}  # about one object per transaction

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bouncehouse",
            "ingest",
            "--source",
            str(killed.landing),
            "--warehouse",
            str(killed.warehouse),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **small_batches},
        cwd=REPO_ROOT,
    )
    assert process.stderr is not None
    for line in process.stderr:  # the first progress line: some batches are committed
        if "ingest: objects " in line:
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    loaded_before_kill = (
        duckdb.connect(str(killed.warehouse), read_only=True)
        .execute("select count(*) from raw.ingested_objects")
        .fetchone()[0]
    )
    print("objects loaded before the kill:", loaded_before_kill)
    assert 0 < loaded_before_kill < 160

    rerun = run_cli(
        "--source", str(killed.landing), "--warehouse", str(killed.warehouse), env_extra=small_batches
    )
    assert rerun.returncode == 0, rerun.stderr
    rerun_counts = json.loads(rerun.stdout.splitlines()[-1])
    assert rerun_counts["objects_skipped"] == loaded_before_kill
    assert rerun_counts["objects_loaded"] == 160 - loaded_before_kill

    done = run_cli("--source", str(clean.landing), "--warehouse", str(clean.warehouse))
    assert done.returncode == 0, done.stderr

    killed_tables, clean_tables = _tables(killed.warehouse), _tables(clean.warehouse)
    # Same records, keys relative to each landing folder: the tables must match row for row.
    assert len(clean_tables["ses_events"]) == 160 * 20
    assert len(clean_tables["rejected_records"]) == len(range(0, 160, 7))
    for name in clean_tables:
        assert killed_tables[name] == clean_tables[name], name
