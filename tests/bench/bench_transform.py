"""Benchmark: a full dbt build on a month of SES history, then the incremental build after one new hour.

    python tests/bench/bench_transform.py [--events 1000000] [--days 30] [--seed 7]

History comes from the generator's simulator (realistic SES JSON: sends, deliveries, bounces, opens,
identity notifications, ...), loaded into raw.ses_events the way ingest stores it, with loaded_at a
few minutes after each event (as a 15-minute ingest schedule would). The new hour is the next hour's
sends plus late events (bounces, complaints, opens) of earlier messages. Prints both times, the sizes
and their ratio; the point is that the incremental run costs what the new hour costs, not the month.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from bouncehouse import warehouse
from bouncehouse.config import Settings
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history size in events (default 1M)")
    parser.add_argument("--days", type=int, default=30, help="history length in days (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the warehouse in")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_transform_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.duckdb"
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)

    rng = random.Random(args.seed)
    simulator = Simulator(rng, address_pool_size=max(1000, args.events // 6))
    start_ms = _ms(START)
    end_ms = start_ms + args.days * DAY
    # About 3.9 events per message (measured on the simulator); sample to learn the ratio exactly.
    probe = simulate(Simulator(random.Random(args.seed), 1000), random.Random(1), start_ms, end_ms, 2000)
    per_message = len(probe) / 2000
    messages = int(args.events / per_message) + 1

    began = time.monotonic()
    history = [r for r in simulate(simulator, rng, start_ms, end_ms, messages) if r[3] < end_ms]
    history_events = load_rows(path, history, loaded_at_ms=None, source_key="history")
    print(f"history: {history_events:,} events of {messages:,} messages over {args.days} days "
          f"(simulated and loaded in {time.monotonic() - began:.0f}s)", flush=True)  # fmt: skip

    as_of = _at(end_ms + HOUR + 10 * MINUTE)
    settings = Settings(warehouse=path, as_of=as_of)
    transform(settings)  # warm-up: dbt's first import and parse in this process are not the build's cost
    started = time.monotonic()
    full = transform(settings, full_refresh=True)
    full_seconds = time.monotonic() - started

    # One new hour: that hour's sends (same rate as the history) and late events of older messages.
    hour_messages = max(1, messages // (args.days * 24))
    new_hour = simulate(simulator, rng, end_ms, end_ms + HOUR, hour_messages)
    recent = [
        r
        for r in simulate(simulator, rng, end_ms - DAY, end_ms, hour_messages)
        if end_ms <= r[3] < end_ms + HOUR
    ]
    hour_events = load_rows(
        path, new_hour + recent, loaded_at_ms=end_ms + HOUR + 5 * MINUTE, source_key="new-hour"
    )
    started = time.monotonic()
    incremental = transform(settings)
    incremental_seconds = time.monotonic() - started

    size_mb = path.stat().st_size / 1e6
    print(f"warehouse: {size_mb:,.0f} MB; message_status {full['rows']['message_status']:,} rows, "
          f"suppression_list {full['rows']['suppression_list']:,}, deliverability_daily {full['rows']['deliverability_daily']:,}")  # fmt: skip
    print(f"full build (--full-refresh, {history_events:,} events): {full_seconds:.1f}s "
          f"({full['models']} models, {full['tests_passed']} tests)")  # fmt: skip
    print(f"incremental build after one new hour ({hour_events:,} events, "
          f"{incremental['rows']['message_status'] - full['rows']['message_status']:,} new recipient rows): "
          f"{incremental_seconds:.1f}s")  # fmt: skip
    print(f"ratio incremental / full: {incremental_seconds / full_seconds:.2f} "
          f"(new data / history: {hour_events / history_events:.4f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
