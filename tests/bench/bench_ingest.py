"""Benchmark: ingest against the floor, DuckDB alone doing the least any loader must do.

    python tests/bench/bench_ingest.py [--messages 110000] [--days 3] [--seed 7] [--runs 3] [--keep DIR]

The floor (``child_floor``): DuckDB alone decompressing, parsing and unwrapping the SNS envelope of
every record of every object (the broken ones and their objects included), and storing one row per
record in a table of a new DuckDB file. Nothing more: no event id, type or time, no dedupe, ledger,
rejected records or batches.

Two landings (``bouncehouse.demo``): issue 13's one day (100k messages, seed 11: about 274k events in
179 objects, 13 holding a broken record) and the current N (110k messages over 3 days, seed 7: about
303k events), with as many again beside N (2N, for peak memory). On each, ingest and the floor run
``--runs`` times, taking turns, each in a fresh process (so peak RSS is that run's own) and into a new
file; the medians are compared: ingest / floor, events/s, peak RSS.

For context, once each on N: DuckDB alone over the objects it reads whole as back-to-back JSON, without
unwrapping (into a file table, into a memory table, only parsed), and ingest's own classifying SQL
(unwrap, extract, hash) into a file with none of ingest's numbering, dedupe, ledger or batching.
Peak RSS at N and 2N shows whether memory grows with the size of the landing. It should not: objects
load in batches of bounded bytes, and DuckDB's cache stops at BOUNCEHOUSE_INGEST_MEMORY_LIMIT.
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
# Issue 13's data: 100k messages over one day (about 274k events, 228 MB, 179 objects, 13 of them
# holding a broken record). Seed 11 is the one, of seeds 1 to 20, closest to the count of
# objects holding a broken record (14).
DAY_MESSAGES = 100_000
DAY_SEED = 11


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


def _framed_objects(source: Path) -> dict[tuple[str, str], list[str]]:
    """Every object, grouped by (compression, DuckDB reader format) as ingest's staging tells them."""
    from bouncehouse.ingest.records import is_gzip
    from bouncehouse.ingest.stage import SNIFF_BYTES, framing_of

    groups: dict[tuple[str, str], list[str]] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        compression = "gzip" if is_gzip(head) else "none"
        fmt = "newline_delimited" if framing_of(head, compression) == "newline" else "unstructured"
        groups.setdefault((compression, fmt), []).append(str(path))
    return groups


def _reader_sql(groups: dict[tuple[str, str], list[str]]) -> tuple[str, dict[str, list[str]]]:
    """One read_json_objects call per group (a line that is not JSON comes back as null)."""
    reads = [
        f"select json from read_json_objects($f{n}, format = '{fmt}', compression = '{comp}'"
        + (", ignore_errors = true)" if fmt == "newline_delimited" else ")")
        for n, (comp, fmt) in enumerate(groups)
    ]
    params = {f"f{n}": files for n, files in enumerate(groups.values())}
    return " union all ".join(reads), params


def _refused_whole(groups: dict[tuple[str, str], list[str]]) -> list[tuple[str, str]]:
    """(compression, path) of the back-to-back objects DuckDB's reader refuses whole: one of their
    records is broken, and DuckDB skips a parse error only in newline-delimited JSON."""
    import duckdb

    con = duckdb.connect()
    refused = []
    for (compression, fmt), files in groups.items():
        for path in files if fmt == "unstructured" else ():
            try:
                con.execute(
                    "select count(*) from read_json_objects($1, format = 'unstructured', compression = $2)",
                    [path, compression],
                ).fetchall()
            except duckdb.Error:
                refused.append((compression, path))
    return refused


# The floor: DuckDB alone doing the least any loader of these objects must do.
FLOOR_SQL = """
insert into records
select case when env[1] = 'Notification' then env[2] else rec end
from (select json::varchar as rec, json_extract_string(json, ['$.Type', '$.Message']) as env from ({reads}))
"""


# Where a record starts in these objects: after a record's closing brace, or (after a record cut off
# mid-way, which never closes) where an envelope or a bare SES JSON opens; inside an envelope's Message
# string its quotes are escaped, so these never match there.
RECORD_STARTS = (b'{"Type":', b'{"eventType":', b'{"notificationType":')


def _cut_records(content: bytes) -> bytes:
    """Records back to back, one per line (an empty line between two is no record)."""
    content = content.replace(b"}{", b"}\n{")
    for start in RECORD_STARTS:
        content = content.replace(start, b"\n" + start)
    return content


def child_floor(source: str, target: str) -> dict[str, Any]:
    """The floor ingest is measured against: DuckDB alone decompressing, parsing and unwrapping every
    record of every object, and storing one row per record in a table of a new DuckDB file.

    - Every object and every record: a broken record is a null row, as it is one record to ingest.
      A back-to-back object DuckDB's reader refuses whole (it holds a broken record) is cut into one
      record per line (``_cut_records``) and read as lines; that cut is timed. Which objects those
      are is found before the clock starts: a loader cannot know it, so the floor only gets lower.
    - Unwrap: the SNS envelope's ``Message`` (the SES JSON, a string) is the row, else the record.
    - Store: one varchar column, zstd like ingest's payload, in a new file, checkpointed.
    Nothing else: no event id, type or time, no dedupe, ledger, rejected records or batches.
    """
    import gzip

    import duckdb

    groups = _framed_objects(Path(source))
    refused = _refused_whole(groups)
    for compression, path in refused:
        groups[(compression, "unstructured")].remove(path)
    con = duckdb.connect(target)
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    con.execute("create table records (payload varchar using compression zstd)")
    cut_dir = Path(target + ".cut")
    cut_dir.mkdir(exist_ok=True)
    started = time.monotonic()
    for n, (compression, path) in enumerate(refused):
        data = Path(path).read_bytes()
        cut = cut_dir / f"{n}.json"
        cut.write_bytes(_cut_records(gzip.decompress(data) if compression == "gzip" else data))
        groups.setdefault(("none", "newline_delimited"), []).append(str(cut))
    reads, params = _reader_sql(groups)
    con.execute(FLOOR_SQL.format(reads=reads), params)
    con.execute("checkpoint")
    seconds = time.monotonic() - started
    (records,) = con.execute("select count(*) from records").fetchone()
    con.close()
    shutil.rmtree(cut_dir, ignore_errors=True)
    return {
        "seconds": seconds,
        "records": records,
        "objects": sum(len(f) for f in groups.values()),
        "cut_objects": len(refused),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _readable_objects(source: Path) -> dict[tuple[str, str], list[str]]:
    """Objects grouped by (compression, format) that DuckDB reads whole, as 'unstructured' JSON
    (probed, not timed): the context baselines leave the few others out."""
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


def _fresh(path: Path) -> str:
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def _median_runs(runs: int, work: Path, source: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ingest and the floor, ``runs`` times each, taking turns (so both see the same load); each
    run in a fresh process and into a new file. Returns the median run of each."""
    ingests, floors = [], []
    for _ in range(runs):
        floors.append(_run_child("floor", str(source), _fresh(work / "floor.duckdb")))
        ingests.append(_run_child("ingest", str(source), _fresh(work / "ingest.duckdb")))
    return tuple(sorted(found, key=lambda r: r["seconds"])[len(found) // 2] for found in (ingests, floors))


def _generate(path: Path, messages: int, start: datetime, days: int, seed: int) -> None:
    from bouncehouse.demo import generate

    if not path.exists():
        print(f"generating {messages} messages over {days} days (seed {seed}) into {path} ...", flush=True)
        result = generate(path, messages=messages, start=start, days=days, seed=seed)
        print(
            f"  {result['events']} events, {result['objects']} objects, {result['bytes'] / 1e6:.0f} MB, "
            f"{result['malformed']} broken records"
        )


def _report(name: str, source: Path, ingest: dict[str, Any], floor: dict[str, Any], runs: int) -> dict:
    objects, size = _size(source)
    counts = ingest["counts"]
    if floor["records"] != counts["records"]:
        raise SystemExit(f"{name}: the floor read {floor['records']} records, ingest {counts['records']}")
    ratio = ingest["seconds"] / floor["seconds"]
    print(
        f"{name}: {objects} objects, {size / 1e6:.0f} MB landed, {counts['records']} records, "
        f"{counts['events_loaded']} events, {counts['objects_per_record']} objects holding a bad record"
    )
    print(
        f"  ingest  {ingest['seconds']:6.2f}s = {counts['events_loaded'] / ingest['seconds']:,.0f} events/s, "
        f"peak RSS {ingest['peak_rss_mb']:.0f} MB (median of {runs})"
    )
    print(
        f"  floor   {floor['seconds']:6.2f}s = {floor['records'] / floor['seconds']:,.0f} records/s, "
        f"peak RSS {floor['peak_rss_mb']:.0f} MB ({floor['cut_objects']} objects cut into lines; median of {runs})"
    )
    print(f"  ratio ingest / floor: {ratio:.2f}x")
    return {"ratio": round(ratio, 3), "ingest": ingest, "floor": floor, "objects": objects, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=110_000, help="messages per half (about 2.75 events each)"
    )
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument(
        "--day-messages", type=int, default=DAY_MESSAGES, help="messages of the one-day data (issue 13)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="runs of ingest and of the floor (medians)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        children = {
            "ingest": child_ingest,
            "floor": child_floor,
            "classify": child_classify,
            "baseline": child_baseline,
        }
        print(json.dumps(children[kind](*rest), default=str))
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    day = work / "issue13-day"
    landing = work / "landing"
    first, second = landing / "part1", landing / "part2"
    try:
        _generate(day, args.day_messages, START, 1, DAY_SEED)
        _generate(first, args.messages, START, args.days, args.seed)
        _generate(second, args.messages, START + timedelta(days=args.days), args.days, args.seed + 1)

        results = {}
        for name, source in (("one day (issue 13)", day), ("N (current data)", first)):
            ingest, floor = _median_runs(args.runs, work, source)
            results[name] = _report(name, source, ingest, floor, args.runs)

        # Context, once each on N: DuckDB alone without the envelope unwrapped, on the objects it reads whole.
        file_table = _run_child("baseline", str(first), _fresh(work / "baseline.duckdb"))
        memory = _run_child("baseline", str(first), ":memory:")
        stream = _run_child("baseline", str(first), "stream")
        classify = _run_child("classify", str(first), _fresh(work / "classify.duckdb"))
        at_n = results["N (current data)"]["ingest"]
        per_record = at_n["seconds"] / at_n["counts"]["records"]
        print("context on N, DuckDB alone over the objects it reads whole (no cut), per record:")
        for label, baseline in (
            ("records into a file table, not unwrapped", file_table),
            ("records into a memory table, not unwrapped", memory),
            ("only read and parsed", stream),
            ("ingest's classifying SQL into a file, no numbering, dedupe or ledger", classify),
        ):
            own = baseline["seconds"] / baseline["records"]
            print(f"  {label}: {baseline['seconds']:.2f}s; ingest is {per_record / own:.2f}x")

        at_2n = _run_child("ingest", str(landing), _fresh(work / "2n.duckdb"))
        print(
            f"ingest 2N: {at_2n['counts']['events_loaded']} events in {at_2n['seconds']:.1f}s "
            f"= {at_2n['counts']['events_loaded'] / at_2n['seconds']:,.0f} events/s, peak RSS "
            f"{at_2n['peak_rss_mb']:.0f} MB (N: {at_n['peak_rss_mb']:.0f} MB; DuckDB's memory limit "
            f"{at_2n['memory_limit']} caps both)"
        )
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
        context = {"file": file_table, "memory": memory, "stream": stream, "classify": classify}
        print(json.dumps({**results, "2N": at_2n, "context": context}, default=str))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
