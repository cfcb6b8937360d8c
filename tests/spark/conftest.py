"""One landing (the demo generator's data and the real-sample corpus) ingested once with the lake on, then
built by dbt on DuckDB and on Spark (``BOUNCEHOUSE_ENGINE=spark``, one SparkSession for the whole run):
the fixture the two-engine tests compare."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

CORPUS_TESTS = Path(__file__).resolve().parents[1] / "corpus" / "test_real_samples.py"
# After the generator's week and the corpus' samples, so every suppression rule has something to decide.
AS_OF = datetime(2026, 11, 9)
GENERATED_START = datetime(2026, 11, 1)
MARTS = ("message_status", "suppression_list", "deliverability_daily")


def _corpus_landing_writer() -> Any:
    """tests/corpus's write_landing (the real samples as Firehose objects), loaded under its own name."""
    spec = importlib.util.spec_from_file_location("corpus_real_samples", CORPUS_TESTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.write_landing


@dataclass(frozen=True)
class TwoEngines:
    """Each mart as DuckDB built it and as Spark built it: column names, then rows (raw values)."""

    duckdb: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    spark: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    # Spark's marts as export_marts copied them into the DuckDB warehouse (what the digest reads).
    exported: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    ingest_counts: dict[str, Any]
    spark_counts: dict[str, Any]
    seconds: dict[str, float]


def _duckdb_marts(warehouse: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        marts = {}
        for mart in MARTS:
            cursor = con.execute(f"select * from main.{mart}")
            marts[mart] = ([d[0] for d in cursor.description], cursor.fetchall())
        return marts
    finally:
        con.close()


def _spark_marts(session: Any) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    marts = {}
    for mart in MARTS:
        frame = session.table(f"main.{mart}")
        marts[mart] = (frame.columns, [tuple(row) for row in frame.collect()])
    return marts


@pytest.fixture(scope="session")
def two_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoEngines]:
    from bouncehouse import spark
    from bouncehouse.config import load_settings
    from bouncehouse.demo import generate
    from bouncehouse.ingest import ingest
    from bouncehouse.transform import transform

    home = tmp_path_factory.mktemp("two-engines")
    landing = home / "landing"
    generate(landing, messages=400, start=GENERATED_START, days=7, seed=12)
    _corpus_landing_writer()(landing)
    with pytest.MonkeyPatch.context() as env:  # session scope: the per-test env isolation is not active yet
        for name in list(os.environ):
            if name.startswith(("BOUNCEHOUSE_", "AWS_")):
                env.delenv(name)
        env.setenv("BOUNCEHOUSE_HOME", str(home))
        # Spark hands timestamps to Python in the process's time zone; the warehouse's are naive UTC.
        env.setenv("TZ", "UTC")
        time.tzset()
        settings = load_settings(
            {
                "source": str(landing),
                "warehouse": str(home / "warehouse" / "bouncehouse.duckdb"),
                "lake": str(home / "lake"),
                "as_of": AS_OF,
            },
            env={},
            home=home,
        )
        seconds = {}
        started = time.monotonic()
        counts = ingest(settings)
        seconds["ingest"] = time.monotonic() - started
        started = time.monotonic()
        transform(settings)
        seconds["duckdb"] = time.monotonic() - started
        duckdb_marts = _duckdb_marts(settings.warehouse)
        started = time.monotonic()
        spark_counts = transform(replace(settings, engine="spark"))
        seconds["spark"] = time.monotonic() - started
        yield TwoEngines(
            duckdb=duckdb_marts,
            spark=_spark_marts(spark.session(settings)),
            exported=_duckdb_marts(settings.warehouse),
            ingest_counts=counts,
            spark_counts=spark_counts,
            seconds=seconds,
        )
    time.tzset()
