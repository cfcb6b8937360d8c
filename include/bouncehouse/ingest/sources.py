"""Where landing objects come from: a local folder, a ``file://`` URI or ``s3://bucket/prefix``.

A source lists every object under its root (all of it, paginated: Firehose can write a late object
under an earlier hour's prefix, so listing only new hours would miss it) and fetches one object to a
local file, so the reader (DuckDB) always reads local files.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK
from typing import Any
from urllib.parse import urlparse

from bouncehouse.config import file_uri_path
from bouncehouse.errors import ConfigError
from bouncehouse.s3 import LazyS3Client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceObject:
    """One object as listed: ``key`` is the S3 key, or the path relative to a local source folder."""

    key: str
    size: int
    last_modified: datetime | None  # naive UTC
    etag: str | None = None  # S3 only
    path: Path | None = None  # local only: the file itself
    refusal: str | None = None  # why it is not read (local: not a regular file); None: read it


@dataclass(frozen=True)
class FetchedObject:
    """An object's bytes in a local file, with the size and ETag of the version actually read."""

    path: Path
    size: int
    etag: str | None
    last_modified: datetime | None
    refusal: str | None = None  # local: it is not a regular file (any more), so it is not read


class LocalSource:
    """A folder: every file under it, recursively (dot-files too, as S3 lists them), never outside it."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    def check(self) -> None:
        if not self.root.exists():
            raise ConfigError(
                f"source folder {self.root} does not exist: set --source or BOUNCEHOUSE_SOURCE to the landing folder"
            )
        if not self.root.is_dir():
            raise ConfigError(f"source {self.root} is not a folder: point --source at the landing folder")

    def list_objects(self) -> Iterator[SourceObject]:
        """Every entry under the root, links never followed (os.walk does not descend into a linked
        folder), in key order. What is not a regular file is listed with a refusal: it is never opened
        (a link may lead out of the landing folder or loop, a FIFO or device would block or never
        end), and ingest records it as set aside."""
        self.check()
        found: list[SourceObject] = []
        metadata = 0
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            links = [d for d in dirs if Path(folder, d).is_symlink()]
            dirs[:] = sorted(d for d in dirs if d not in links and not is_os_metadata(d))
            for name in [*files, *links]:
                if is_os_metadata(name):
                    metadata += 1
                    continue
                listed = _local_object(self.root, Path(folder, name))
                if listed is not None:
                    found.append(listed)
        if metadata:
            log.info(
                "ingest: %d operating-system metadata files (.DS_Store, ._*) are not landing objects",
                metadata,
            )
        found.sort(key=lambda o: o.key)
        yield from found

    def fetch(self, obj: SourceObject, dest: Path) -> FetchedObject | None:
        """Local files are read in place; one that is no longer a regular file is not read."""
        assert obj.path is not None
        try:
            stat = obj.path.lstat()
        except FileNotFoundError:
            return None
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
        # Listed as a regular file, it may have been replaced by a link or a FIFO since.
        refusal = None if S_ISREG(stat.st_mode) else _refusal(stat.st_mode)
        return FetchedObject(obj.path, stat.st_size, None, modified, refusal)


# Files an operating system leaves in folders it browses: never landing objects (S3 alike).
_OS_METADATA = frozenset({".DS_Store", ".Trashes", ".Spotlight-V100", ".fseventsd"})


def is_os_metadata(name: str) -> bool:
    """macOS Finder's metadata (``.DS_Store``, AppleDouble ``._name``); any other dot-file is loaded."""
    return name in _OS_METADATA or name.startswith("._")


def _local_object(root: Path, path: Path) -> SourceObject | None:
    try:
        stat = path.lstat()  # the entry itself: a link is never followed
    except FileNotFoundError:  # removed while we listed
        return None
    return SourceObject(
        key=path.relative_to(root).as_posix(),
        size=stat.st_size,
        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None),
        path=path,
        refusal=None if S_ISREG(stat.st_mode) else _refusal(stat.st_mode),
    )


def _refusal(mode: int) -> str:
    if S_ISLNK(mode):
        return (
            "object_skipped_symlink: a symbolic link; links are never followed, so nothing outside "
            "the landing folder is read"
        )
    kind = (
        "a folder"
        if S_ISDIR(mode)
        else "a FIFO"
        if S_ISFIFO(mode)
        else "a socket"
        if S_ISSOCK(mode)
        else ("a device" if S_ISCHR(mode) or S_ISBLK(mode) else "not a regular file")
    )
    return f"not_a_regular_file: {kind}; only regular files are read"


class S3Source(LazyS3Client):
    """Every object under ``s3://bucket/prefix`` (the prefix is an S3 key prefix, used as given)."""

    kind = "s3"

    def __init__(
        self, bucket: str, prefix: str, client: Any | None = None, *, page_size: int | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size  # None: S3's default (1000 keys per page)
        self.uri = f"s3://{bucket}/{prefix}"
        self._client = client

    def list_objects(self) -> Iterator[SourceObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        paging = {"PageSize": self.page_size} if self.page_size else {}
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, PaginationConfig=paging)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):  # a "folder" placeholder, not an object
                        continue
                    if is_os_metadata(item["Key"].rsplit("/", 1)[-1]):
                        continue
                    yield SourceObject(
                        key=item["Key"],
                        size=int(item["Size"]),
                        last_modified=_naive_utc(item.get("LastModified")),
                        etag=_etag(item.get("ETag")),
                    )
        except Exception as exc:
            raise _s3_config_error(exc, self.uri) from None

    def fetch(self, obj: SourceObject, dest: Path) -> FetchedObject | None:
        """Download one object into ``dest``; None when it was deleted since it was listed."""
        from botocore.exceptions import ClientError

        uri = f"s3://{self.bucket}/{obj.key}"
        target = dest / _safe_name(obj.key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=obj.key)
            with response["Body"] as body, open(target, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                log.warning("ingest: %s disappeared after it was listed; skipped", uri)
                return None
            raise _s3_config_error(exc, uri, action="read") from None
        except Exception as exc:  # a connection dropped mid-download: one line, and the next run resumes
            raise _s3_config_error(exc, uri, action="read") from None
        return FetchedObject(
            target,
            target.stat().st_size,
            _etag(response.get("ETag")),
            _naive_utc(response.get("LastModified")),
        )


Source = LocalSource | S3Source


def open_source(uri: str, *, s3_client: Any | None = None) -> Source:
    """The source named by ``uri``: ``s3://bucket/prefix``, ``file:///path`` or a folder path."""
    text = str(uri).strip()
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ConfigError(f"source {uri!r} names no bucket: use s3://bucket/prefix")
        return S3Source(parsed.netloc, parsed.path.lstrip("/"), s3_client)
    if text.startswith("file://"):
        # load_settings has already resolved a relative path against BOUNCEHOUSE_HOME.
        return LocalSource(file_uri_path(text))
    if "://" in text:
        raise ConfigError(f"source {uri!r} is not a folder, file:// URI or s3://bucket/prefix")
    return LocalSource(Path(text).expanduser())


def _s3_config_error(exc: Exception, uri: str, *, action: str = "list") -> Exception:
    """Turn what boto3 raises for a wrong bucket, endpoint or credentials into one clear line."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            bucket = urlparse(uri).netloc
            return ConfigError(
                f"S3 bucket {bucket!r} does not exist (source {uri}): check --source / BOUNCEHOUSE_SOURCE"
            )
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ConfigError(
                f"S3 refused to {action} {uri} ({code}): check the AWS credentials / aws_default connection"
            )
        return ConfigError(f"cannot {action} {uri}: {code or exc}")
    if isinstance(exc, BotoCoreError | OSError):
        return ConfigError(f"cannot {action} {uri}: {exc} (check AWS_ENDPOINT_URL and credentials)")
    return exc


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _safe_name(key: str) -> str:
    """A flat, unique local file name for an S3 key (keys can be longer than a file name may be)."""
    import hashlib

    # Only plain characters: DuckDB's readers take a path as a glob pattern ([, *, ?, {).
    tail = re.sub(r"[^A-Za-z0-9._-]", "_", key.rsplit("/", 1)[-1][-100:])
    return hashlib.md5(key.encode()).hexdigest() + "-" + tail
