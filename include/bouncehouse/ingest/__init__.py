"""``python -m bouncehouse ingest``: load every landing object not loaded before into ``raw.ses_events``.

How it stays exactly-once and fast:

- The ledger ``raw.ingested_objects`` names each object by key + size + ETag (S3) or key + size +
  SHA-256 (local; an unchanged size and mtime skips the hashing). A listed object that matches its
  ledger row is skipped; a rewritten one (same key, new size or content) is read again.
- Objects are loaded in batches of a bounded number of bytes, one transaction per batch: the
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

import hashlib
import logging
import os
import re
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError
from bouncehouse.ingest.records import decompress, is_gzip, split_records
from bouncehouse.ingest.sources import FetchedObject, LocalSource, Source, SourceObject, open_source
from bouncehouse.warehouse import session

log = logging.getLogger(__name__)

# Content (decompressed) bytes per transaction: bounds memory whatever the size of the backfill.
DEFAULT_BATCH_BYTES = 128 << 20
# Landed bytes per DuckDB read statement: an object DuckDB cannot read makes the statement fail,
# and only this much is read again without it.
READ_GROUP_BYTES = 32 << 20
# DuckDB keeps what it wrote cached up to its memory limit: a fixed limit keeps peak memory flat
# however much is loaded. A batch's records sit in memory until they commit; at 512MB DuckDB spills
# them and ingest is a quarter slower (make bench), above 1GB nothing is gained.
DEFAULT_MEMORY_LIMIT = "1GB"
DOWNLOAD_THREADS = 8
HASH_THREADS = 2
SNIFF_BYTES = 64 << 10
PROGRESS_EVERY_SECONDS = 5.0
# Rows are named obj * stride + ord: unique within a batch and ordered like (object, position).
ROW_ID_STRIDE = 1 << 40

# The counts the contract names for ``ingest``, first in its JSON summary (and at the top of ``run``'s).
CONTRACT_COUNTS = ("objects_loaded", "objects_skipped", "events_loaded", "duplicates", "rejected")

BATCH_BYTES_ENV = "BOUNCEHOUSE_INGEST_BATCH_BYTES"
MEMORY_LIMIT_ENV = "BOUNCEHOUSE_INGEST_MEMORY_LIMIT"

# The SES JSON fields ingest needs; json_extract reads them all in one parse. [1] is the whole
# document, minified: the stored payload, and the input of md5 for events without an envelope.
SES_PATHS = (
    "$",
    "$.eventType",
    "$.notificationType",
    "$.mail.messageId",
    # The event's own time, else the send time (Send, Reject, Rendering Failure have no other).
    "$.bounce.timestamp",
    "$.complaint.timestamp",
    "$.delivery.timestamp",
    "$.deliveryDelay.timestamp",
    "$.open.timestamp",
    "$.click.timestamp",
    "$.subscription.timestamp",
    "$.mail.timestamp",
)

REJECT_MESSAGE_NOT_JSON = "message_not_json: the SNS envelope's Message is not JSON"
REJECT_NO_SES_TYPE = "no_ses_type: neither eventType/notificationType nor mail.messageId"
REJECT_NOT_JSON = "not_json: not a JSON value"

ROWS_DDL = """
create or replace temp table ingest_rows (
    obj             integer not null,   -- the object's index in the batch
    ord             bigint not null,    -- the record's 1-based position in its object
    event_id        varchar,
    event_type      varchar,
    message_id      varchar,
    event_at        timestamp,
    sns_message_id  varchar,
    payload         json,
    reject          varchar,            -- why the record is set aside; null for an event
    byte_offset     bigint,
    excerpt         varchar
)
"""

# {source}: a relation (obj, ord, rec, byte_offset, excerpt, pre_error). rec is null when the reader
# could not read the record; pre_error is set when the per-record path already rejected it.
CLASSIFY_SQL = """
insert into ingest_rows
with enveloped as (
    select obj, ord, rec, byte_offset, excerpt, pre_error,
           try(json_extract_string(rec, ['$.Type', '$.MessageId', '$.Message'])) as env
    from {source}
), unwrapped as (
    select *, coalesce(env[1] = 'Notification' and env[3] is not null, false) as is_envelope
    from enveloped
), parsed as (
    select *,
           try(json_extract(case when is_envelope then env[3] else rec end, {paths})) as f
    from unwrapped
), fields as (
    select *,
           coalesce(f[2] ->> '$', f[3] ->> '$') as event_type,
           f[4] ->> '$' as message_id
    from parsed
)
select
    obj,
    ord,
    case when is_envelope and env[2] is not null then env[2] else md5(f[1]) end,
    event_type,
    message_id,
    timezone('UTC', try_cast(coalesce(f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12]) ->> '$' as timestamptz)),
    case when is_envelope then env[2] end,
    f[1],
    case
        when pre_error is not null then pre_error
        when rec is null then 'unreadable'
        when env is null then '{not_json}'
        when f is null and is_envelope then '{message_not_json}'
        when f is null then '{not_json}'
        when event_type is null and message_id is null then '{no_ses_type}'
    end,
    byte_offset,
    excerpt
from fields
"""


@dataclass
class StagedObject:
    """An object ready to read: its local file and what the ledger will record about it."""

    obj: int
    key: str
    path: Path
    size: int
    etag: str | None
    checksum: str | None
    last_modified: datetime | None
    compression: str  # 'gzip' | 'none', from the content's magic bytes
    framing: str  # 'newline' | 'concatenated', sniffed from the head of the content
    times_loaded: int


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
    batch_bytes = batch_bytes or _env_int(BATCH_BYTES_ENV, DEFAULT_BATCH_BYTES)
    totals = Totals()
    with session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        _configure(con)
        ledger = _read_ledger(con)
        listed = list(source.list_objects())
        totals.objects_seen = len(listed)
        to_load, unchanged = _plan(source, listed, ledger)
        totals.objects_skipped = len(listed) - len(to_load)
        _refresh_mtimes(con, unchanged)
    log.info(
        "ingest: %s lists %d objects: %d to load, %d already loaded",
        source.uri, len(listed), len(to_load), totals.objects_skipped,
    )  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bouncehouse-ingest-") as scratch,
        session(settings.warehouse, lock_timeout=settings.lock_timeout) as con,
    ):
        _configure(con)
        for staged in _staged_batches(source, to_load, ledger, Path(scratch), batch_bytes, totals):
            _load_batch(con, staged, totals)
            _log_progress(totals, len(to_load))
    totals.seconds = round(time.monotonic() - totals.started, 2)
    result = totals.as_dict()
    log.info(
        "ingest: loaded %d objects (%d skipped): %d records, %d events, %d duplicates, %d rejected in %.1fs",
        totals.objects_loaded, totals.objects_skipped, totals.records, totals.events_loaded,
        totals.duplicates, totals.rejected, totals.seconds,
    )  # fmt: skip
    return result


# --- planning ------------------------------------------------------------------------------------


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    # Record order comes from WITH ORDINALITY, so DuckDB need not preserve insertion order, which
    # lets it write in parallel (several times faster on big batches).
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    con.execute(f"set memory_limit = '{_memory_limit()}'")


def _memory_limit() -> str:
    value = os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value, re.IGNORECASE):
        raise ConfigError(f"{MEMORY_LIMIT_ENV} must look like 2GB or 512MB, got {value!r}")
    return value


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of bytes, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {number}")
    return number


@dataclass(frozen=True)
class LedgerRow:
    size: int
    etag: str | None
    checksum: str | None
    last_modified: datetime | None
    times_loaded: int


def _read_ledger(con: duckdb.DuckDBPyConnection) -> dict[str, LedgerRow]:
    rows = con.execute(
        "select key, size, etag, checksum, last_modified, times_loaded from raw.ingested_objects"
    ).fetchall()
    return {key: LedgerRow(*rest) for key, *rest in rows}


def _plan(
    source: Source, listed: Sequence[SourceObject], ledger: dict[str, LedgerRow]
) -> tuple[list[SourceObject], list[tuple[str, datetime | None]]]:
    """The objects to load, and local objects found unchanged whose mtime the ledger should learn."""
    to_load: list[SourceObject] = []
    touched: list[tuple[str, datetime | None]] = []
    for obj in listed:
        known = ledger.get(obj.key)
        if known is None or known.size != obj.size:
            to_load.append(obj)
        elif not isinstance(source, LocalSource):
            if known.etag != obj.etag:
                to_load.append(obj)
        elif known.last_modified != obj.last_modified:
            # Same size, touched since: only its content can tell.
            assert obj.path is not None
            if _sha256(obj.path) == known.checksum:
                touched.append((obj.key, obj.last_modified))
            else:
                to_load.append(obj)
    return to_load, touched


def _refresh_mtimes(con: duckdb.DuckDBPyConnection, touched: Sequence[tuple[str, datetime | None]]) -> None:
    if touched:
        con.executemany(
            "update raw.ingested_objects set last_modified = ? where key = ?", [(m, k) for k, m in touched]
        )


# --- staging: local files, checksums, compression and framing --------------------------------------


def _staged_batches(
    source: Source,
    to_load: Sequence[SourceObject],
    ledger: dict[str, LedgerRow],
    scratch: Path,
    batch_bytes: int,
    totals: Totals,
) -> Iterator[list[StagedObject]]:
    """Batches of about ``batch_bytes`` of content (decompressed), ready to read.

    Objects are fetched (downloaded or hashed) ahead of the batch being loaded, at most
    ``batch_bytes`` of landed bytes ahead, so neither memory nor scratch space follows the backfill.
    """
    threads = DOWNLOAD_THREADS if not isinstance(source, LocalSource) else HASH_THREADS
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest-fetch") as pool:
        upcoming = iter(to_load)
        window: deque[tuple[SourceObject, Future]] = deque()
        ahead = 0

        def fill() -> None:
            nonlocal ahead
            while ahead < batch_bytes or not window:
                obj = next(upcoming, None)
                if obj is None:
                    return
                window.append((obj, pool.submit(_stage_one, source, obj, scratch)))
                ahead += obj.size

        batch: list[StagedObject] = []
        content = 0
        fill()
        while window:
            obj, future = window.popleft()
            ahead -= obj.size
            fill()
            fetched = future.result()
            if fetched is None:
                totals.objects_vanished += 1
                continue
            local, checksum, compression, framing, content_size = fetched
            known = ledger.get(obj.key)
            totals.objects_reread += known is not None
            batch.append(
                StagedObject(
                    obj=len(batch),
                    key=obj.key,
                    path=local.path,
                    size=local.size,
                    etag=local.etag,
                    checksum=checksum,
                    last_modified=local.last_modified,
                    compression=compression,
                    framing=framing,
                    times_loaded=(known.times_loaded + 1) if known else 1,
                )
            )
            content += content_size
            if content >= batch_bytes or not window:
                yield batch
                if not isinstance(source, LocalSource):
                    for item in batch:
                        item.path.unlink(missing_ok=True)
                batch, content = [], 0


def _stage_one(
    source: Source, obj: SourceObject, scratch: Path
) -> tuple[FetchedObject, str | None, str, str, int] | None:
    local = source.fetch(obj, scratch)
    if local is None:
        return None
    checksum = _sha256(local.path) if isinstance(source, LocalSource) else None
    with open(local.path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
        compression = "gzip" if is_gzip(head) else "none"
        content_size = local.size
        if compression == "gzip" and local.size >= 18:
            # The gzip trailer holds the (last member's) decompressed size, modulo 4 GiB.
            handle.seek(-4, os.SEEK_END)
            content_size = max(local.size, int.from_bytes(handle.read(4), "little"))
    return local, checksum, compression, _framing(head, compression), content_size


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _framing(head: bytes, compression: str) -> str:
    """'newline' when the first records end at line ends; a wrong guess only costs speed."""
    if compression == "gzip":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return "concatenated"
    return "newline" if b"}\n{" in head or b"}\r\n{" in head else "concatenated"


# --- reading and loading ---------------------------------------------------------------------------


def _load_batch(con: duckdb.DuckDBPyConnection, staged: list[StagedObject], totals: Totals) -> None:
    if not staged:
        return
    con.execute(ROWS_DDL)
    _create_batch_table(con, staged)

    unreadable = _read_fast(con, staged)
    flagged = _objects_needing_record_path(con)
    if flagged:
        con.execute("delete from ingest_rows where obj in (select unnest($1::integer[]))", [sorted(flagged)])
    per_record = sorted(flagged | unreadable)
    for index in per_record:
        _read_per_record(con, staged[index])
    totals.objects_per_record += len(per_record)

    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    counts = _commit(con, loaded_at)
    totals.batches += 1
    totals.bytes += sum(item.size for item in staged)
    for key in ("objects_loaded", "records", "events_loaded", "duplicates", "rejected"):
        setattr(totals, key, getattr(totals, key) + counts[key])
    con.execute("drop table if exists ingest_rows")
    con.execute("drop table if exists ingest_batch")


def _create_batch_table(con: duckdb.DuckDBPyConnection, staged: Sequence[StagedObject]) -> None:
    con.execute(
        """
        create or replace temp table ingest_batch as
        select unnest($obj::integer[]) as obj, unnest($key::varchar[]) as key, unnest($path::varchar[]) as path,
               unnest($size::bigint[]) as size, unnest($etag::varchar[]) as etag,
               unnest($checksum::varchar[]) as checksum, unnest($last_modified::timestamp[]) as last_modified,
               unnest($compression::varchar[]) as compression, unnest($times_loaded::integer[]) as times_loaded
        """,
        {
            "obj": [s.obj for s in staged],
            "key": [s.key for s in staged],
            "path": [str(s.path) for s in staged],
            "size": [s.size for s in staged],
            "etag": [s.etag for s in staged],
            "checksum": [s.checksum for s in staged],
            "last_modified": [s.last_modified for s in staged],
            "compression": [s.compression for s in staged],
            "times_loaded": [s.times_loaded for s in staged],
        },
    )


def _read_fast(con: duckdb.DuckDBPyConnection, staged: Sequence[StagedObject]) -> set[int]:
    """Read objects with DuckDB in groups; returns the objects it could not read."""
    unreadable: set[int] = set()
    group: list[StagedObject] = []
    size = 0
    for item in staged:
        if item.size == 0:
            continue  # nothing to read; its ledger row still records it
        if _GLOB_CHARS.search(str(item.path)):
            # DuckDB's readers take a path as a glob pattern: "a[1]" would read "a1", or nothing.
            unreadable.add(item.obj)
            continue
        if group and size + item.size > READ_GROUP_BYTES:
            unreadable |= _read_group(con, group)
            group, size = [], 0
        group.append(item)
        size += item.size
    if group:
        unreadable |= _read_group(con, group)
    return unreadable


def _read_group(con: duckdb.DuckDBPyConnection, group: list[StagedObject]) -> set[int]:
    """One statement for the group; an object that makes it fail is left out and the rest re-read."""
    unreadable: set[int] = set()
    remaining = list(group)
    while remaining:
        try:
            con.execute(_classify_sql(_fast_source_sql(remaining)), _fast_params(remaining))
            return unreadable
        except duckdb.Error as exc:
            culprit = _failing_object(exc, remaining)
            if culprit is None:
                if len(remaining) == 1:
                    return unreadable | {remaining[0].obj}
                # The error names no file we gave it: read them one by one to find out.
                for item in remaining:
                    unreadable |= _read_group(con, [item])
                return unreadable
            log.debug("ingest: %s needs the per-record path: %s", culprit.key, str(exc).splitlines()[0])
            unreadable.add(culprit.obj)
            remaining = [item for item in remaining if item is not culprit]
    return unreadable


def _fast_source_sql(items: Sequence[StagedObject]) -> str:
    """One reader call per object, all in one statement.

    WITH ORDINALITY then numbers each object's records 1..n, and the calls, as separate pipelines,
    still run side by side (a single call over many files, numbered, runs on one thread).
    """
    reads = []
    for item in items:
        # Newline-framed objects are read line by line, and a line that is not JSON comes back as
        # null (ignore_errors) instead of failing the statement; records back to back need the
        # 'unstructured' reader, which fails on a broken record (see _read_group).
        options = (
            "format = 'newline_delimited', ignore_errors = true"
            if item.framing == "newline"
            else "format = 'unstructured'"
        )
        reads.append(
            f"select {item.obj} as obj, ordinality as ord, json from read_json_objects("
            f"$path{item.obj}, {options}, compression = '{item.compression}') with ordinality"
        )
    union = "\n        union all ".join(reads)
    return f"""(
    select obj, ord, json::varchar as rec,
           null::bigint as byte_offset, null::varchar as excerpt, null::varchar as pre_error
    from ({union})
)"""


def _fast_params(items: Sequence[StagedObject]) -> dict[str, str]:
    return {f"path{item.obj}": str(item.path) for item in items}


def _classify_sql(source_sql: str) -> str:
    paths = "[" + ", ".join(f"'{p}'" for p in SES_PATHS) + "]"
    return CLASSIFY_SQL.format(
        source=source_sql,
        paths=paths,
        not_json=REJECT_NOT_JSON,
        message_not_json=REJECT_MESSAGE_NOT_JSON.replace("'", "''"),
        no_ses_type=REJECT_NO_SES_TYPE,
    )


_FILE_IN_ERROR = re.compile(r'file "([^"]+)"')
_GLOB_CHARS = re.compile(r"[*?\[\]{}\\]")


def _failing_object(exc: Exception, items: Sequence[StagedObject]) -> StagedObject | None:
    by_path = {str(item.path): item for item in items}
    for match in _FILE_IN_ERROR.finditer(str(exc)):
        if match.group(1) in by_path:
            return by_path[match.group(1)]
    return None


def _objects_needing_record_path(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Objects read whole that hold a record to set aside (its byte offset and excerpt are found
    record by record), whose record numbers are not 1..n, or that are not empty yet gave no row
    (never seen; checked, not assumed: an object is never recorded as loaded with what it holds lost)."""
    rows = con.execute(
        """
        select b.obj
        from ingest_batch b left join ingest_rows r on r.obj = b.obj
        where b.size > 0
        group by b.obj
        having count(r.obj) = 0 or count(r.reject) > 0 or max(r.ord) <> count(r.obj) or min(r.ord) <> 1
        """
    ).fetchall()
    return {row[0] for row in rows}


def _read_per_record(con: duckdb.DuckDBPyConnection, item: StagedObject) -> None:
    content, damage = decompress(item.path.read_bytes())
    obj, ords, recs, offsets, excerpts, errors = [], [], [], [], [], []
    position = 0
    for record in split_records(content):
        position = record.position
        obj.append(item.obj)
        ords.append(record.position)
        recs.append(record.text)
        offsets.append(record.byte_offset)
        excerpts.append(record.excerpt)
        errors.append(record.error)
    if damage:
        obj.append(item.obj)
        ords.append(position + 1)
        recs.append(None)
        offsets.append(len(content))
        excerpts.append(None)
        errors.append(damage)
    if not obj:
        return
    source = """(
    select unnest($obj::integer[]) as obj, unnest($ord::bigint[]) as ord, unnest($rec::varchar[]) as rec,
           unnest($byte_offset::bigint[]) as byte_offset, unnest($excerpt::varchar[]) as excerpt,
           unnest($pre_error::varchar[]) as pre_error
)"""
    con.execute(
        _classify_sql(source),
        {
            "obj": obj,
            "ord": ords,
            "rec": recs,
            "byte_offset": offsets,
            "excerpt": excerpts,
            "pre_error": errors,
        },
    )
    (set_aside,) = con.execute(
        "select count(reject) from ingest_rows where obj = $obj", {"obj": item.obj}
    ).fetchone()
    log.info("ingest: %s read record by record: %d records, %d set aside", item.key, len(obj), set_aside)


def _commit(con: duckdb.DuckDBPyConnection, loaded_at: datetime) -> dict[str, int]:
    """The batch's events, rejected records and ledger rows, in one transaction."""
    con.execute("begin transaction")
    try:
        # Another process may have loaded some of these objects since we listed them: theirs stands.
        con.execute(
            """
            delete from ingest_batch b using raw.ingested_objects o
            where o.key = b.key and o.size = b.size and o.etag is not distinct from b.etag
              and o.checksum is not distinct from b.checksum
            """
        )
        con.execute(
            """
            update ingest_batch b set times_loaded = 1 + coalesce(
                (select o.times_loaded from raw.ingested_objects o where o.key = b.key), 0)
            """
        )
        # One row per event: the first copy in the batch (object order, then position), unless
        # the warehouse already holds the event or prune removed its message. A late Bounce, Complaint
        # or Reject of a pruned message still loads (it can suppress the address) when prune recorded
        # the message's recipients, from which dbt restores them (prune.KEEP_EVENT_TYPES: the types that
        # keep a message from being pruned); any other late event of it stays dropped.
        # What the warehouse already holds of this batch: the batch's ids are the build side and the
        # big tables are only scanned, so memory follows the batch, not the warehouse.
        con.execute(
            """
            create or replace temp table ingest_seen as
            select event_id from raw.ses_events
            where event_id in (select event_id from ingest_rows where reject is null)
            union all
            select r.event_id from ingest_rows r
            join (select message_id, coalesce(recipients_recorded, false) as recipients_recorded
                  from raw.pruned_messages
                  where message_id in (select message_id from ingest_rows)) p
              on p.message_id = r.message_id
            where not (p.recipients_recorded
                       and coalesce(r.event_type in ('Bounce', 'Complaint', 'Reject'), false))
            """
        )
        con.execute(
            f"""
            create or replace temp table ingest_chosen as
            select min(obj::bigint * {ROW_ID_STRIDE} + ord) as row_id
            from ingest_rows r
            where reject is null
              and event_id not in (select event_id from ingest_seen)
              and obj in (select obj from ingest_batch)
            group by event_id
            """
        )
        con.execute(
            """
            insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload,
                                        loaded_at, sns_message_id, source_position)
            select r.event_id, r.event_type, r.message_id, r.event_at, b.key, r.payload,
                   $loaded_at, r.sns_message_id, r.ord
            from ingest_rows r
            join ingest_chosen c on c.row_id = r.obj::bigint * $stride + r.ord
            join ingest_batch b on b.obj = r.obj
            """,
            {"loaded_at": loaded_at, "stride": ROW_ID_STRIDE},
        )
        con.execute("delete from raw.rejected_records where source_key in (select key from ingest_batch)")
        con.execute(
            """
            insert into raw.rejected_records (source_key, position, byte_offset, error, excerpt, rejected_at)
            select b.key, r.ord, r.byte_offset, r.reject, r.excerpt, $loaded_at
            from ingest_rows r
            join ingest_batch b on b.obj = r.obj
            where r.reject is not null
            order by b.key, r.ord
            """,
            {"loaded_at": loaded_at},
        )
        con.execute(
            """
            create or replace temp table ingest_counts as
            select b.obj,
                   coalesce(r.records, 0) as records,
                   coalesce(c.loaded, 0) as events_loaded,
                   coalesce(r.events, 0) - coalesce(c.loaded, 0) as duplicates,
                   coalesce(r.rejected, 0) as rejected
            from ingest_batch b
            left join (select obj, count(*) as records, count(reject) as rejected,
                              count(*) - count(reject) as events
                       from ingest_rows group by obj) r on r.obj = b.obj
            left join (select (row_id // $stride)::integer as obj, count(*) as loaded
                       from ingest_chosen group by all) c on c.obj = b.obj
            """,
            {"stride": ROW_ID_STRIDE},
        )
        con.execute("delete from raw.ingested_objects where key in (select key from ingest_batch)")
        con.execute(
            """
            insert into raw.ingested_objects (key, size, etag, checksum, last_modified, compression, records,
                                              events_loaded, duplicates, rejected, loaded_at, times_loaded)
            select b.key, b.size, b.etag, b.checksum, b.last_modified, b.compression, n.records,
                   n.events_loaded, n.duplicates, n.rejected, $loaded_at, b.times_loaded
            from ingest_batch b
            join ingest_counts n on n.obj = b.obj
            order by b.key
            """,
            {"loaded_at": loaded_at},
        )
        objects, records, events, duplicates, rejected = con.execute(
            "select count(*), sum(records), sum(events_loaded), sum(duplicates), sum(rejected) from ingest_counts"
        ).fetchone()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    for table in ("ingest_seen", "ingest_chosen", "ingest_counts"):
        con.execute(f"drop table if exists {table}")
    return {
        "objects_loaded": int(objects),
        "records": int(records or 0),
        "events_loaded": int(events or 0),
        "duplicates": int(duplicates or 0),
        "rejected": int(rejected or 0),
    }


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
