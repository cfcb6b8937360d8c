"""The raw lake: the tables dbt reads as sources, also written as Parquet files partitioned by day.

``BOUNCEHOUSE_LAKE`` names it: a folder, or ``s3://bucket/prefix`` (written through boto3, with the client
ingest reads S3 with: DuckDB's httpfs cannot be downloaded on locked-down machines). Unset: no lake.
Engines that read Parquet (Spark through dbt-spark) build the same dbt models from it.

Layout, Hive-style so that Spark's partition discovery adds a ``day`` column::

    {lake}/{table}/day=YYYY-MM-DD/{file_id}.parquet

``table`` is the DuckDB table's name (TABLES), and the files hold exactly its columns (the partition
column lives in the path only; ``pruned_sends_daily`` is partitioned on its own ``day`` column). Each file
holds the rows of one table that one write put there on one day: the write is the row's *marker* (the
ingest batch's ``loaded_at``, the prune run's ``pruned_at``), and ``file_id`` is the marker's time
(``20261203T131500123456``), so files sort in the order they were written.

Exactly once. A file is a function of the warehouse: the rows of its table with its marker and day, as the
table holds them now. Every write that changes such rows queues the (table, marker, day) it changed in
``ops.lake_outbox``, inside its own transaction: ingest for its batch's events and rejected records and for
the rejected records a re-read object replaces (``QUEUE_INGESTED``, one step of ingest's commit); prune for
the events it removes, the deliveries it moves to its own marker and the rows it adds. After the commit,
``export_pending`` rewrites each queued file from its table under the same name (a rename into place, or an
S3 PUT, each atomic), removes it if no row is left, and only then drops the entry. A crash at any point
leaves the entry queued and the next writer (ingest or prune) redoes it: that writes the same file again,
never a second one, and never loses one. Prune thus rewrites the day partitions of ``ses_events`` it touched
file by file, with no moment when a pruned event sits in the lake beside its ``pruned_*`` row for longer
than the export takes.

The first export to a lake (or after ``BOUNCEHOUSE_LAKE`` changed, or was unset for a while) writes every
file of every table, then removes the files no table row names (left from an earlier use of that lake).
A reader during an export may see it half done (one file rewritten, the next not yet): build from the lake
after ingest and prune, as the DAGs do (the writers and the transform share the one-slot pool).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError
from bouncehouse.s3 import LazyS3Client
from bouncehouse.warehouse import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LakeTable:
    """A raw table in the lake: its marker column and the SQL of its partition day."""

    name: str
    marker: str
    day: str | None  # None: the table's own ``day`` column

    @property
    def day_sql(self) -> str:
        return self.day or "day"

    def select_rows(self) -> str:
        """Its rows with a ``day`` column (which COPY's PARTITION_BY moves into the path)."""
        day = "" if self.day is None else f", {self.day} as day"
        return f"select *{day} from raw.{self.name}"

    def select_files(self, where: str = "") -> str:
        """One row per file (table name, marker, day) of its rows ``where`` holds."""
        return f"select '{self.name}', {self.marker}, {self.day_sql} from raw.{self.name} {where}"


TABLES = {
    table.name: table
    for table in (
        # Event day (the event's own time); an event without one, on the day it was loaded.
        LakeTable("ses_events", "loaded_at", "coalesce(event_at, loaded_at)::date"),
        # A record that could not be read has no event time: the day it was rejected.
        LakeTable("rejected_records", "rejected_at", "rejected_at::date"),
        # The send day the counts belong to (the table's own column).
        LakeTable("pruned_sends_daily", "pruned_at", None),
        # The send day, as pruned_sends_daily counted it.
        LakeTable("pruned_recipients", "pruned_at", "coalesce(sent_at, pruned_at)::date"),
        # The day of the prune that last raised the address's latest delivery.
        LakeTable("pruned_deliveries", "pruned_at", "pruned_at::date"),
    )
}
PRUNE_TABLES = ("pruned_sends_daily", "pruned_recipients", "pruned_deliveries")


def _queue(selects: list[str], queued_at: str) -> str:
    """Queue the files the ``selects`` name (table name, marker, day), while a lake is in use."""
    union = "\n    union all\n    ".join(selects)
    return f"""
insert into ops.lake_outbox (table_name, marker, day, queued_at)
select distinct table_name, marker, day, {queued_at}
from (
    {union}
) as changed(table_name, marker, day)
where exists (select 1 from ops.lake_state)
"""


# One step of ingest's commit (between inserting the events and replacing the rejected records): the
# batch's own files, and those of the rejected records about to be replaced (an object read again).
QUEUE_INGESTED = _queue(
    [
        TABLES["ses_events"].select_files("where loaded_at = $loaded_at"),
        "select 'rejected_records', $loaded_at, $loaded_at::date from ingest_rows r "
        "join ingest_batch b on b.obj = r.obj where r.reject is not null",
        TABLES["rejected_records"].select_files("where source_key in (select key from ingest_batch)"),
    ],
    "$loaded_at",
)

# Before prune changes anything: the files of the events it removes, and of the deliveries it moves to
# its own marker ({classified} is dbt's int_recipient_events_classified; any delivery of a pruned message
# may raise the address's row).
QUEUE_BEFORE_PRUNE = _queue(
    [
        TABLES["ses_events"].select_files("where message_id in (select message_id from prune_candidates)"),
        TABLES["pruned_deliveries"].select_files(
            "where email in (select recipient from {classified} where event_class = 'delivery'"
            " and message_id in (select message_id from prune_candidates))"
        ),
    ],
    "$queued_at",
)

# After prune wrote its rows: its own files.
QUEUE_PRUNED = _queue(
    [TABLES[name].select_files(f"where {TABLES[name].marker} = $marker") for name in PRUNE_TABLES],
    "$marker",
)

QUEUE_EVERYTHING = _queue([table.select_files() for table in TABLES.values()], "$queued_at")


def file_id(marker: datetime) -> str:
    """The file name (without ``.parquet``) of a marker's files: its time, to the microsecond."""
    return marker.strftime("%Y%m%dT%H%M%S%f")


def file_key(table: str, day: date, marker: datetime) -> str:
    """Where a file lives, relative to the lake."""
    return f"{table}/day={day.isoformat()}/{file_id(marker)}.parquet"


# --- what the writers call ----------------------------------------------------------------------------


def queue_before_prune(con: duckdb.DuckDBPyConnection, classified: str) -> None:
    """In prune's transaction, once prune_candidates is filled: the files its deletions will change."""
    con.execute(QUEUE_BEFORE_PRUNE.replace("{classified}", classified), {"queued_at": _now()})


def queue_pruned(con: duckdb.DuckDBPyConnection, pruned_at: datetime) -> None:
    """In prune's transaction, once its rows are written: the files they go to."""
    con.execute(QUEUE_PRUNED, {"marker": pruned_at})


def export_pending(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, s3_client: Any | None = None
) -> dict[str, dict[str, int]]:
    """Rewrite every queued lake file from its table (see the module's docstring); per table, the files
    written, the rows they hold and the files removed. Call it after the writer's commit, on its
    connection (so no other writer exports at the same time)."""
    if settings.lake is None:
        _forget_lake(con)
        return {}
    lake = open_lake(settings.lake, s3_client=s3_client)
    state = con.execute("select lake, reconciled from ops.lake_state").fetchall()
    if [row[0] for row in state] != [lake.uri]:
        _start_lake(con, lake.uri)
        state = [(lake.uri, False)]
    counts = {name: {"files": 0, "rows": 0, "removed": 0} for name in TABLES}
    with lake.staging() as staging:
        for name, marker, days in _pending(con):
            written, rows, removed = _export_files(con, lake, staging, TABLES[name], marker, days)
            counts[name]["files"] += written
            counts[name]["rows"] += rows
            counts[name]["removed"] += removed
            _mark_done(con, name, marker)
    if not state[0][1]:
        for name, removed in _remove_strays(con, lake).items():
            counts[name]["removed"] += removed
        con.execute("update ops.lake_state set reconciled = true")
    for name, table_counts in counts.items():
        if any(table_counts.values()):
            log.info(
                "lake %s: %s: %d files written (%d rows), %d removed",
                lake.uri, name, table_counts["files"], table_counts["rows"], table_counts["removed"],
            )  # fmt: skip
    return {name: table_counts for name, table_counts in counts.items() if any(table_counts.values())}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _forget_lake(con: duckdb.DuckDBPyConnection) -> None:
    """No lake configured: stop queueing; a lake configured later starts from every file."""
    if con.execute("select count(*) from ops.lake_state").fetchone()[0]:
        with transaction(con):
            con.execute("delete from ops.lake_state")
            con.execute("delete from ops.lake_outbox")


def _start_lake(con: duckdb.DuckDBPyConnection, uri: str) -> None:
    """A lake new to this warehouse: queue every file of every table, in one transaction."""
    log.info("lake %s: new to this warehouse; writing every table", uri)
    with transaction(con):
        con.execute("delete from ops.lake_state")
        con.execute("delete from ops.lake_outbox")
        con.execute(
            "insert into ops.lake_state (lake, since, reconciled) values (?, ?, false)", [uri, _now()]
        )
        con.execute(QUEUE_EVERYTHING, {"queued_at": _now()})


def _pending(con: duckdb.DuckDBPyConnection) -> list[tuple[str, datetime, list[date]]]:
    """The queued files, per table and marker, oldest first."""
    return con.execute(
        """
        select table_name, marker, list(distinct day order by day)
        from ops.lake_outbox group by table_name, marker order by min(queued_at), marker, table_name
        """
    ).fetchall()


def _export_files(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    staging: Path,
    table: LakeTable,
    marker: datetime,
    days: list[date],
) -> tuple[int, int, int]:
    """Rewrite one marker's files of ``days`` from the table; (files written, rows, files removed)."""
    out = staging / f"{table.name}-{file_id(marker)}"
    rows = con.execute(
        f"""
        copy ({table.select_rows()} where {table.marker} = $marker and list_contains($days, {table.day_sql}))
        to '{out}' (format parquet, partition_by (day), compression zstd)
        """,
        {"marker": marker, "days": days},
    ).fetchone()[0]
    written = removed = 0
    for day in days:
        files = sorted((out / f"day={day.isoformat()}").glob("*.parquet"))
        if len(files) > 1:
            raise RuntimeError(f"DuckDB wrote {len(files)} files for {table.name} day={day}; expected one")
        if files:
            lake.put(files[0], file_key(table.name, day, marker))
            written += 1
        else:
            removed += lake.delete(file_key(table.name, day, marker))
    shutil.rmtree(out, ignore_errors=True)
    return written, int(rows), removed


def _mark_done(con: duckdb.DuckDBPyConnection, table: str, marker: datetime) -> None:
    """The marker's files of ``table`` match the table: drop their entries."""
    con.execute("delete from ops.lake_outbox where table_name = ? and marker = ?", [table, marker])


def _remove_strays(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, int]:
    """Remove the lake's files no table row names (an earlier use of the lake left them)."""
    removed: dict[str, int] = {}
    for name, table in TABLES.items():
        expected = {
            file_key(name, day, marker)
            for _, marker, day in con.execute(f"select distinct * from ({table.select_files()})").fetchall()
        }
        strays = sorted(lake.keys(name) - expected)
        removed[name] = sum(lake.delete(key) for key in strays)
    return removed


# --- where the files go -------------------------------------------------------------------------------


class LocalLake:
    """A folder: files are written beside it (``.staging``, same file system) and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        parent = self.root / ".staging"
        try:
            shutil.rmtree(parent, ignore_errors=True)  # what a crashed export left; writers hold the lock
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the lake folder {self.root}: {exc.strerror} (BOUNCEHOUSE_LAKE)"
            ) from None
        try:
            yield Path(tempfile.mkdtemp(dir=parent))
        finally:
            shutil.rmtree(parent, ignore_errors=True)

    def put(self, file: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)

    def delete(self, key: str) -> int:
        target = self.root / key
        if not target.exists():
            return 0
        target.unlink()
        try:
            target.parent.rmdir()  # an emptied day partition goes too
        except OSError:
            pass
        return 1

    def keys(self, table: str) -> set[str]:
        return {
            path.relative_to(self.root).as_posix() for path in (self.root / table).glob("day=*/*.parquet")
        }


class S3Lake(LazyS3Client):
    """``s3://bucket/prefix``: files are written to a local folder, then uploaded (a PUT is atomic)."""

    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def staging(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="bouncehouse-lake-") as folder:
            yield Path(folder)

    def put(self, file: Path, key: str) -> None:
        with self._errors("write"):
            self.client.upload_file(str(file), self.bucket, self._key(key))

    def delete(self, key: str) -> int:
        with self._errors("write"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return 1

    def keys(self, table: str) -> set[str]:
        start = len(self._key(""))
        found: set[str] = set()
        with self._errors("list"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(f"{table}/")
            )
            for page in pages:
                found.update(
                    item["Key"][start:]
                    for item in page.get("Contents", [])
                    if item["Key"].endswith(".parquet")
                )
        return found

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """What boto3 raises for a wrong bucket, endpoint or credentials, as one line."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, S3UploadFailedError) as exc:
            if isinstance(exc, ClientError):
                code = exc.response.get("Error", {}).get("Code", "")
            else:  # upload_file names the ClientError's code in its own message
                found = re.search(r"\((\w+)\) when calling", str(exc))
                code = found.group(1) if found else ""
            if code in ("NoSuchBucket", "404"):
                raise ConfigError(
                    f"S3 bucket {self.bucket!r} does not exist (lake {self.uri}): check BOUNCEHOUSE_LAKE"
                ) from None
            raise ConfigError(
                f"cannot {action} the lake {self.uri} ({code or exc}): check the AWS credentials / connection"
            ) from None
        except (BotoCoreError, OSError) as exc:
            raise ConfigError(
                f"cannot {action} the lake {self.uri}: {exc} (check AWS_ENDPOINT_URL and credentials)"
            ) from None


Lake = LocalLake | S3Lake


def open_lake(uri: str, *, s3_client: Any | None = None) -> Lake:
    """The lake ``uri`` names (as config.parse_lake left it: an absolute folder or s3://bucket/prefix)."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return S3Lake(bucket, prefix.strip("/"), s3_client)
    return LocalLake(Path(uri))
