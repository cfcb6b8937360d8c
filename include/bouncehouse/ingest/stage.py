"""Step 2 of ingest: each object to load as a local file, with what the ledger and the reader need.

Objects are fetched (downloaded from S3, or hashed in place when local) by a thread pool, ahead of the
batch being loaded but never more than a batch's worth of landed bytes ahead, so neither memory nor
scratch space follows the size of the backfill. Compression is told by the content's magic bytes and
framing (newline-separated or back to back) by the head of the content.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bouncehouse.config import DEFAULT_INGEST_BATCH_OBJECTS
from bouncehouse.ingest.plan import LedgerRow, sha256
from bouncehouse.ingest.records import is_gzip
from bouncehouse.ingest.sources import FetchedObject, LocalSource, Source, SourceObject

if TYPE_CHECKING:
    from bouncehouse.ingest import Totals

DOWNLOAD_THREADS = 8
HASH_THREADS = 2
SNIFF_BYTES = 64 << 10


@dataclass
class StagedObject:
    """An object ready to read: its local file and what the ledger will record about it."""

    obj: int  # its index in the batch
    key: str
    path: Path
    size: int
    etag: str | None
    checksum: str | None
    last_modified: datetime | None
    compression: str  # 'gzip' | 'none', from the content's magic bytes
    framing: str  # 'newline' | 'concatenated', sniffed from the head of the content
    times_loaded: int
    refusal: str | None = None  # why it is set aside unread (ingest_rows gets one row, position 0)
    # What DuckDB's reader reads: the object, or (records back to back that it could not read whole)
    # a copy of its content cut into lines (read.read_through_lines).
    lines_copy: Path | None = None

    @property
    def read_path(self) -> Path:
        return self.lines_copy or self.path

    @property
    def read_compression(self) -> str:
        return "none" if self.lines_copy else self.compression

    @property
    def read_format(self) -> str:
        """DuckDB's JSON format for ``read_path``."""
        return "newline_delimited" if self.lines_copy or self.framing == "newline" else "unstructured"


@dataclass(frozen=True)
class _Fetched:
    """What fetching one object found out."""

    local: FetchedObject
    checksum: str | None
    compression: str
    framing: str
    content_size: int  # decompressed, as far as the gzip trailer tells
    refusal: str | None = None


def staged_batches(
    source: Source,
    to_load: Sequence[SourceObject],
    ledger: dict[str, LedgerRow],
    scratch: Path,
    batch_bytes: int,
    totals: Totals,
    batch_objects: int = DEFAULT_INGEST_BATCH_OBJECTS,
) -> Iterator[list[StagedObject]]:
    """Batches of about ``batch_bytes`` of content (decompressed) and at most ``batch_objects``
    objects, ready to read.

    A downloaded object's file is deleted once its batch has been loaded."""
    batch: list[StagedObject] = []
    content = 0
    for obj, fetched, is_last in _prefetched(source, to_load, scratch, batch_bytes):
        if fetched is None:
            totals.objects_vanished += 1
        else:
            known = ledger.get(obj.key)
            totals.objects_reread += known is not None
            batch.append(_staged(len(batch), obj, fetched, known))
            content += fetched.content_size
        if batch and (content >= batch_bytes or len(batch) >= batch_objects or is_last):
            yield batch
            if not isinstance(source, LocalSource):
                for item in batch:
                    item.path.unlink(missing_ok=True)
            batch, content = [], 0


def _staged(obj: int, listed: SourceObject, fetched: _Fetched, known: LedgerRow | None) -> StagedObject:
    local = fetched.local
    return StagedObject(
        obj=obj,
        key=listed.key,
        path=local.path,
        size=local.size,
        etag=local.etag,
        checksum=fetched.checksum,
        last_modified=local.last_modified,
        compression=fetched.compression,
        framing=fetched.framing,
        times_loaded=(known.times_loaded + 1) if known else 1,
        refusal=fetched.refusal,
    )


def _prefetched(
    source: Source, to_load: Sequence[SourceObject], scratch: Path, ahead_bytes: int
) -> Iterator[tuple[SourceObject, _Fetched | None, bool]]:
    """Each object in order, fetched (None: it vanished since it was listed), and whether it is the
    last; up to ``ahead_bytes`` of landed bytes are being fetched ahead of the one yielded."""
    threads = HASH_THREADS if isinstance(source, LocalSource) else DOWNLOAD_THREADS
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest-fetch") as pool:
        upcoming = iter(to_load)
        window: deque[tuple[SourceObject, Future[_Fetched | None]]] = deque()
        ahead = 0

        def fill() -> None:
            nonlocal ahead
            while ahead < ahead_bytes or not window:
                obj = next(upcoming, None)
                if obj is None:
                    return
                window.append((obj, pool.submit(_fetch_one, source, obj, scratch)))
                ahead += obj.size

        fill()
        while window:
            obj, future = window.popleft()
            ahead -= obj.size
            fill()
            yield obj, future.result(), not window


def _fetch_one(source: Source, obj: SourceObject, scratch: Path) -> _Fetched | None:
    if obj.refusal is not None:  # never opened: a link or a FIFO, say
        unread = FetchedObject(obj.path or scratch, obj.size, obj.etag, obj.last_modified, obj.refusal)
        return _Fetched(unread, None, "none", "newline", 0, obj.refusal)
    local = source.fetch(obj, scratch)
    if local is None:
        return None
    if local.refusal is not None:
        return _Fetched(local, None, "none", "newline", 0, local.refusal)
    checksum = sha256(local.path) if isinstance(source, LocalSource) else None
    with open(local.path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
        compression = "gzip" if is_gzip(head) else "none"
        content_size = local.size
        if compression == "gzip" and local.size >= 18:
            # The gzip trailer holds the (last member's) decompressed size, modulo 4 GiB.
            handle.seek(-4, os.SEEK_END)
            content_size = max(local.size, int.from_bytes(handle.read(4), "little"))
    return _Fetched(local, checksum, compression, framing_of(head, compression), content_size)


def framing_of(head: bytes, compression: str) -> str:
    """'newline' when the first records end at line ends; a wrong guess only costs speed."""
    if compression == "gzip":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return "concatenated"
    return "newline" if b"}\n{" in head or b"}\r\n{" in head else "concatenated"
