"""Benchmark: ingest a generated landing tree, against DuckDB alone reading the same objects.

    python tests/bench/bench_ingest.py [--messages 110000] [--days 3] [--seed 7] [--keep DIR]

Generates N events (``bouncehouse.demo``, at least 300k by default) and then as many again beside
them, and runs each measurement in a fresh process (so peak RSS is that run's own):

- baseline: DuckDB alone, ``read_json_objects`` over the same objects, three ways: streamed through
  an aggregate (reading and parsing only, nothing kept), into an in-memory table, and into a table
  of a new DuckDB file (what ingest's own write amounts to). Objects DuckDB cannot read as a whole
  (the few holding a broken record) are left out of it. And a fourth: ingest's own classifying SQL
  (unwrap envelopes, extract fields, hash) in one statement into a new file, with none of ingest's
  record numbering, dedupe, ledger or batching: what exactly-once costs on top of DuckDB.
- ingest of N events into a fresh warehouse, then of 2N events into another: events/s, peak RSS.

Prints the figures and the ratio ingest / DuckDB alone; peak RSS at N and 2N shows whether memory
grows with the size of the landing. It should not: objects load in batches of bounded bytes, and
DuckDB's cache stops at BOUNCEHOUSE_INGEST_MEMORY_LIMIT (set it, e.g. to 512MB, to see both runs
held under a lower cap).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 10, 1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ingest(source: str, warehouse: str) -> dict[str, Any]:
    from bouncehouse.config import load_settings
    from bouncehouse.ingest import ingest

    settings = load_settings({"source": source, "warehouse": warehouse})
    started = time.monotonic()
    counts = ingest(settings)
    return {
        "seconds": time.monotonic() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "memory_limit": settings.ingest_memory_limit,
        "counts": counts,
    }


def _readable_objects(source: Path) -> dict[tuple[str, str], list[str]]:
    """Objects grouped by (compression, format) that DuckDB reads whole (probed, not timed)."""
    import duckdb
    from bouncehouse.ingest.records import is_gzip

    con = duckdb.connect()
    groups: dict[tuple[str, str], list[str]] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            compression = "gzip" if is_gzip(handle.read(2)) else "none"
        try:
            con.execute(
                "select count(*) from read_json_objects($1, format = 'unstructured', compression = $2)",
                [str(path), compression],
            ).fetchall()
        except duckdb.Error:
            continue
        groups.setdefault((compression, "unstructured"), []).append(str(path))
    return groups


def child_classify(source: str, target: str) -> dict[str, Any]:
    """DuckDB alone running ingest's classifying SQL over every readable object, into a file table."""
    import duckdb
    from bouncehouse.ingest.read import classify_sql

    groups = _readable_objects(Path(source))
    con = duckdb.connect(target)
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    con.execute(
        """
        create table ingest_rows (
            obj integer, ord bigint, event_id varchar, event_type varchar, message_id varchar,
            event_at timestamp, sns_message_id varchar, payload json using compression zstd,
            reject varchar, byte_offset bigint, excerpt varchar)
        """
    )
    reads = " union all ".join(
        f"select json from read_json_objects($f{n}, format = '{fmt}', compression = '{comp}')"
        for n, (comp, fmt) in enumerate(groups)
    )
    source_sql = f"""(select 0 as obj, 0::bigint as ord, json::varchar as rec, null::bigint as byte_offset,
        null::varchar as excerpt, null::varchar as pre_error from ({reads}))"""
    params = {f"f{n}": files for n, files in enumerate(groups.values())}
    started = time.monotonic()
    con.execute(classify_sql(source_sql), params)
    con.execute("checkpoint")
    seconds = time.monotonic() - started
    (records,) = con.execute("select count(*) from ingest_rows").fetchone()
    con.close()
    return {"seconds": seconds, "records": records, "peak_rss_mb": _peak_rss_mb()}


def child_baseline(source: str, target: str) -> dict[str, Any]:
    """DuckDB alone: every readable object's records into one table (``:memory:`` or a file), or,
    with target ``stream``, only read, parsed and counted."""
    import duckdb

    groups = _readable_objects(Path(source))
    con = duckdb.connect(":memory:" if target == "stream" else target)
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    reads = [
        f"select json from read_json_objects($f{n}, format = '{fmt}', compression = '{comp}')"
        for n, (comp, fmt) in enumerate(groups)
    ]
    params = {f"f{n}": files for n, files in enumerate(groups.values())}
    union = " union all ".join(reads)
    started = time.monotonic()
    if target == "stream":
        # length() makes DuckDB hand over every record's text, so none is skipped unparsed.
        (records, _chars) = con.execute(
            f"select count(*), sum(length(json::varchar)) from ({union})", params
        ).fetchone()
        seconds = time.monotonic() - started
    else:
        con.execute("create table records as " + union, params)
        con.execute("checkpoint")
        seconds = time.monotonic() - started
        (records,) = con.execute("select count(*) from records").fetchone()
    con.close()
    return {
        "seconds": seconds,
        "records": records,
        "objects": sum(len(f) for f in groups.values()),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench child {args[0]} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=110_000, help="messages per half (about 2.75 events each)"
    )
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        child = {"ingest": child_ingest, "classify": child_classify, "baseline": child_baseline}[kind]
        result = child(*rest)
        print(json.dumps(result, default=str))
        return

    from bouncehouse.demo import generate

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    landing = work / "landing"
    first, second = landing / "part1", landing / "part2"
    try:
        halves = ((first, START, args.seed), (second, START + timedelta(days=args.days), args.seed + 1))
        for half, start, seed in halves:
            if not half.exists():
                print(f"generating {args.messages} messages into {half} ...", flush=True)
                result = generate(half, messages=args.messages, start=start, days=args.days, seed=seed)
                print(
                    f"  {result['events']} events, {result['objects']} objects, {result['bytes'] / 1e6:.0f} MB"
                )

        for stale in ("n.duckdb", "2n.duckdb", "baseline.duckdb", "classify.duckdb"):
            for suffix in ("", ".wal"):
                Path(work, stale + suffix).unlink(missing_ok=True)

        baseline_file = _run_child("baseline", str(first), str(work / "baseline.duckdb"))
        baseline_memory = _run_child("baseline", str(first), ":memory:")
        baseline_stream = _run_child("baseline", str(first), "stream")
        baseline_classify = _run_child("classify", str(first), str(work / "classify.duckdb"))
        at_n = _run_child("ingest", str(first), str(work / "n.duckdb"))
        at_2n = _run_child("ingest", str(landing), str(work / "2n.duckdb"))

        objects, size = _size(first)
        events = at_n["counts"]["events_loaded"]
        rate = events / at_n["seconds"]
        print()
        print(
            f"data (N):            {objects} objects, {size / 1e6:.0f} MB landed, {at_n['counts']['records']} records, {events} events"
        )
        print(
            f"ingest N:            {at_n['seconds']:.1f}s = {rate:,.0f} events/s "
            f"({at_n['counts']['records'] / at_n['seconds']:,.0f} records/s), peak RSS {at_n['peak_rss_mb']:.0f} MB"
        )
        print(
            f"DuckDB alone, file:  {baseline_file['seconds']:.1f}s for {baseline_file['records']} records of "
            f"{baseline_file['objects']} objects = {baseline_file['records'] / baseline_file['seconds']:,.0f} records/s"
        )
        print(
            f"DuckDB alone, memory:{baseline_memory['seconds']:.1f}s = "
            f"{baseline_memory['records'] / baseline_memory['seconds']:,.0f} records/s"
        )
        print(
            f"DuckDB alone, parse: {baseline_stream['seconds']:.1f}s = "
            f"{baseline_stream['records'] / baseline_stream['seconds']:,.0f} records/s (read, parsed, not kept)"
        )
        print(
            f"DuckDB alone, ingest's SQL: {baseline_classify['seconds']:.1f}s = "
            f"{baseline_classify['records'] / baseline_classify['seconds']:,.0f} records/s "
            "(classified into a file, no numbering, dedupe or ledger)"
        )
        per_record_ingest = at_n["seconds"] / at_n["counts"]["records"]

        def ratio(baseline: dict[str, Any]) -> float:
            return per_record_ingest / (baseline["seconds"] / baseline["records"])

        print(
            f"ratio ingest / DuckDB alone (time per record): {ratio(baseline_file):.2f}x vs file table, "
            f"{ratio(baseline_memory):.2f}x vs memory table, {ratio(baseline_stream):.2f}x vs parse only, "
            f"{ratio(baseline_classify):.2f}x vs ingest's SQL alone"
        )
        print(
            f"ingest 2N:           {at_2n['counts']['events_loaded']} events in {at_2n['seconds']:.1f}s "
            f"= {at_2n['counts']['events_loaded'] / at_2n['seconds']:,.0f} events/s, peak RSS {at_2n['peak_rss_mb']:.0f} MB "
            f"(N: {at_n['peak_rss_mb']:.0f} MB; DuckDB's memory limit {at_2n['memory_limit']} caps both)"
        )
        print(
            json.dumps(
                {
                    "N": at_n,
                    "2N": at_2n,
                    "baseline_file": baseline_file,
                    "baseline_memory": baseline_memory,
                    "baseline_stream": baseline_stream,
                    "baseline_classify": baseline_classify,
                },
                default=str,
            )
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
