"""The lake in a folder: ingest writes each table's rows once, a rerun or a crash at any point neither
duplicates nor loses a file, and an object read again replaces its rejected records there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bouncehouse import lake
from bouncehouse.config import load_settings
from bouncehouse.errors import ConfigError
from conftest import Case, assert_lake_matches, lake_files
from landing_builder import envelope, ses_event, write_object

REPO_ROOT = Path(__file__).resolve().parents[2]


def file_times(case: Case) -> dict[str, int]:
    root = Path(case.lake)
    return {path: (root / path).stat().st_mtime_ns for path in lake_files(root)}


def test_ingest_writes_every_row_once_and_a_rerun_rewrites_nothing(case: Case, generated) -> None:
    case.add(generated["first"])
    counts = case.ingest()
    rows = assert_lake_matches(case)
    assert rows["ses_events"] == counts["events_loaded"] > 1000
    assert rows["rejected_records"] == counts["rejected"] > 0
    assert counts["lake"]["ses_events"] == {
        "files": len(file_times(case)) - 1,
        "rows": rows["ses_events"],
        "removed": 0,
    }
    before = file_times(case)

    again = case.ingest()
    assert again["objects_loaded"] == 0 and "lake" not in again
    assert file_times(case) == before  # same files, none rewritten

    case.add(generated["second"])
    more = case.ingest()
    assert_lake_matches(case)
    after = file_times(case)
    assert {path: after[path] for path in before} == before  # the first load's files stay as they were
    assert more["lake"]["ses_events"]["rows"] == more["events_loaded"]


def test_no_lake_by_default_and_a_lake_set_later_gets_every_row(case: Case, generated) -> None:
    case.add(generated["first"])
    case.lake = ""
    case.ingest()
    assert case.rows("select count(*) from ops.lake_state") == [(0,)]
    assert case.pending() == 0
    case.lake = str(case.tmp / "lake")
    assert not Path(case.lake).exists()

    counts = case.ingest()
    assert counts["objects_loaded"] == 0
    assert assert_lake_matches(case)["ses_events"] > 1000


def test_a_crash_after_the_commit_before_the_export_is_exported_by_the_next_run(
    case: Case, generated, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.add(generated["first"])
    case.ingest()
    case.add(generated["second"])

    def crash(*args, **kwargs):
        raise RuntimeError("killed after the commit")

    with monkeypatch.context() as patched:
        patched.setattr(lake, "export_pending", crash)
        with pytest.raises(RuntimeError, match="killed"):
            case.ingest()
    loaded = case.rows("select count(*) from raw.ses_events")[0][0]
    assert case.pending() > 0
    with pytest.raises(AssertionError):
        assert_lake_matches(case)

    counts = case.ingest()
    assert counts["objects_loaded"] == 0
    assert assert_lake_matches(case)["ses_events"] == loaded


def test_a_crash_after_some_files_before_marking_them_done_duplicates_nothing(
    case: Case, generated, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.add(generated["first"])
    case.ingest()
    case.add(generated["second"])
    real_put = lake.LocalLake.put
    puts: list[str] = []

    def put_then_crash(self, file, key):
        real_put(self, file, key)
        puts.append(key)
        if len(puts) == 2:
            raise RuntimeError("killed after an upload")

    with monkeypatch.context() as patched:
        patched.setattr(lake.LocalLake, "put", put_then_crash)
        with pytest.raises(RuntimeError, match="killed"):
            case.ingest()
    assert case.pending() > 0
    written = set(file_times(case))
    assert set(puts) <= written

    case.ingest()
    assert_lake_matches(case)
    assert written <= set(file_times(case))  # the same names, written again, not beside them


def test_a_crash_after_every_upload_before_any_is_marked_done_duplicates_nothing(
    case: Case, generated, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.add(generated["first"])
    case.ingest()
    case.add(generated["second"])
    with monkeypatch.context() as patched:
        # Every file uploaded, no entry dropped: as if killed just before the first _mark_done commits.
        patched.setattr(lake, "_mark_done", lambda *args: None)
        case.ingest()
    written = file_times(case)
    assert case.pending() > 0

    case.ingest()
    assert_lake_matches(case)
    assert set(file_times(case)) == set(written)  # every file written again under its own name


KILL_AFTER_FIRST_FILE = """
import os, sys
from bouncehouse import lake
real_put = lake.LocalLake.put
def put(self, file, key):
    real_put(self, file, key)
    os._exit(9)
lake.LocalLake.put = put
from bouncehouse.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_process_killed_between_two_files_leaves_nothing_twice(case: Case, generated) -> None:
    case.add(generated["first"])
    case.ingest()
    case.add(generated["second"])
    env = {**os.environ, "BOUNCEHOUSE_LAKE": case.lake}
    args = ["ingest", "--source", str(case.landing), "--warehouse", str(case.warehouse)]
    done = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_FILE, *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 9, done.stderr
    assert case.pending() > 0

    done = subprocess.run(
        [sys.executable, "-m", "bouncehouse", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["objects_loaded"] == 0
    assert_lake_matches(case)


def test_an_object_read_again_replaces_its_rejected_records_in_the_lake(case: Case) -> None:
    good = envelope(ses_event("Send", "m-1"), "sns-1")
    write_object(case.landing, "2026/11/20/10/a", [good, b"not json", b"{broken"])
    write_object(case.landing, "2026/11/20/11/b", [envelope(ses_event("Send", "m-2"), "sns-2"), b"oops"])
    case.ingest()
    assert assert_lake_matches(case)["rejected_records"] == 3

    # Firehose rewrote object a: one bad record left. Its old rejected records leave the lake with it.
    write_object(case.landing, "2026/11/20/10/a", [good, envelope(ses_event("Send", "m-3"), "sns-3"), b"bad"])
    counts = case.ingest()
    assert counts["objects_reread"] == 1
    assert assert_lake_matches(case)["rejected_records"] == 2

    # ... and again with no bad record at all.
    write_object(case.landing, "2026/11/20/10/a", [good])
    case.ingest()
    assert assert_lake_matches(case)["rejected_records"] == 1


def test_a_lake_used_again_after_a_pause_loses_its_stale_files(case: Case, generated) -> None:
    case.add(generated["first"])
    case.ingest()
    lake_uri = case.lake
    # Without the lake: more is loaded, and a whole day of events goes (as a prune would take it).
    case.lake = ""
    case.add(generated["second"])
    case.ingest()
    from bouncehouse.warehouse import session

    with session(case.warehouse) as con:
        day = con.execute("select min(coalesce(event_at, loaded_at)::date) from raw.ses_events").fetchone()[0]
        con.execute("delete from raw.ses_events where coalesce(event_at, loaded_at)::date = ?", [day])
    case.lake = lake_uri
    stale = [path for path in file_times(case) if f"day={day}" in path]
    assert stale

    counts = case.ingest()
    assert counts["lake"]["ses_events"]["removed"] >= len(stale)
    assert_lake_matches(case)
    assert not any(f"day={day}" in path for path in file_times(case))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("http://example.com/lake", "is not a folder, file:// URI or s3://bucket/prefix"),
    ],
)
def test_a_bad_lake_setting_is_one_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(env={"BOUNCEHOUSE_LAKE": value})
    assert "BOUNCEHOUSE_LAKE" in str(raised.value) and "\n" not in str(raised.value)


def test_the_lake_setting_is_a_folder_or_an_s3_prefix(tmp_path: Path) -> None:
    assert load_settings(env={}).lake is None
    assert load_settings(env={"BOUNCEHOUSE_LAKE": "  "}).lake is None
    assert load_settings(env={"BOUNCEHOUSE_LAKE": "s3://bucket/raw/lake/"}).lake == "s3://bucket/raw/lake"
    assert load_settings(env={"BOUNCEHOUSE_LAKE": "s3://bucket"}).lake == "s3://bucket"
    assert load_settings(env={"BOUNCEHOUSE_LAKE": "lake"}, home=tmp_path).lake == str(tmp_path / "lake")
    assert load_settings(env={"BOUNCEHOUSE_LAKE": f"file://{tmp_path}/x"}).lake == str(tmp_path / "x")


def test_an_unwritable_lake_folder_exits_2_with_one_line(case: Case, generated) -> None:
    case.add(generated["first"])
    blocker = case.tmp / "a-file"
    blocker.write_text("where the lake folder should be")
    env = {**os.environ, "BOUNCEHOUSE_LAKE": str(blocker / "lake")}
    done = subprocess.run(
        [sys.executable, "-m", "bouncehouse", "ingest", "--source", str(case.landing), "--warehouse", str(case.warehouse)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].count("\n") == 0
    assert "lake" in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr
