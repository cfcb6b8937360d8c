"""``python -m bouncehouse generate``: a realistic, deterministic Firehose landing tree of SES feedback.

The tree is what S3 would hold at the end of the simulated period: messages are sent over
``[start, start + days)`` (more by day than by night), SES reports what happens to each recipient
(generate_ses), SNS and Firehose carry the events to ``YYYY/MM/DD/HH/`` objects by arrival time
(generate_firehose); events that would arrive after the period ends are not there yet.

It streams: messages are simulated send-hour by send-hour and each arrival hour is written as soon
as no later send can arrive in it, so memory holds only the hours still open (events arrive at most
a day after their send). Same arguments, same bytes: one ``random.Random(seed)``, no clock (unless
``start`` is None), gzip with mtime 0.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bouncehouse.demo.firehose import FirehoseWriter, Record
from bouncehouse.demo.ses import (
    DAY,
    FORCED_SCENARIOS,
    HOUR,
    MINUTE,
    Simulator,
    repeat_soft_bounce_address,
)
from bouncehouse.errors import ConfigError

log = logging.getLogger(__name__)

MAX_DAYS = 366
REPEAT_SOFT_BOUNCE_MIN_MESSAGES = 30


def generate(out: Path, *, messages: int, start: datetime | None, days: int, seed: int) -> dict[str, Any]:
    """Write ``messages`` simulated messages' SES feedback under ``out`` and return what was written.

    ``start`` is naive UTC (an aware datetime is converted); None means ``days`` days before now,
    truncated to the hour. Returns counts of exactly what is on disk: objects, records, events
    (distinct), messages, recipients, bytes, duplicates and malformed records by kind, and more.
    """
    _check_sizes(messages, days)
    start = _period_start(start, days)
    out = _output_folder(Path(out))

    started = time.monotonic()
    start_ms = int(start.replace(tzinfo=UTC).timestamp() * 1000)
    end_ms = start_ms + days * DAY
    # One generator for everything, drawn from in a fixed order: the same seed gives the same bytes.
    rng = random.Random(seed)
    simulator = Simulator(rng, address_pool_size=max(20, int(messages * 0.7)))
    writer = FirehoseWriter(out, rng, end_ms=end_ms)
    repeat_sends = _repeat_soft_bounce_schedule(rng, messages, start_ms, end_ms)
    _Stream(simulator, writer, rng, end_ms).run(start_ms, messages - len(repeat_sends), repeat_sends)

    result = writer.tally.as_dict()
    result.update(
        out=str(out),
        start=start.isoformat(),
        end=(start + timedelta(days=days)).isoformat(),
        seed=seed,
        messages_simulated=messages,
        repeat_soft_bounce_addresses=len({a for _, _, a, _ in repeat_sends}),
        seconds=round(time.monotonic() - started, 1),
    )
    log.info(
        "generate: wrote %d objects, %d records (%d events, %d messages, %d duplicates, %d malformed), %d bytes in %.1fs",
        result["objects"], result["records"], result["events"], result["messages"], result["duplicates"],
        result["malformed"], result["bytes"], result["seconds"],
    )  # fmt: skip
    return result


def _check_sizes(messages: int, days: int) -> None:
    if messages < 1:
        raise ConfigError(f"--messages must be at least 1, got {messages}")
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days must be between 1 and {MAX_DAYS}, got {days}")


def _output_folder(out: Path) -> Path:
    """``out``, created if need be; ConfigError when it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"the output folder {out} is not writable: choose another --out")
    existing = sum(1 for p in out.rglob("*") if p.is_file())
    if existing:
        log.warning("%s already holds %d files: new objects are added beside them", out, existing)
    return out


# (send time, "regular" or "repeat", the repeat send's address, whether that send is delivered)
_Send = tuple[int, str, str | None, bool]


@dataclass
class _Stream:
    """One run's sends, simulated hour by hour; each record waits in ``pending`` for its arrival hour."""

    simulator: Simulator
    writer: FirehoseWriter
    rng: random.Random
    end_ms: int
    pending: dict[int, list[Record]] = field(default_factory=lambda: defaultdict(list))
    event_seq: int = 0
    message_seq: int = 0
    regular_index: int = 0

    def run(self, start_ms: int, regular: int, repeat_sends: list[tuple[int, str, str, bool]]) -> None:
        # Work in UTC clock hours (the first and last may be partial when start is not on the hour).
        first_hour, last_hour = start_ms // HOUR, (self.end_ms - 1) // HOUR
        slices = [
            (max(start_ms, h * HOUR), min(self.end_ms, (h + 1) * HOUR))
            for h in range(first_hour, last_hour + 1)
        ]
        per_hour = _sends_per_hour(regular, slices)
        forced = _forced_positions(regular)
        self._add(self.writer.setup_notice(start_ms + 5 * MINUTE, self.event_seq))
        self.event_seq += 1
        repeat_at = 0
        for number, (hour, (slice_start, slice_end)) in enumerate(
            zip(range(first_hour, last_hour + 1), slices, strict=True)
        ):
            sends = sorted(
                slice_start + self.rng.randrange(slice_end - slice_start) for _ in range(per_hour[number])
            )
            batch: list[_Send] = [(t, "regular", None, False) for t in sends]
            while repeat_at < len(repeat_sends) and repeat_sends[repeat_at][0] < slice_end:
                batch.append(repeat_sends[repeat_at])
                repeat_at += 1
            batch.sort(key=lambda item: item[0])
            for send in batch:
                self._send(send, forced)
            # Nothing sent after this hour can arrive in it: write it out.
            self.writer.write_hour(self.pending.pop(hour, []))
            if (number + 1) % 24 == 0 or hour == last_hour:
                tally = self.writer.tally
                log.info(
                    "generate: hour %d/%d (%d%%): %d objects, %d records so far",
                    number + 1, len(slices), 100 * (number + 1) // len(slices), tally.objects, tally.records,
                )  # fmt: skip

    def _send(self, send: _Send, forced: dict[int, str]) -> None:
        """Simulate one message and queue its events that happen before the period ends."""
        t0_ms, kind, address, delivered = send
        if kind == "regular":
            _, recipients, events = self.simulator.message(t0_ms, forced.get(self.regular_index))
            self.regular_index += 1
        else:
            _, recipients, events = self.simulator.repeat_soft_bounce_message(
                t0_ms, address, delivered=delivered
            )
        for event in events:
            if event.at_ms >= self.end_ms:
                continue
            record = self.writer.wrap(
                event, event_seq=self.event_seq, message_seq=self.message_seq, recipients=recipients
            )
            self.event_seq += 1
            if record is not None:
                self._add(record)
        self.message_seq += 1

    def _add(self, record: Record) -> None:
        self.pending[record.arrival_ms // HOUR].append(record)


def _period_start(start: datetime | None, days: int) -> datetime:
    if start is None:
        now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        return now - timedelta(days=days)
    if start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    return start.replace(microsecond=0)


def _sends_per_hour(total: int, slices: list[tuple[int, int]]) -> list[int]:
    """Spread ``total`` sends over the hour slices, busier by day (UTC) than by night; exact total."""
    weights = []
    for slice_start, slice_end in slices:
        hour_of_day = (slice_start // HOUR) % 24
        busy = 0.3 + 0.7 * max(0.0, math.sin(math.pi * (hour_of_day - 6) / 16))
        weights.append(busy * (slice_end - slice_start) / HOUR)
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    # Largest remainders take the sends that rounding down left over.
    for index in sorted(range(len(slices)), key=lambda i: (counts[i] - exact[i], i))[: total - sum(counts)]:
        counts[index] += 1
    return counts


def _forced_positions(regular: int) -> dict[int, str]:
    """Put each forced scenario on one message, spread over the first 80% of the sends (so their
    late events still land before the period ends)."""
    n = len(FORCED_SCENARIOS)
    if regular <= n:
        return dict(enumerate(FORCED_SCENARIOS[:regular]))
    span = 0.8 * regular if 0.8 * regular >= n else regular
    return {int((k + 0.5) * span / n): scenario for k, scenario in enumerate(FORCED_SCENARIOS)}


def _repeat_soft_bounce_schedule(
    rng: random.Random, messages: int, start_ms: int, end_ms: int
) -> list[tuple[int, str, str, bool]]:
    """Sends to a few mailboxes that stay full: 3-5 soft bounces each within six days, so the
    soft-bounce suppression rule fires. Every third address recovers: a later message is delivered.
    Returns (send time, "repeat", address, delivered) sorted by time."""
    if messages < REPEAT_SOFT_BOUNCE_MIN_MESSAGES:
        return []
    count = max(3, min(100, messages // 800))
    usable = end_ms - start_ms - 6 * HOUR  # the last bounce lands well before the period ends
    window = min(6 * DAY, usable)
    sends: list[tuple[int, str, str, bool]] = []
    for index in range(count):
        address = repeat_soft_bounce_address(index)
        begin = start_ms + rng.randrange(max(1, usable - window + 1))
        times = sorted(begin + rng.randrange(window) for _ in range(rng.randint(3, 5)))
        sends += [(t, "repeat", address, False) for t in times]
        if index % 3 == 2:
            recovered = times[-1] + rng.randint(HOUR, 12 * HOUR)
            if recovered < end_ms - 2 * HOUR:
                sends.append((recovered, "repeat", address, True))
    sends.sort(key=lambda item: item[0])
    return sends
