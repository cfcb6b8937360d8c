"""A warehouse with a lake per test, generated landing trees, and the check every lake test ends with:
the lake, read back with DuckDB's read_parquet (hive partitioning), holds exactly the warehouse's rows."""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bouncehouse.config import Settings, load_settings
from bouncehouse.lake import TABLES, file_id

# tests/ingest's Firehose object writer, for hand-made objects.
_INGEST_TESTS = str(Path(__file__).resolve().parents[1] / "ingest")
if _INGEST_TESTS not in sys.path:
    sys.path.insert(0, _INGEST_TESTS)

# Two stretches of generated feedback, 11 days apart, with different seeds (no event in common) but
# addresses in common, so the second prune moves deliveries that the first one recorded.
FIRST = {"messages": 600, "start": datetime(2026, 10, 1), "days": 2, "seed": 3}
SECOND = {"messages": 600, "start": datetime(2026, 10, 12), "days": 2, "seed": 4}

FILE_PATH = re.compile(
    r"^(?P<table>[a-z_]+)/day=(?P<day>\d{4}-\d{2}-\d{2})/(?P<file_id>\d{8}T\d{12})\.parquet$"
)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from bouncehouse.demo import generate

    root = tmp_path_factory.mktemp("lake-landing")
    trees = {"first": root / "first", "second": root / "second"}
    generate(trees["first"], **FIRST)
    generate(trees["second"], **SECOND)
    return trees


@dataclass
class Case:
    landing: Path
    warehouse: Path
    lake: str  # BOUNCEHOUSE_LAKE
    tmp: Path

    def settings(self, **overrides: Any) -> Settings:
        values = {"source": str(self.landing), "warehouse": str(self.warehouse), "lake": self.lake}
        return load_settings({**values, **overrides})

    def add(self, tree: Path) -> None:
        shutil.copytree(tree, self.landing, dirs_exist_ok=True)

    def ingest(self, **overrides: Any) -> dict[str, Any]:
        from bouncehouse.ingest import ingest

        return ingest(self.settings(**overrides))

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def pending(self) -> int:
        return self.rows("select count(*) from ops.lake_outbox")[0][0]


@pytest.fixture
def case(tmp_path: Path) -> Case:
    landing = tmp_path / "landing"
    landing.mkdir()
    return Case(landing, tmp_path / "warehouse" / "bouncehouse.duckdb", str(tmp_path / "lake"), tmp_path)


def local_copy(case: Case, s3_client: Any | None = None) -> Path:
    """The lake as a local folder: itself, or (s3://) every object under its prefix downloaded."""
    uri = case.settings().lake
    if not uri.startswith("s3://"):
        return Path(uri)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    target = case.tmp / "lake-download"
    shutil.rmtree(target, ignore_errors=True)
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            path = target / item["Key"].removeprefix(f"{prefix}/")
            path.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, item["Key"], str(path))
    return target


def lake_files(root: Path) -> dict[str, int]:
    """Every file in the lake (its path relative to the lake) and its size; only the tables' folders."""
    return {
        path.relative_to(root).as_posix(): path.stat().st_size
        for path in sorted(root.rglob("*.parquet"))
        if not path.relative_to(root).as_posix().startswith(".")
    }


def assert_lake_matches(case: Case, s3_client: Any | None = None) -> dict[str, int]:
    """The lake holds each table's rows exactly once (same columns, same values, day from the path), each
    file holds its table's rows of one marker and one day, named as the layout says, and nothing is
    left to export. Returns the rows per table."""
    root = local_copy(case, s3_client)
    files = lake_files(root)
    for path in files:
        match = FILE_PATH.match(path)
        assert match and match["table"] in TABLES, path
    assert case.pending() == 0
    counts = {}
    con = duckdb.connect(str(case.warehouse), read_only=True)
    try:
        for name, table in TABLES.items():
            counts[name] = _assert_table_matches(
                con, root, name, table, [p for p in files if p.startswith(f"{name}/")]
            )
    finally:
        con.close()
    return counts


def _assert_table_matches(con, root: Path, name: str, table, files: list[str]) -> int:
    columns = [row[0] for row in con.execute(f"describe raw.{name}").fetchall()]
    warehouse_count = con.execute(f"select count(*) from raw.{name}").fetchone()[0]
    if not files:
        assert warehouse_count == 0, f"{name}: {warehouse_count} rows in DuckDB, no file in the lake"
        return 0
    lake = f"read_parquet('{root}/{name}/*/*.parquet', hive_partitioning = true, filename = true)"
    file_columns = [row[0] for row in con.execute(f"describe select * from {lake}").fetchall()]
    assert file_columns == [c for c in columns if c != "day"] + ["filename", "day"], name
    listed = ", ".join(f'"{c}"' for c in [*(c for c in columns if c != "day"), "day"])
    ours = f"select {listed} from ({table.select_rows()})"
    theirs = f"select {listed} from {lake}"
    missing = con.execute(f"select count(*) from ({ours} except all {theirs})").fetchone()[0]
    extra = con.execute(f"select count(*) from ({theirs} except all {ours})").fetchone()[0]
    assert (missing, extra) == (0, 0), f"{name}: {missing} rows missing from the lake, {extra} extra"
    # Each file: one marker and one day, the ones its path names.
    for filename, markers, days in con.execute(
        f"select filename, list(distinct {table.marker}), list(distinct day) from {lake} group by filename"
    ).fetchall():
        match = FILE_PATH.match(Path(filename).relative_to(root).as_posix())
        assert [file_id(m) for m in markers] == [match["file_id"]], filename
        assert [d.isoformat() for d in days] == [match["day"]], filename
    assert con.execute(f"select count(*) from {lake}").fetchone()[0] == warehouse_count
    return int(warehouse_count)
