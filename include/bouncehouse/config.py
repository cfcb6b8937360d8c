"""Settings: command-line options over ``BOUNCEHOUSE_*`` environment variables over defaults.

Read once per command (or once at the top of a DAG file) and passed down as a frozen value, so the
same code behaves the same under the CLI, ``make run`` and Airflow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bouncehouse.errors import ConfigError

DEFAULT_SOURCE = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse/bouncehouse.duckdb"
DEFAULT_OUTBOX = "data/outbox"
DEFAULT_ROUTES = "include/admin_routes.yml"
DEFAULT_RETENTION_DAYS = 30
DIGEST_TRANSPORTS = ("outbox", "smtp", "ses")
# Ingest's content (decompressed) bytes per transaction: bounds memory whatever the size of the backfill.
DEFAULT_INGEST_BATCH_BYTES = 128 << 20
# DuckDB keeps what it wrote cached up to its memory limit: a fixed limit keeps ingest's peak memory
# flat however much is loaded. A batch's records sit in memory until they commit; at 512MB DuckDB
# spills them and ingest is a quarter slower (make bench), above 1GB nothing is gained.
DEFAULT_INGEST_MEMORY_LIMIT = "1GB"
# What one object or record may hold before ingest sets it aside (issue 14). Firehose records are at
# most 1000 KiB and SNS messages 256 KiB; Firehose buffers at most 128 MiB before it compresses.
DEFAULT_INGEST_MAX_RECORD_BYTES = 4 << 20
DEFAULT_INGEST_MAX_OBJECT_BYTES = 256 << 20  # decompressed, for the record-by-record path
# Objects per transaction, as well as bytes: many tiny objects make one batch's SQL slow.
DEFAULT_INGEST_BATCH_OBJECTS = 1000

# Tag stamped on the digest's own emails (SES message tag / X-SES-MESSAGE-TAGS header) so that
# their feedback events are never counted as tracked sends.
DIGEST_TAG_NAME = "bouncehouse_message"
DIGEST_TAG_VALUE = "digest"


def parse_as_of(value: str | None) -> datetime | None:
    """Parse an ISO 8601 instant into a naive UTC datetime (the warehouse stores UTC as TIMESTAMP)."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--as-of / BOUNCEHOUSE_AS_OF {value!r} is not an ISO 8601 date or time (e.g. 2026-11-22T06:00:00Z)"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _positive(name: str, value: Any, kind: type[int] | type[float] = int) -> Any:
    """``value`` as a positive int (or float), or a ConfigError naming ``name``."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where things are and what "now" is."""

    source: str = DEFAULT_SOURCE
    warehouse: Path = Path(DEFAULT_WAREHOUSE)
    outbox: Path = Path(DEFAULT_OUTBOX)
    routes: Path = Path(DEFAULT_ROUTES)
    as_of: datetime | None = None  # None: the clock
    retention_days: int = DEFAULT_RETENTION_DAYS
    digest_transport: str = "outbox"
    digest_sender: str = "bouncehouse@localhost"
    # Seconds to keep retrying when another process holds the DuckDB write lock.
    lock_timeout: float = 600.0
    # Name of the Airflow connection used for S3 when running inside Airflow.
    aws_conn_id: str | None = None
    smtp_conn_id: str | None = None
    # True when the source came from the default, not an option or BOUNCEHOUSE_SOURCE.
    source_is_default: bool = True
    ingest_batch_bytes: int = DEFAULT_INGEST_BATCH_BYTES
    ingest_memory_limit: str = DEFAULT_INGEST_MEMORY_LIMIT
    ingest_max_record_bytes: int = DEFAULT_INGEST_MAX_RECORD_BYTES
    ingest_max_object_bytes: int = DEFAULT_INGEST_MAX_OBJECT_BYTES
    ingest_batch_objects: int = DEFAULT_INGEST_BATCH_OBJECTS
    extra: Mapping[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """The instant that stands for "now": ``as_of`` if given, else the clock (naive UTC)."""
        return self.as_of or datetime.now(UTC).replace(tzinfo=None)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _resolve(path: str | os.PathLike[str], home: Path | None) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or home is None:
        return candidate
    return home / candidate


def file_uri_path(uri: str) -> Path:
    """The path a ``file://`` URI names (``file://localhost/x`` and ``file:///x`` alike)."""
    parsed = urlparse(uri)
    host = parsed.netloc if parsed.netloc not in ("", "localhost") else ""
    return Path(unquote(host + parsed.path))


def _ingest_batch_bytes(name: str, value: str | None) -> int:
    text = (value or "").strip()
    if not text:
        return DEFAULT_INGEST_BATCH_BYTES
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of bytes, got {text!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {number}")
    return number


def _ingest_memory_limit(name: str, value: str | None) -> str:
    text = (value or DEFAULT_INGEST_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", text, re.IGNORECASE):
        raise ConfigError(f"{name} must look like 2GB or 512MB, got {text!r}")
    return text


def _header_safe(name: str, value: str) -> str:
    """A value bound for an email header: a CR, LF or any other control character would end the
    header (or start another), so it is a ConfigError, not a traceback or an injected header."""
    bad = next(
        (char for char in value if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029"),
        None,
    )
    if bad is not None:
        raise ConfigError(f"{name} must be one line of printable text, but holds {bad!r}: {value!r}")
    return value


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Settings:
    """Build Settings from options (``overrides``, None meaning "not given") over the environment.

    Relative paths resolve against ``home`` (default: ``BOUNCEHOUSE_HOME``, else the working directory).
    """
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if home is None and env.get("BOUNCEHOUSE_HOME"):
        home = Path(env["BOUNCEHOUSE_HOME"])

    def pick(key: str, env_name: str, default: Any) -> Any:
        if key in overrides:
            return overrides[key]
        value = env.get(env_name)
        return default if value in (None, "") else value

    source = str(pick("source", "BOUNCEHOUSE_SOURCE", DEFAULT_SOURCE))
    source_is_default = "source" not in overrides and not env.get("BOUNCEHOUSE_SOURCE")
    if "://" in source and not source.startswith(("s3://", "file://")):
        raise ConfigError(
            f"BOUNCEHOUSE_SOURCE / --source {source!r} is not a folder, file:// URI or s3://bucket/prefix"
        )
    if source.startswith("file://"):
        source = str(_resolve(file_uri_path(source), home))
    elif not source.startswith("s3://"):
        source = str(_resolve(source, home))
    transport = str(pick("digest_transport", "BOUNCEHOUSE_DIGEST_TRANSPORT", "outbox")).lower()
    if transport not in DIGEST_TRANSPORTS:
        raise ConfigError(
            f"BOUNCEHOUSE_DIGEST_TRANSPORT must be one of {', '.join(DIGEST_TRANSPORTS)}, got {transport!r}"
        )
    as_of_raw = pick("as_of", "BOUNCEHOUSE_AS_OF", None)
    as_of = as_of_raw if isinstance(as_of_raw, datetime) else parse_as_of(as_of_raw)
    return Settings(
        source=source,
        source_is_default=source_is_default,
        warehouse=_resolve(pick("warehouse", "BOUNCEHOUSE_WAREHOUSE", DEFAULT_WAREHOUSE), home),
        outbox=_resolve(pick("outbox", "BOUNCEHOUSE_OUTBOX", DEFAULT_OUTBOX), home),
        routes=_resolve(pick("routes", "BOUNCEHOUSE_ROUTES", DEFAULT_ROUTES), home),
        as_of=as_of,
        retention_days=_positive(
            "BOUNCEHOUSE_RETENTION_DAYS",
            pick("retention_days", "BOUNCEHOUSE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
        ),
        digest_transport=transport,
        digest_sender=_header_safe(
            "BOUNCEHOUSE_DIGEST_SENDER",
            str(pick("digest_sender", "BOUNCEHOUSE_DIGEST_SENDER", "bouncehouse@localhost")),
        ),
        lock_timeout=_positive(
            "BOUNCEHOUSE_LOCK_TIMEOUT", pick("lock_timeout", "BOUNCEHOUSE_LOCK_TIMEOUT", 600.0), float
        ),
        aws_conn_id=pick("aws_conn_id", "BOUNCEHOUSE_AWS_CONN_ID", None),
        smtp_conn_id=pick("smtp_conn_id", "BOUNCEHOUSE_SMTP_CONN_ID", None),
        ingest_batch_bytes=_ingest_batch_bytes(
            "BOUNCEHOUSE_INGEST_BATCH_BYTES", env.get("BOUNCEHOUSE_INGEST_BATCH_BYTES")
        ),
        ingest_memory_limit=_ingest_memory_limit(
            "BOUNCEHOUSE_INGEST_MEMORY_LIMIT", env.get("BOUNCEHOUSE_INGEST_MEMORY_LIMIT")
        ),
        **_ingest_limits(env),
    )


def _ingest_limits(env: Mapping[str, str]) -> dict[str, int]:
    """Ingest's limits on what one record, one object and one batch may hold (positive whole numbers)."""
    limits = {
        "ingest_max_record_bytes": ("BOUNCEHOUSE_INGEST_MAX_RECORD_BYTES", DEFAULT_INGEST_MAX_RECORD_BYTES),
        "ingest_max_object_bytes": ("BOUNCEHOUSE_INGEST_MAX_OBJECT_BYTES", DEFAULT_INGEST_MAX_OBJECT_BYTES),
        "ingest_batch_objects": ("BOUNCEHOUSE_INGEST_BATCH_OBJECTS", DEFAULT_INGEST_BATCH_OBJECTS),
    }
    return {
        field_name: _positive(name, (env.get(name) or "").strip() or default)
        for field_name, (name, default) in limits.items()
    }
