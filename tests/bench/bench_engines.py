"""Benchmark: the same dbt build on DuckDB and on Spark (local[*]) over the same history.

    python tests/bench/bench_engines.py [--events 1000000] [--days 30] [--seed 7] [--keep DIR]

History as bench_transform.py makes it (the generator's simulator, loaded into raw.ses_events, in hourly
batches), then
written to a lake folder by the lake's own export (bouncehouse.lake), as ingest with BOUNCEHOUSE_LAKE
would. Then ``transform`` on DuckDB (a full build, after a warm-up) and ``transform`` with
BOUNCEHOUSE_ENGINE=spark (session start, lake registration, dbt build with its tests, copy back into the
warehouse). Not part of ``make bench`` by default: run it on request (``make bench-engines``).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_transform import START, _at, _ms, load_rows, simulate
from bouncehouse import lake, spark, warehouse
from bouncehouse.config import Settings
from bouncehouse.demo.ses import DAY, HOUR, Simulator
from bouncehouse.transform import transform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history size in events (default 1M)")
    parser.add_argument("--days", type=int, default=30, help="history length in days (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the warehouse and lake in")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_engines_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.duckdb"
    rng = random.Random(args.seed)
    simulator = Simulator(rng, address_pool_size=max(1000, args.events // 6))
    start_ms = _ms(START)
    end_ms = start_ms + args.days * DAY
    # Events per message, as bench_transform.py learns it: from a sample of the simulator.
    probe = simulate(Simulator(random.Random(args.seed), 1000), random.Random(1), start_ms, end_ms, 2000)
    messages = int(args.events / (len(probe) / 2000)) + 1
    history = [r for r in simulate(simulator, rng, start_ms, end_ms, messages) if r[3] < end_ms]
    events = load_rows(path, history, loaded_at_ms=None, source_key="history")
    # As an hourly ingest loads them: one loaded_at per batch, so the lake has a file per batch and day
    # (with a loaded_at per event, as bench_transform.py makes them, it would be one file per event).
    with warehouse.session(path) as con:
        con.execute("update raw.ses_events set loaded_at = date_trunc('hour', loaded_at) + interval 1 hour")
    settings = Settings(warehouse=path, as_of=_at(end_ms + HOUR), lake=str(folder / "lake"))
    started = time.monotonic()
    with warehouse.writer(settings) as con:
        lake.export_pending(con, settings)
    lake_seconds = time.monotonic() - started
    files = sum(1 for _ in (folder / "lake" / "ses_events").glob("day=*/*.parquet"))
    print(f"history: {events:,} events of {messages:,} messages over {args.days} days; lake: {files} files "
          f"written in {lake_seconds:.1f}s", flush=True)  # fmt: skip

    transform(settings)  # warm-up: dbt's first import and parse in this process are not the build's cost
    started = time.monotonic()
    duck = transform(settings, full_refresh=True)
    duck_seconds = time.monotonic() - started
    print(
        f"duckdb: full dbt build {duck_seconds:.1f}s ({duck['models']} models, {duck['tests_passed']} tests)"
    )

    on_spark = replace(settings, engine="spark")
    started = time.monotonic()
    spark.session(on_spark)
    session_seconds = time.monotonic() - started
    started = time.monotonic()
    result = transform(on_spark)
    spark_seconds = time.monotonic() - started
    print(f"spark: session start {session_seconds:.1f}s; transform {spark_seconds:.1f}s (lake views, dbt build "
          f"with {result['tests_passed']} tests, models copied back); {spark_seconds / duck_seconds:.1f}x DuckDB")  # fmt: skip
    print(f"rows: duckdb {duck['rows']}, spark {result['rows']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
