"""The DuckDB warehouse file: connections that respect its one-writer rule, and the raw schema.

DuckDB lets one process at a time open a file for writing. Every writer here opens the file for the
duration of one unit of work, closes it, and retries with backoff while another process holds the lock
(Airflow also serialises writers through a one-slot pool). Analysts read the published snapshot
(see ``publish_snapshot``) or open the file read-only between runs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from bouncehouse.errors import ConfigError, DiskFullError, WarehouseBusyError

if TYPE_CHECKING:
    from bouncehouse.config import Settings

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"

# Raw tables are written by Python (ingest, prune, digest); dbt reads them as sources.
# All timestamps are UTC, stored as TIMESTAMP (no time zone) so that date_trunc never depends on
# the reader's TimeZone setting.
RAW_DDL = f"""
create schema if not exists {RAW_SCHEMA};
create schema if not exists {OPS_SCHEMA};

-- One row per distinct SES event. event_id: the SNS MessageId when enveloped, else md5 of the SES JSON.
create table if not exists {RAW_SCHEMA}.ses_events (
    event_id        varchar not null,
    event_type      varchar,
    message_id      varchar,
    event_at        timestamp,
    source_key      varchar not null,
    -- zstd: payloads take a quarter of the space, and load twice as fast, as with DuckDB's default
    -- string compression (measured by make bench); warehouses made earlier keep the default.
    payload         json not null using compression zstd,
    loaded_at       timestamp not null,
    sns_message_id  varchar,
    source_position bigint
);

-- One row per object loaded: the ledger that makes loading exactly-once.
create table if not exists {RAW_SCHEMA}.ingested_objects (
    key            varchar not null,
    size           bigint not null,
    etag           varchar,
    checksum       varchar,
    last_modified  timestamp,
    compression    varchar,
    records        bigint not null,
    events_loaded  bigint not null,
    duplicates     bigint not null,
    rejected       bigint not null,
    loaded_at      timestamp not null,
    times_loaded   integer not null default 1
);

-- One row per record that could not be read; the rest of its object still loads.
create table if not exists {RAW_SCHEMA}.rejected_records (
    source_key   varchar not null,
    position     bigint not null,
    byte_offset  bigint,
    error        varchar not null,
    excerpt      varchar,
    rejected_at  timestamp not null
);

-- Written by prune: the messages it removed and what they contributed to deliverability_daily (so no
-- daily figure changes when they go). Ingest drops every late event of a pruned message except a
-- Bounce, Complaint or Reject, which it loads when recipients_recorded (prune kept the message's
-- recipients in pruned_recipients, from which dbt gives the message back its statuses and figures);
-- messages pruned before that table existed keep dropping every late event.
create table if not exists {RAW_SCHEMA}.pruned_messages (
    message_id           varchar not null,
    sent_at              timestamp,
    pruned_at            timestamp not null,
    recipients_recorded  boolean default false
);
alter table {RAW_SCHEMA}.pruned_messages add column if not exists recipients_recorded boolean default false;
-- One row per recipient of a pruned message: what message_status said of it when prune removed it.
-- When a late Bounce, Complaint or Reject brings the message back, dbt turns these rows into stand-in
-- events (int_recipient_events_restored), so message_status, suppression_list and deliverability_daily
-- come out as if the message had never been pruned.
create table if not exists {RAW_SCHEMA}.pruned_recipients (
    message_id      varchar not null,
    recipient       varchar not null,
    final_status    varchar not null,   -- sent, delivered or delayed
    sent_at         timestamp,
    status_at       timestamp,
    last_event_at   timestamp,
    last_loaded_at  timestamp,
    opened          boolean not null,
    clicked         boolean not null,
    is_digest       boolean not null,
    tags            json,
    source_address  varchar,
    subject         varchar,
    pruned_at       timestamp not null
);
create table if not exists {RAW_SCHEMA}.pruned_sends_daily (
    day        date not null,
    sent       bigint not null,
    delivered  bigint not null,
    pruned_at  timestamp not null,
    delayed    bigint not null default 0
);
-- Warehouses made before prune carried delayed sends.
alter table {RAW_SCHEMA}.pruned_sends_daily add column if not exists delayed bigint default 0;
-- Of `sent`, recipients whose message had a Send event (deliverability_daily.sends_source); null in rows
-- written before prune recorded it, and likewise pruned_recipients.has_send_event.
alter table {RAW_SCHEMA}.pruned_sends_daily add column if not exists sent_with_send_event bigint;
alter table {RAW_SCHEMA}.pruned_recipients add column if not exists has_send_event boolean;
-- Per address, the latest delivery among the messages prune removed (upserted by prune in the same
-- transaction), so suppression_list still sees a delivery that cleared soft bounces once it is gone.
create table if not exists {RAW_SCHEMA}.pruned_deliveries (
    email              varchar primary key,
    last_delivered_at  timestamp not null,
    pruned_at          timestamp not null
);

-- Written by digest: one row per (route, day), claimed before the email goes out, so a re-run never
-- sends it again. state: 'sending' while a transmission is in flight (a crash leaves it: unconfirmed,
-- not resent), 'retrying' between attempts (safe to send again), 'sent' once the transport took it.
-- claimed_by: the run that holds the claim (every change checks it); lease_until: until when a
-- 'retrying' claim stays that run's, so two runs of one day never both send (the run renews it).
create table if not exists {OPS_SCHEMA}.digest_log (
    route          varchar not null,
    digest_day     date not null,
    state          varchar not null,
    recipients     varchar[] not null,
    skipped        varchar[],
    transport      varchar not null,
    message_ref    varchar,
    message_id     varchar,
    subject        varchar,
    bounced        bigint,
    complained     bigint,
    attempts       integer not null default 0,
    last_error     varchar,
    claimed_at     timestamp not null,
    sent_at        timestamp,
    claimed_by     varchar,
    lease_until    timestamp,
    primary key (route, digest_day)
);
-- Digest logs made before claims had an owner.
alter table {OPS_SCHEMA}.digest_log add column if not exists claimed_by varchar;
alter table {OPS_SCHEMA}.digest_log add column if not exists lease_until timestamp;

-- The Parquet lake (bouncehouse.lake, BOUNCEHOUSE_LAKE). lake_state: the lake in use, if any (one row), and
-- whether files no table row names have been cleared from it. lake_outbox: the lake files a committed
-- write changed and that are not yet rewritten (one per table, marker and day); queued in the writer's
-- transaction, removed once the file matches the table.
create table if not exists {OPS_SCHEMA}.lake_state (
    lake        varchar not null,
    since       timestamp not null,
    reconciled  boolean not null default false
);
create table if not exists {OPS_SCHEMA}.lake_outbox (
    table_name  varchar not null,
    marker      timestamp not null,
    day         date not null,
    queued_at   timestamp not null
);
"""

# The dbt marts the digest, prune and the CLI summaries read.
MARTS = ("message_status", "suppression_list", "deliverability_daily")

# What DuckDB says when another process holds the file's lock (opening it, or dbt opening it).
LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


def is_lock_error(text: object) -> bool:
    """True when an error message says another process holds the warehouse's lock."""
    return any(marker in str(text) for marker in LOCK_MARKERS)


def _check_writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the warehouse folder {path.parent}: {exc.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"the warehouse file {path} is not writable (check its permissions)")
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"the warehouse folder {path.parent} is not writable (check its permissions)")


def lock_retries(path: Path, lock_timeout: float, *, who: str = "bouncehouse") -> Iterator[int]:
    """Attempt numbers for work that may meet another process's lock: the caller tries once per number
    and breaks out when it got through. Between attempts it waits with backoff (0.2 s doubling up to
    10 s); past ``lock_timeout`` seconds it raises WarehouseBusyError instead of yielding again."""
    deadline = time.monotonic() + lock_timeout
    delay = 0.2
    attempt = 1
    while True:
        yield attempt
        if time.monotonic() >= deadline:
            raise WarehouseBusyError(
                f"the warehouse {path} stayed locked by another process for {lock_timeout:.0f}s; "
                "close other writers (or analysts' read-write sessions) and retry"
            )
        log.info("%s: warehouse %s is locked by another process; retrying in %.1fs", who, path, delay)
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
        attempt += 1


def connect(path: Path, *, read_only: bool = False, lock_timeout: float = 600.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting (with backoff) while another process holds its lock."""
    path = Path(path)
    if read_only:
        if not path.exists():
            raise ConfigError(f"no warehouse at {path}: run `python -m bouncehouse ingest` first")
    else:
        _check_writable(path)
    for _attempt in lock_retries(path, lock_timeout):
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise ConfigError(f"cannot open the warehouse {path}: {exc}") from None
    raise AssertionError("unreachable: lock_retries raises when it gives up")


@contextmanager
def session(
    path: Path, *, read_only: bool = False, lock_timeout: float = 600.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one unit of work; the raw schema exists before the caller sees it."""
    con = connect(path, read_only=read_only, lock_timeout=lock_timeout)
    try:
        if not read_only:
            ensure_raw_schema(con)
        yield con
    except duckdb.Error as exc:
        raise disk_full_error(exc) or exc from None
    finally:
        _close(con)


def _close(con: duckdb.DuckDBPyConnection) -> None:
    """Close (DuckDB checkpoints here); a full disk is one line, any other error stands."""
    try:
        con.close()
    except duckdb.Error as exc:
        raise disk_full_error(exc) or exc from None


def writer(settings: Settings) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-write session on the configured warehouse (its lock timeout included)."""
    return session(settings.warehouse, lock_timeout=settings.lock_timeout)


def reader(settings: Settings) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only session on the configured warehouse, for reports that change nothing."""
    return session(settings.warehouse, read_only=True, lock_timeout=settings.lock_timeout)


def prepare(settings: Settings) -> Path:
    """Create the warehouse file and its raw schema (the sources dbt reads), waiting for the lock."""
    with writer(settings):
        pass
    return Path(settings.warehouse)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One all-or-nothing unit of work: commit when the block ends, roll back when it raises.

    A failed rollback (DuckDB has already aborted the transaction, e.g. on a full disk) never hides
    the error that caused it."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException as exc:
        try:
            con.execute("rollback")
        except duckdb.Error as rollback_error:
            log.debug("rollback after a failed transaction: %s", rollback_error)
        raise disk_full_error(exc) or exc from None
    try:
        con.execute("commit")
    except duckdb.Error as exc:
        raise disk_full_error(exc) or exc from None


_NO_SPACE = re.compile(r'(?:file|directory) "([^"]+)"[^"]*No space left on device|No space left on device')


def disk_full_error(exc: BaseException) -> DiskFullError | None:
    """One line naming the full disk's folder, when ``exc`` is DuckDB finding no space left."""
    match = _NO_SPACE.search(str(exc)) if isinstance(exc, duckdb.Error) else None
    if match is None:
        return None
    where = (
        f"the folder {Path(match.group(1)).parent} (writing {match.group(1)})"
        if match.group(1)
        else "the warehouse"
    )
    return DiskFullError(
        f"no space left on the disk of {where}: nothing of this step was committed; "
        "free some space and run again"
    )


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_DDL)


def snapshot_path(path: Path) -> Path:
    """Where analysts find a read-only copy of the warehouse: ``<name>.snapshot.duckdb`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.snapshot{path.suffix}")


def publish_snapshot(path: Path, *, lock_timeout: float = 600.0) -> Path:
    """Copy the warehouse to its snapshot atomically, so readers never block the pipeline.

    The copy is taken while holding the write lock (checkpointed first), so it is consistent.
    """
    target = snapshot_path(path)
    tmp = target.with_name(target.name + ".tmp")
    con = connect(path, lock_timeout=lock_timeout)
    try:
        con.execute("checkpoint")
        shutil.copyfile(path, tmp)
    finally:
        con.close()
    os.replace(tmp, target)
    return target


def publish(settings: Settings) -> Path:
    """``publish_snapshot`` of the configured warehouse; returns the snapshot's absolute path."""
    return publish_snapshot(Path(settings.warehouse).resolve(), lock_timeout=settings.lock_timeout)


def find_relation(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The quoted ``schema.name`` of a table or view in this database, in whichever schema dbt put it."""
    row = con.execute(
        """
        select table_schema from information_schema.tables
        where table_name = ? and table_catalog = current_database() and table_schema not like 'temp%'
        order by table_schema = 'main' desc, table_schema
        limit 1
        """,
        [name],
    ).fetchone()
    if row is None:
        return None
    return f'"{row[0]}"."{name}"'
