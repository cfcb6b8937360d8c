"""Step 1 of ingest: what to load. The ledger ``raw.ingested_objects`` against what the source lists.

A listed object is loaded when the ledger does not hold it, or holds it with another size, ETag (S3) or
SHA-256 (local). A local entry that is not read (a link, a FIFO: refused when listed) is set aside
once, and again only when its size or mtime changes or it becomes a regular file. A local file touched but unchanged (same size and content, new mtime) is not loaded:
the ledger learns its mtime, so the next run need not hash it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from bouncehouse.ingest.sources import LocalSource, Source, SourceObject

# (key, mtime) of a local object found unchanged.
Touched = tuple[str, datetime | None]


@dataclass(frozen=True)
class LedgerRow:
    size: int
    etag: str | None
    checksum: str | None
    last_modified: datetime | None
    times_loaded: int


def read_ledger(con: duckdb.DuckDBPyConnection) -> dict[str, LedgerRow]:
    rows = con.execute(
        "select key, size, etag, checksum, last_modified, times_loaded from raw.ingested_objects"
    ).fetchall()
    return {key: LedgerRow(*rest) for key, *rest in rows}


def plan(
    source: Source, listed: Sequence[SourceObject], ledger: dict[str, LedgerRow]
) -> tuple[list[SourceObject], list[Touched]]:
    """The objects to load, and local objects found unchanged whose mtime the ledger should learn."""
    to_load: list[SourceObject] = []
    touched: list[Touched] = []
    for obj in listed:
        known = ledger.get(obj.key)
        if known is None or known.size != obj.size:
            to_load.append(obj)
        elif not isinstance(source, LocalSource):
            if known.etag != obj.etag:
                to_load.append(obj)
        elif obj.refusal is not None or known.checksum is None:
            # Never hashed (never opened: a link, a FIFO...): read again when it is not what it was.
            if obj.refusal is None or known.checksum is not None or known.last_modified != obj.last_modified:
                to_load.append(obj)
        elif known.last_modified != obj.last_modified:
            # Same size, touched since: only its content can tell.
            assert obj.path is not None
            if sha256(obj.path) == known.checksum:
                touched.append((obj.key, obj.last_modified))
            else:
                to_load.append(obj)
    return to_load, touched


def refresh_mtimes(con: duckdb.DuckDBPyConnection, touched: Sequence[Touched]) -> None:
    if touched:
        con.executemany(
            "update raw.ingested_objects set last_modified = ? where key = ?", [(m, k) for k, m in touched]
        )


def sha256(path: Path) -> str:
    """A local object's checksum, as the ledger records it."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
