"""``python -m bouncehouse ingest``: load every landing object not loaded before into ``raw.ses_events``.

One module per step, in the order ``ingest`` runs them, batch after batch:
``sources`` (list and fetch) -> ``plan`` (the ledger: what to load) -> ``stage`` (local files, checksums,
compression, framing; prefetched) -> ``read`` (records into a temp table, classified; ``records``
splits the objects DuckDB cannot read) -> ``commit`` (one transaction per batch).

How it stays exactly-once and fast:

- The ledger ``raw.ingested_objects`` names each object by key + size + ETag (S3) or key + size +
  SHA-256 (local; an unchanged size and mtime skips the hashing). A listed object that matches its
  ledger row is skipped; a rewritten one (same key, new size or content) is read again.
- Objects are loaded in batches of a bounded number of bytes and of objects, one transaction per batch: the
  batch's events, its rejected records and its ledger rows commit together, so a process killed at
  any moment leaves no object half-loaded, and the next run simply loads what is not in the ledger.
- DuckDB's own JSON reader splits and parses the records (newline-separated or back to back) and
  one SQL statement unwraps SNS envelopes and classifies each record. An object DuckDB cannot read
  (a record that is not JSON or not UTF-8), or that holds a record to set aside, is split record by
  record in Python instead (ingest_records), so the rest of it still loads and every bad record is
  named with its position and byte offset in ``raw.rejected_records``.
- An event is one row: event_id (SNS MessageId, else md5 of the minified SES JSON) is checked
  within the batch, against ``raw.ses_events`` and, through message_id, against
  ``raw.pruned_messages``: a late event of a pruned message stays dropped, except a Bounce,
  Complaint or Reject when prune recorded the message's recipients (dbt then gives it back).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse import lake
from bouncehouse.config import Settings
from bouncehouse.ingest.commit import commit
from bouncehouse.ingest.plan import plan, read_ledger, refresh_mtimes
from bouncehouse.ingest.read import Limits, read_batch
from bouncehouse.ingest.sources import LocalSource, open_source
from bouncehouse.ingest.stage import StagedObject, staged_batches
from bouncehouse.warehouse import writer

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 5.0

# The counts the contract names for ``ingest``, first in its JSON summary (and at the top of ``run``'s).
CONTRACT_COUNTS = ("objects_loaded", "objects_skipped", "events_loaded", "duplicates", "rejected")


@dataclass
class Totals:
    objects_seen: int = 0
    objects_loaded: int = 0
    objects_skipped: int = 0
    objects_reread: int = 0  # loaded again because their content changed
    objects_vanished: int = 0  # listed, then gone before they could be read
    objects_per_record: int = 0  # read by the per-record path (they held a bad record)
    records: int = 0
    events_loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    bytes: int = 0
    batches: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    last_progress: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        result = {k: v for k, v in self.__dict__.items() if k not in ("started", "last_progress")}
        return {**{k: result.pop(k) for k in CONTRACT_COUNTS}, **result}


def ingest(
    settings: Settings, *, s3_client: Any | None = None, batch_bytes: int | None = None
) -> dict[str, Any]:
    """Load every object under ``settings.source`` that the ledger does not hold (or holds changed)."""
    source = open_source(settings.source, s3_client=s3_client)
    if isinstance(source, LocalSource):
        source.check()  # a missing folder is a ConfigError before the warehouse is touched
    batch_bytes = batch_bytes or settings.ingest_batch_bytes
    totals = Totals()
    with writer(settings) as con:
        configure(con, settings)
        ledger = read_ledger(con)
        listed = list(source.list_objects())
        totals.objects_seen = len(listed)
        to_load, unchanged = plan(source, listed, ledger)
        totals.objects_skipped = len(listed) - len(to_load)
        refresh_mtimes(con, unchanged)
    log.info(
        "ingest: %s lists %d objects: %d to load, %d already loaded",
        source.uri, len(listed), len(to_load), totals.objects_skipped,
    )  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bouncehouse-ingest-") as scratch,
        writer(settings) as con,
    ):
        configure(con, settings)
        batches = staged_batches(
            source, to_load, ledger, Path(scratch), batch_bytes, totals, settings.ingest_batch_objects
        )
        for staged in batches:
            _load_batch(con, staged, totals, Limits.of(settings))
            _log_progress(totals, len(to_load))
        # After the commits, the batches' files in the lake (BOUNCEHOUSE_LAKE), and any a crash left queued.
        exported = lake.export_pending(con, settings, s3_client=s3_client)
    totals.seconds = round(time.monotonic() - totals.started, 2)
    log.info(
        "ingest: loaded %d objects (%d skipped): %d records, %d events, %d duplicates, %d rejected in %.1fs",
        totals.objects_loaded, totals.objects_skipped, totals.records, totals.events_loaded,
        totals.duplicates, totals.rejected, totals.seconds,
    )  # fmt: skip
    return {**totals.as_dict(), **({"lake": exported} if exported else {})}


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The DuckDB session settings ingest runs with."""
    # Record order comes from WITH ORDINALITY, so DuckDB need not preserve insertion order, which
    # lets it write in parallel (several times faster on big batches).
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    con.execute(f"set memory_limit = '{settings.ingest_memory_limit}'")


def _load_batch(
    con: duckdb.DuckDBPyConnection, staged: list[StagedObject], totals: Totals, limits: Limits
) -> None:
    """Read the batch into temp tables, then commit it."""
    totals.objects_per_record += read_batch(con, staged, limits)
    counts = commit(con, datetime.now(UTC).replace(tzinfo=None))
    totals.batches += 1
    totals.bytes += sum(item.size for item in staged)
    for key, value in counts.items():
        setattr(totals, key, getattr(totals, key) + value)
    con.execute("drop table if exists ingest_rows")
    con.execute("drop table if exists ingest_batch")


def _log_progress(totals: Totals, total_objects: int) -> None:
    now = time.monotonic()
    done = totals.objects_loaded + totals.objects_vanished
    if done < total_objects and now - totals.last_progress < PROGRESS_EVERY_SECONDS and totals.batches > 1:
        return
    totals.last_progress = now
    elapsed = max(now - totals.started, 1e-6)
    log.info(
        "ingest: objects %d/%d (%d%%), %d events loaded, %.0f events/s, %.1f MB",
        done, total_objects, 100 * done // max(total_objects, 1), totals.events_loaded,
        totals.events_loaded / elapsed, totals.bytes / 1e6,
    )  # fmt: skip
