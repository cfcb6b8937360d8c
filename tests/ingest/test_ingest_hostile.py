"""Hostile and odd input (issue 14): nothing outside the landing folder is read, no one object stops a
run, and memory stays bounded. Each case runs ``ingest`` as a real process with a time limit and an
address-space limit, so a regression fails the test instead of hanging or eating the machine."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from landing_builder import envelope, ses_event, write_object

REPO_ROOT = Path(__file__).resolve().parents[2]
HOUR = "2026/11/20/10"
SECRET = "root:$6$do-not-copy-me:19000:0:99999:7:::"
GIB = 1 << 30


def run_ingest(
    lake, *, memory_bytes: int = 3 * GIB, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m bouncehouse ingest`` on the lake, killed after ``timeout`` seconds, its address
    space capped at ``memory_bytes``."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    try:
        return subprocess.run(
            [sys.executable, "-m", "bouncehouse", "ingest", "--source", str(lake.landing),
             "--warehouse", str(lake.warehouse)],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout, preexec_fn=cap_memory,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"ingest did not finish within {timeout}s (it blocked on an object)")


def counts_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def set_aside(lake) -> dict[str, tuple[int, str]]:
    """key -> (position, reason prefix) of every rejected record."""
    rows = lake.rows("select source_key, position, error from raw.rejected_records")
    return {key: (position, error.split(":")[0]) for key, position, error in rows}


def good_object(lake, name: str = "good", message: str = "m-1") -> None:
    write_object(lake.landing, f"{HOUR}/{name}", [envelope(ses_event("Send", message), f"sns-{message}")])


def test_links_out_of_the_landing_are_never_followed(lake, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET + "\n")
    write_object(outside, "events.json", [envelope(ses_event("Send", "m-outside"), "sns-outside")])
    good_object(lake)
    os.symlink(outside / "shadow", lake.landing / HOUR / "shadow")
    os.symlink(outside / "events.json", lake.landing / HOUR / "events.json")
    os.symlink(outside, lake.landing / "2026" / "outside-folder")

    counts = counts_of(run_ingest(lake))

    assert (counts["objects_loaded"], counts["events_loaded"], counts["rejected"]) == (4, 1, 3)
    assert lake.rows("select message_id from raw.ses_events") == [("m-1",)]
    assert set_aside(lake) == {
        f"{HOUR}/shadow": (0, "object_skipped_symlink"),
        f"{HOUR}/events.json": (0, "object_skipped_symlink"),
        "2026/outside-folder": (0, "object_skipped_symlink"),
    }
    # Not one byte of a file outside the landing is in the warehouse.
    everything = lake.rows("select * from raw.rejected_records") + lake.rows("select * from raw.ses_events")
    assert "do-not-copy-me" not in repr(everything)
    assert "m-outside" not in repr(everything)
    assert counts_of(run_ingest(lake))["objects_skipped"] == 4  # set aside once, not retried every run


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_link_loop_a_fifo_and_a_link_to_dev_zero_are_set_aside_and_the_rest_loads(lake):
    good_object(lake)
    os.symlink("loop", lake.landing / HOUR / "loop")
    os.symlink("/dev/zero", lake.landing / HOUR / "zero")
    os.mkfifo(lake.landing / HOUR / "fifo")

    for _ in range(2):  # run after run: nothing blocks, nothing fails
        counts = counts_of(run_ingest(lake, timeout=90))
    assert counts["objects_skipped"] == 4
    assert lake.rows("select message_id from raw.ses_events") == [("m-1",)]
    assert set_aside(lake) == {
        f"{HOUR}/loop": (0, "object_skipped_symlink"),
        f"{HOUR}/zero": (0, "object_skipped_symlink"),
        f"{HOUR}/fifo": (0, "not_a_regular_file"),
    }


def test_a_link_replaced_by_the_real_file_is_read(lake, tmp_path):
    good_object(lake)
    target = tmp_path / "elsewhere"
    write_object(target, "late", [envelope(ses_event("Send", "m-2"), "sns-m-2")])
    os.symlink(target / "late", lake.landing / HOUR / "late")
    assert counts_of(run_ingest(lake))["events_loaded"] == 1

    (lake.landing / HOUR / "late").unlink()
    good_object(lake, "late", "m-2")
    counts = counts_of(run_ingest(lake))

    assert (counts["objects_loaded"], counts["events_loaded"]) == (1, 1)
    assert set_aside(lake) == {}  # its rejected record went with the link
    assert sorted(lake.rows("select message_id from raw.ses_events")) == [("m-1",), ("m-2",)]


def test_a_dot_file_is_loaded_as_s3_would_load_it(lake):
    good_object(lake, ".firehose-object", "m-dot")
    good_object(lake, "._resource-fork", "m-fork")  # macOS metadata, as .DS_Store: never an object
    counts = counts_of(run_ingest(lake))
    assert (counts["objects_seen"], counts["events_loaded"]) == (1, 1)
    assert lake.rows("select message_id, source_key from raw.ses_events") == [
        ("m-dot", f"{HOUR}/.firehose-object")
    ]
