"""Benchmark: a full dbt build on a month of SES history against the hourly run after one new hour.

    python tests/bench/bench_transform.py [--events 1000000] [--days 30] [--seed 7] [--repeats 3]

History comes from the generator's simulator (realistic SES JSON: sends, deliveries, bounces, opens,
identity notifications, ...), loaded into raw.ses_events the way ingest stores it, with loaded_at a
few minutes after each event (as a 15-minute ingest schedule would). The new hour is the next hour's
sends plus late events (bounces, complaints, opens) of earlier messages.

Each repeat starts from the same warehouse (the history, built once) and times, in this process, the
two commands an operator runs: ``transform --full-refresh`` as of the end of the history, then, after
loading the new hour, the hourly ``transform`` as of one hour later (a new as_of, as every hourly run
has). Prints the medians of the repeats and their ratio, then where the hourly run's time goes: dbt's
start and parse, its nodes (with the fixed cost per node), and the row counts and snapshot copy after
dbt. dbt's first import in the process is paid by a warm-up build and is reported apart.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from bouncehouse import transform as transform_module
from bouncehouse import warehouse
from bouncehouse.config import Settings, dbt_project_dir
from bouncehouse.demo.ses import DAY, HOUR, MINUTE, Simulator
from bouncehouse.transform import transform

log = logging.getLogger("bench_transform")

START = datetime(2026, 10, 1)


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def simulate(
    simulator: Simulator, rng: random.Random, start_ms: int, end_ms: int, messages: int
) -> list[tuple]:
    """Rows (event_id, event_type, message_id, event_at_ms, text) of ``messages`` sends in [start, end)."""
    rows = []
    for _ in range(messages):
        t0 = start_ms + rng.randrange(end_ms - start_ms)
        message_id, _, events = simulator.message(t0)
        for event in events:
            rows.append(
                (
                    hashlib.md5(event.text.encode()).hexdigest(),
                    event.type,
                    message_id,
                    event.at_ms,
                    event.text,
                )
            )
    return rows


def load_rows(path: Path, rows: list[tuple], *, loaded_at_ms: int | None, source_key: str) -> int:
    """Insert rows into raw.ses_events in loaded_at order (loaded_at: given, else event time + 5-15 min)."""
    frame = pd.DataFrame(rows, columns=["event_id", "event_type", "message_id", "at_ms", "payload"])
    frame = frame.drop_duplicates("event_id")
    if loaded_at_ms is None:
        lag = (frame["at_ms"] % (10 * MINUTE)) + 5 * MINUTE
        frame["loaded_ms"] = frame["at_ms"] + lag
    else:
        frame["loaded_ms"] = loaded_at_ms
    frame = frame.sort_values("loaded_ms")
    frame["event_at"] = pd.to_datetime(frame["at_ms"], unit="ms")
    frame["loaded_at"] = pd.to_datetime(frame["loaded_ms"], unit="ms")
    frame["source_key"] = source_key
    with warehouse.session(path) as con:
        con.register("incoming", frame)
        con.execute(
            "insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload, loaded_at) "
            "select event_id, event_type, message_id, event_at, source_key, payload::json, loaded_at from incoming "
            "where event_id not in (select event_id from raw.ses_events)"
        )
        con.unregister("incoming")
    return len(frame)


@dataclass
class Run:
    """One timed transform: its counts, wall time, and the time spent inside dbt's invocations."""

    counts: dict[str, Any]
    seconds: float
    dbt_seconds: float
    node_seconds: dict[str, float] = field(default_factory=dict)
    dbt_elapsed: float = 0.0  # dbt's own figure for running the nodes (run_results.json)


@contextmanager
def _timed_dbt(into: list[float]) -> Iterator[None]:
    """Time every dbt invocation transform makes (bench-only instrumentation of its one call site)."""
    original: Callable[[list[str]], Any] = transform_module._invoke

    def timed(args: list[str]) -> Any:
        started = time.monotonic()
        try:
            return original(args)
        finally:
            into.append(time.monotonic() - started)

    transform_module._invoke = timed
    try:
        yield
    finally:
        transform_module._invoke = original


def timed_transform(settings: Settings, **options: Any) -> Run:
    invocations: list[float] = []
    with _timed_dbt(invocations):
        started = time.monotonic()
        counts = transform(settings, **options)
        seconds = time.monotonic() - started
    target, _ = transform_module._run_paths(dbt_project_dir(), Path(settings.warehouse).resolve())
    results = json.loads((target / "run_results.json").read_text())
    nodes = {r["unique_id"]: float(r["execution_time"]) for r in results["results"]}
    return Run(counts, seconds, sum(invocations), nodes, float(results["elapsed_time"]))


def checkpointed_copy(source: Path, target: Path) -> None:
    with warehouse.session(source) as con:
        con.execute("checkpoint")
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, target)


def build_history(path: Path, args: argparse.Namespace) -> tuple[int, int, list[tuple], int]:
    """Load the month of history into ``path``; returns (events, messages, the new hour's rows, end ms)."""
    rng = random.Random(args.seed)
    simulator = Simulator(rng, address_pool_size=max(1000, args.events // 6))
    start_ms = _ms(START)
    end_ms = start_ms + args.days * DAY
    # About 3.9 events per message (measured on the simulator); sample to learn the ratio exactly.
    probe = simulate(Simulator(random.Random(args.seed), 1000), random.Random(1), start_ms, end_ms, 2000)
    messages = int(args.events / (len(probe) / 2000)) + 1
    history = [r for r in simulate(simulator, rng, start_ms, end_ms, messages) if r[3] < end_ms]
    events = load_rows(path, history, loaded_at_ms=None, source_key="history")
    # One new hour: that hour's sends (same rate as the history) and late events of older messages.
    hour_messages = max(1, messages // (args.days * 24))
    new_hour = simulate(simulator, rng, end_ms, end_ms + HOUR, hour_messages)
    recent = [
        r
        for r in simulate(simulator, rng, end_ms - DAY, end_ms, hour_messages)
        if end_ms <= r[3] < end_ms + HOUR
    ]
    return events, messages, new_hour + recent, end_ms


def _median(runs: list[Run], pick: Callable[[Run], float]) -> float:
    return statistics.median(pick(run) for run in runs)


def _node_kind(unique_id: str) -> str:
    return unique_id.split(".", 1)[0]


def report_hour(hours: list[Run], full_rows: dict[str, Any]) -> None:
    """Where the hourly run's time goes (medians over the repeats)."""
    total = _median(hours, lambda r: r.seconds)
    dbt_total = _median(hours, lambda r: r.dbt_seconds)
    nodes_total = _median(hours, lambda r: r.dbt_elapsed)
    node_ids = hours[0].node_seconds.keys()
    per_node = {n: statistics.median(r.node_seconds.get(n, 0.0) for r in hours) for n in node_ids}
    kinds: dict[str, int] = {}
    for node in node_ids:
        kinds[_node_kind(node)] = kinds.get(_node_kind(node), 0) + 1
    # The fixed cost of a node: the median data test here reads a small mart and does next to nothing.
    cheap = sorted(t for n, t in per_node.items() if _node_kind(n) == "test")
    fixed = statistics.median(cheap) if cheap else 0.0
    slowest = sorted(per_node.items(), key=lambda item: -item[1])[:6]
    print(
        f"  one new hour, where the time goes: dbt start and parse {dbt_total - nodes_total:.1f}s; "
        f"dbt's {len(per_node)} nodes {nodes_total:.1f}s ({', '.join(f'{v} {k}s' for k, v in sorted(kinds.items()))}; "
        f"a node costs at least ~{fixed * 1000:.0f} ms, {fixed * len(per_node):.1f}s in all); "
        f"row counts and snapshot copy after dbt {total - dbt_total:.1f}s"
    )
    print("  slowest nodes: " + ", ".join(f"{n.split('.')[2]} {t:.2f}s" for n, t in slowest))
    rows = hours[0].counts["rows"]
    print(f"  new recipient rows in message_status: {rows['message_status'] - full_rows['message_status']:,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history size in events (default 1M)")
    parser.add_argument("--days", type=int, default=30, help="history length in days (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3, help="full and hourly builds to time (default 3)")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the warehouse in")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_transform_"))
    folder.mkdir(parents=True, exist_ok=True)
    path, built = folder / "bench.duckdb", folder / "history-built.duckdb"
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)

    began = time.monotonic()
    history_events, messages, hour_rows, end_ms = build_history(path, args)
    print(f"history: {history_events:,} events of {messages:,} messages over {args.days} days "
          f"(simulated and loaded in {time.monotonic() - began:.0f}s)", flush=True)  # fmt: skip

    full_settings = Settings(warehouse=path, as_of=_at(end_ms + 10 * MINUTE))
    hour_settings = Settings(warehouse=path, as_of=_at(end_ms + HOUR + 10 * MINUTE))
    # Warm-up: dbt's first import and parse in this process, and the first build of the tables.
    warm_up = timed_transform(full_settings)
    print(f"warm-up (dbt's first import in this process, first build): {warm_up.seconds:.1f}s", flush=True)
    checkpointed_copy(path, built)

    fulls: list[Run] = []
    hours: list[Run] = []
    for repeat in range(args.repeats):
        checkpointed_copy(built, path)
        fulls.append(timed_transform(full_settings, full_refresh=True))
        hour_events = load_rows(
            path, hour_rows, loaded_at_ms=end_ms + HOUR + 5 * MINUTE, source_key="new-hour"
        )
        hours.append(timed_transform(hour_settings))
        print(
            f"  repeat {repeat + 1}: full {fulls[-1].seconds:.1f}s, one new hour {hours[-1].seconds:.1f}s",
            flush=True,
        )

    full_seconds = _median(fulls, lambda r: r.seconds)
    hour_seconds = _median(hours, lambda r: r.seconds)
    full = fulls[0].counts
    size_mb = path.stat().st_size / 1e6
    print(f"warehouse: {size_mb:,.0f} MB; message_status {full['rows']['message_status']:,} rows, "
          f"suppression_list {full['rows']['suppression_list']:,}, deliverability_daily {full['rows']['deliverability_daily']:,}")  # fmt: skip
    print(f"full build (transform --full-refresh, {history_events:,} events): {full_seconds:.1f}s "
          f"(median of {args.repeats}; {full['models']} models, {full['tests_passed']} tests)")  # fmt: skip
    print(f"one new hour (transform, {hour_events:,} new events): {hour_seconds:.1f}s "
          f"(median of {args.repeats}; {hours[0].counts['tests_passed']} tests)")  # fmt: skip
    report_hour(hours, full["rows"])
    if "with_unit_tests" in inspect.signature(transform).parameters:
        checkpointed_copy(built, path)
        transform(full_settings, full_refresh=True)
        load_rows(path, hour_rows, loaded_at_ms=end_ms + HOUR + 5 * MINUTE, source_key="new-hour")
        unit = timed_transform(hour_settings, with_unit_tests=True)
        print(
            f"  the same hour with the dbt unit tests (transform --with-unit-tests, once): {unit.seconds:.1f}s"
        )
    print(f"ratio one new hour / full build: {hour_seconds / full_seconds:.2f} "
          f"(new data / history: {hour_events / history_events:.4f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
