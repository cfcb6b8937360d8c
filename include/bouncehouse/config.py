"""Settings: command-line options over ``BOUNCEHOUSE_*`` environment variables over defaults.

This module is the one place that reads a ``BOUNCEHOUSE_*`` variable, with one parser per kind of value
(whole number, seconds, true/false, choice, path, instant), so a bad value is always one ConfigError line
naming the variable. Each command (or DAG file, at its top) reads its settings once and passes them down
as frozen values, so the same code behaves the same under the CLI, ``make run`` and Airflow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
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
DEFAULT_SENDER = "bouncehouse@localhost"
DIGEST_TRANSPORTS = ("outbox", "smtp", "ses")
# What `transform` builds the dbt models on: the DuckDB warehouse, or Spark reading the lake (bouncehouse.spark).
ENGINES = ("duckdb", "spark")
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
# The dbt project when BOUNCEHOUSE_DBT_PROJECT_DIR is not set: dbt/ beside include/.
DEFAULT_DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt"

# Tag stamped on the digest's own emails (SES message tag / X-SES-MESSAGE-TAGS header) so that
# their feedback events are never counted as tracked sends.
DIGEST_TAG_NAME = "bouncehouse_message"
DIGEST_TAG_VALUE = "digest"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


# --- one parser per kind of value ---------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or str(value).strip() == ""


def parse_whole_number(name: str, value: Any, *, minimum: int = 1, unit: str = "") -> int:
    """``value`` as an int of at least ``minimum`` (0 or 1), or a ConfigError naming ``name``."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number{unit and ' of ' + unit}, got {value!r}") from None
    if number < minimum:
        bound = "greater than 0" if minimum == 1 else f"{minimum} or more"
        raise ConfigError(f"{name} must be {bound}, got {number}")
    return number


def parse_number(name: str, value: Any, *, what: str = "a number", allow_zero: bool = False) -> float:
    """``value`` as a number, more than 0 (or 0 or more with ``allow_zero``)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'0 or more' if allow_zero else 'greater than 0'}, got {value!r}")
    return number


def parse_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a number of seconds (more than 0, or 0 or more with ``allow_zero``)."""
    return parse_number(name, value, what="a number of seconds", allow_zero=allow_zero)


def parse_true_false(name: str, value: Any, default: bool = False) -> bool:
    """``true/yes/on/1`` or ``false/no/off/0`` (any case); blank means ``default``."""
    if isinstance(value, bool):
        return value
    if _blank(value):
        return default
    text = str(value).strip().lower()
    if text not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return text in _TRUE


def parse_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` (any case) as one of ``choices``."""
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {text!r}")
    return text


def parse_path(value: str | os.PathLike[str], home: Path | None) -> Path:
    """A path; a relative one resolves against ``home`` (``BOUNCEHOUSE_HOME``) when there is one."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute() or home is None:
        return candidate
    return home / candidate


def parse_header_text(name: str, value: str) -> str:
    """A value bound for an email header: a CR, LF or any other control character would end the header
    (or start another), so it is a ConfigError, never a traceback or an injected header."""
    bad = next((c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029"), None)
    if bad is not None:
        raise ConfigError(f"{name} must be one line of printable text, but holds {bad!r}: {value!r}")
    return value


def parse_as_of(value: str | None) -> datetime | None:
    """Parse an ISO 8601 instant into a naive UTC datetime (the warehouse stores UTC as TIMESTAMP)."""
    if _blank(value):
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


class _Reader:
    """Values from options (``overrides``; None means "not given") over the environment over defaults."""

    def __init__(self, overrides: Mapping[str, Any] | None, env: Mapping[str, str] | None) -> None:
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.env = os.environ if env is None else env

    def given(self, key: str | None, env_name: str) -> bool:
        return (key is not None and key in self.overrides) or not _blank(self.env.get(env_name))

    def get(self, key: str | None, env_name: str, default: Any = None) -> Any:
        if key is not None and key in self.overrides:
            return self.overrides[key]
        value = self.env.get(env_name)
        return default if _blank(value) else value


def home_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """``BOUNCEHOUSE_HOME``: what relative paths resolve against (None: the working directory)."""
    value = _Reader(None, env).get(None, "BOUNCEHOUSE_HOME")
    return None if value is None else Path(value).expanduser()


# --- the pipeline's settings --------------------------------------------------------------------------


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
    digest_sender: str = DEFAULT_SENDER
    # False: a digest email to several admins names none of them (they get it as a Bcc would).
    digest_show_admins: bool = False
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
    # BOUNCEHOUSE_LAKE: where the raw tables are also written as Parquet (bouncehouse.lake): an absolute
    # folder or s3://bucket/prefix; None: no lake.
    lake: str | None = None
    # BOUNCEHOUSE_ENGINE: duckdb (the warehouse) or spark (dbt-spark reading the lake).
    engine: str = "duckdb"
    extra: Mapping[str, Any] = field(default_factory=dict)
    # SES in the loop (bouncehouse.ses): see _ses_fields.
    ses_sync: bool = False
    ses_endpoint_url: str | None = None
    ses_sync_soft_bounces: bool = False
    ses_lift_policy: str = "ours"
    ses_requests_per_second: float = 1.0
    ses_max_requests: int = 600
    alert_share: float = 0.8
    alert_min_sends: int = 500
    alert_stale_hours: float = 6.0
    alert_email: str | None = None

    def now(self) -> datetime:
        """The instant that stands for "now": ``as_of`` if given, else the clock (naive UTC)."""
        return self.as_of or datetime.now(UTC).replace(tzinfo=None)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _source(read: _Reader, home: Path | None) -> str:
    source = str(read.get("source", "BOUNCEHOUSE_SOURCE", DEFAULT_SOURCE))
    if "://" in source and not source.startswith(("s3://", "file://")):
        raise ConfigError(
            f"BOUNCEHOUSE_SOURCE / --source {source!r} is not a folder, file:// URI or s3://bucket/prefix"
        )
    if source.startswith("file://"):
        return str(parse_path(file_uri_path(source), home))
    return source if source.startswith("s3://") else str(parse_path(source, home))


def parse_lake(value: Any, home: Path | None) -> str | None:
    """``BOUNCEHOUSE_LAKE``: blank (no lake), a folder or ``file://`` URI (made absolute), or
    ``s3://bucket/prefix`` (the prefix without its trailing slash)."""
    if _blank(value):
        return None
    text = str(value).strip()
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ConfigError(f"BOUNCEHOUSE_LAKE {text!r} names no bucket: use s3://bucket/prefix")
        prefix = parsed.path.strip("/")
        return f"s3://{parsed.netloc}/{prefix}" if prefix else f"s3://{parsed.netloc}"
    if "://" in text and not text.startswith("file://"):
        raise ConfigError(f"BOUNCEHOUSE_LAKE {text!r} is not a folder, file:// URI or s3://bucket/prefix")
    path = file_uri_path(text) if text.startswith("file://") else Path(text)
    return str(parse_path(path, home).absolute())


def file_uri_path(uri: str) -> Path:
    """The path a ``file://`` URI names (``file://localhost/x`` and ``file:///x`` alike)."""
    parsed = urlparse(uri)
    host = parsed.netloc if parsed.netloc not in ("", "localhost") else ""
    return Path(unquote(host + parsed.path))


def parse_memory_limit(name: str, value: Any) -> str:
    """A DuckDB memory limit such as ``2GB`` or ``512MiB``."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", text, re.IGNORECASE):
        raise ConfigError(f"{name} must look like 2GB or 512MB, got {text!r}")
    return text


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Settings:
    """Build Settings from options (``overrides``, None meaning "not given") over the environment.

    Relative paths resolve against ``home`` (default: ``BOUNCEHOUSE_HOME``, else the working directory).
    """
    read = _Reader(overrides, env)
    home = home or home_dir(read.env)
    as_of = read.get("as_of", "BOUNCEHOUSE_AS_OF")
    return Settings(
        source=_source(read, home),
        source_is_default=not read.given("source", "BOUNCEHOUSE_SOURCE"),
        warehouse=parse_path(read.get("warehouse", "BOUNCEHOUSE_WAREHOUSE", DEFAULT_WAREHOUSE), home),
        outbox=parse_path(read.get("outbox", "BOUNCEHOUSE_OUTBOX", DEFAULT_OUTBOX), home),
        routes=parse_path(read.get("routes", "BOUNCEHOUSE_ROUTES", DEFAULT_ROUTES), home),
        as_of=as_of if isinstance(as_of, datetime) else parse_as_of(as_of),
        retention_days=parse_whole_number(
            "BOUNCEHOUSE_RETENTION_DAYS",
            read.get("retention_days", "BOUNCEHOUSE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
        ),
        digest_transport=parse_choice(
            "BOUNCEHOUSE_DIGEST_TRANSPORT",
            read.get("digest_transport", "BOUNCEHOUSE_DIGEST_TRANSPORT", "outbox"),
            DIGEST_TRANSPORTS,
        ),
        digest_sender=parse_header_text(
            "BOUNCEHOUSE_DIGEST_SENDER",
            str(read.get("digest_sender", "BOUNCEHOUSE_DIGEST_SENDER", DEFAULT_SENDER)),
        ),
        digest_show_admins=parse_true_false(
            "BOUNCEHOUSE_DIGEST_SHOW_ADMINS", read.get("digest_show_admins", "BOUNCEHOUSE_DIGEST_SHOW_ADMINS")
        ),
        lock_timeout=parse_seconds(
            "BOUNCEHOUSE_LOCK_TIMEOUT", read.get("lock_timeout", "BOUNCEHOUSE_LOCK_TIMEOUT", 600.0)
        ),
        aws_conn_id=read.get("aws_conn_id", "BOUNCEHOUSE_AWS_CONN_ID"),
        smtp_conn_id=read.get("smtp_conn_id", "BOUNCEHOUSE_SMTP_CONN_ID"),
        ingest_batch_bytes=parse_whole_number(
            "BOUNCEHOUSE_INGEST_BATCH_BYTES",
            read.get(None, "BOUNCEHOUSE_INGEST_BATCH_BYTES", DEFAULT_INGEST_BATCH_BYTES),
            unit="bytes",
        ),
        ingest_memory_limit=parse_memory_limit(
            "BOUNCEHOUSE_INGEST_MEMORY_LIMIT",
            read.get(None, "BOUNCEHOUSE_INGEST_MEMORY_LIMIT", DEFAULT_INGEST_MEMORY_LIMIT),
        ),
        **_ingest_limits(read),
        lake=parse_lake(read.get("lake", "BOUNCEHOUSE_LAKE"), home),
        engine=parse_choice(
            "BOUNCEHOUSE_ENGINE", read.get("engine", "BOUNCEHOUSE_ENGINE", "duckdb"), ENGINES
        ),
        **_ses_fields(read),
    )


def _ingest_limits(read: _Reader) -> dict[str, int]:
    """Ingest's limits on what one record, one object and one batch may hold."""
    limits = {
        "ingest_max_record_bytes": ("BOUNCEHOUSE_INGEST_MAX_RECORD_BYTES", DEFAULT_INGEST_MAX_RECORD_BYTES),
        "ingest_max_object_bytes": ("BOUNCEHOUSE_INGEST_MAX_OBJECT_BYTES", DEFAULT_INGEST_MAX_OBJECT_BYTES),
        "ingest_batch_objects": ("BOUNCEHOUSE_INGEST_BATCH_OBJECTS", DEFAULT_INGEST_BATCH_OBJECTS),
    }
    return {
        field_name: parse_whole_number(name, read.get(None, name, default))
        for field_name, (name, default) in limits.items()
    }


def dbt_project_dir(env: Mapping[str, str] | None = None) -> Path:
    """The dbt project: ``BOUNCEHOUSE_DBT_PROJECT_DIR`` if set, else ``dbt/`` at the repository root.

    Both the CLI's transform and the transform DAG's Cosmos configuration find it here."""
    read = _Reader(None, env)
    path = parse_path(read.get(None, "BOUNCEHOUSE_DBT_PROJECT_DIR", DEFAULT_DBT_PROJECT), home_dir(read.env))
    if not (path / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt project at {path}: set BOUNCEHOUSE_DBT_PROJECT_DIR to the folder holding dbt_project.yml"
        )
    return path


# --- the digest's SMTP server outside Airflow ---------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False  # SMTPS (implicit TLS, usually port 465)
    timeout: float = 30.0
    from_email: str | None = None  # overrides the digest sender when set (the connection's From)


def load_smtp_settings(env: Mapping[str, str] | None = None) -> SmtpSettings:
    """``BOUNCEHOUSE_SMTP_HOST`` (required), ``_PORT``, ``_USER``, ``_PASSWORD``, ``_STARTTLS``, ``_SSL``,
    ``_TIMEOUT``, ``_FROM``: the smtp transport's server when running outside Airflow."""
    read = _Reader(None, env)
    host = str(read.get(None, "BOUNCEHOUSE_SMTP_HOST", "")).strip()
    if not host:
        raise ConfigError(
            "the smtp digest transport needs BOUNCEHOUSE_SMTP_HOST (and usually _PORT, _USER, _PASSWORD)"
        )
    use_ssl = parse_true_false("BOUNCEHOUSE_SMTP_SSL", read.get(None, "BOUNCEHOUSE_SMTP_SSL"))
    return SmtpSettings(
        host=host,
        port=parse_whole_number(
            "BOUNCEHOUSE_SMTP_PORT", read.get(None, "BOUNCEHOUSE_SMTP_PORT", 465 if use_ssl else 25)
        ),
        username=read.get(None, "BOUNCEHOUSE_SMTP_USER"),
        password=read.get(None, "BOUNCEHOUSE_SMTP_PASSWORD"),
        starttls=parse_true_false("BOUNCEHOUSE_SMTP_STARTTLS", read.get(None, "BOUNCEHOUSE_SMTP_STARTTLS")),
        ssl=use_ssl,
        timeout=parse_seconds("BOUNCEHOUSE_SMTP_TIMEOUT", read.get(None, "BOUNCEHOUSE_SMTP_TIMEOUT", 30)),
        from_email=parse_header_text("BOUNCEHOUSE_SMTP_FROM", read.get(None, "BOUNCEHOUSE_SMTP_FROM", ""))
        or None,
    )


# --- what only the DAG files use ----------------------------------------------------------------------


@dataclass(frozen=True)
class DagSettings:
    """The DAGs' schedules and catchup, their tasks' retries, and who hears of a failed task."""

    ingest_schedule: str = "*/15 * * * *"
    # 02:00 UTC: the day's last bounces have passed Firehose's buffer, ingest and transform.
    digest_schedule: str = "0 2 * * *"
    prune_schedule: str = "@daily"
    digest_catchup: bool = False
    prune_catchup: bool = False
    retries: int = 2
    retry_delay_seconds: float = 60.0  # doubles on each try
    alert_email: tuple[str, ...] = ()


def load_dag_settings(env: Mapping[str, str] | None = None) -> DagSettings:
    """DagSettings from the ``BOUNCEHOUSE_*_SCHEDULE``, ``_CATCHUP``, ``_RETRIES``, ``_RETRY_DELAY_SECONDS``
    and ``_ALERT_EMAIL`` variables."""
    read = _Reader(None, env)
    defaults = DagSettings()
    alert = str(read.get(None, "BOUNCEHOUSE_ALERT_EMAIL", ""))
    return DagSettings(
        ingest_schedule=read.get(None, "BOUNCEHOUSE_INGEST_SCHEDULE", defaults.ingest_schedule),
        digest_schedule=read.get(None, "BOUNCEHOUSE_DIGEST_SCHEDULE", defaults.digest_schedule),
        prune_schedule=read.get(None, "BOUNCEHOUSE_PRUNE_SCHEDULE", defaults.prune_schedule),
        digest_catchup=parse_true_false(
            "BOUNCEHOUSE_DIGEST_CATCHUP", read.get(None, "BOUNCEHOUSE_DIGEST_CATCHUP")
        ),
        prune_catchup=parse_true_false(
            "BOUNCEHOUSE_PRUNE_CATCHUP", read.get(None, "BOUNCEHOUSE_PRUNE_CATCHUP")
        ),
        retries=parse_whole_number(
            "BOUNCEHOUSE_RETRIES", read.get(None, "BOUNCEHOUSE_RETRIES", defaults.retries), minimum=0
        ),
        retry_delay_seconds=parse_seconds(
            "BOUNCEHOUSE_RETRY_DELAY_SECONDS",
            read.get(None, "BOUNCEHOUSE_RETRY_DELAY_SECONDS", defaults.retry_delay_seconds),
            allow_zero=True,
        ),
        alert_email=tuple(address.strip() for address in alert.split(",") if address.strip()),
    )


# --- SES in the loop (bouncehouse.ses): its settings, parsed in one place ---------------------------
SES_LIFT_POLICIES = ("ours", "all", "never")


def _ses_fields(read: _Reader) -> dict[str, Any]:
    return {
        "ses_sync": parse_true_false("BOUNCEHOUSE_SES_SYNC", read.get("ses_sync", "BOUNCEHOUSE_SES_SYNC")),
        "ses_endpoint_url": read.get("ses_endpoint_url", "BOUNCEHOUSE_SES_ENDPOINT_URL"),
        "ses_sync_soft_bounces": parse_true_false(
            "BOUNCEHOUSE_SES_SYNC_SOFT_BOUNCES",
            read.get("ses_sync_soft_bounces", "BOUNCEHOUSE_SES_SYNC_SOFT_BOUNCES"),
        ),
        "ses_lift_policy": parse_choice(
            "BOUNCEHOUSE_SES_LIFT_POLICY",
            read.get("ses_lift_policy", "BOUNCEHOUSE_SES_LIFT_POLICY", "ours"),
            SES_LIFT_POLICIES,
        ),
        "ses_requests_per_second": parse_number(
            "BOUNCEHOUSE_SES_REQUESTS_PER_SECOND",
            read.get("ses_requests_per_second", "BOUNCEHOUSE_SES_REQUESTS_PER_SECOND", 1.0),
        ),
        "ses_max_requests": parse_whole_number(
            "BOUNCEHOUSE_SES_MAX_REQUESTS", read.get("ses_max_requests", "BOUNCEHOUSE_SES_MAX_REQUESTS", 600)
        ),
        "alert_share": parse_number(
            "BOUNCEHOUSE_ALERT_SHARE", read.get("alert_share", "BOUNCEHOUSE_ALERT_SHARE", 0.8)
        ),
        "alert_min_sends": parse_whole_number(
            "BOUNCEHOUSE_ALERT_MIN_SENDS", read.get("alert_min_sends", "BOUNCEHOUSE_ALERT_MIN_SENDS", 500)
        ),
        "alert_stale_hours": parse_number(
            "BOUNCEHOUSE_ALERT_STALE_HOURS",
            read.get("alert_stale_hours", "BOUNCEHOUSE_ALERT_STALE_HOURS", 6.0),
            what="a number of hours",
        ),
        "alert_email": read.get("alert_email", "BOUNCEHOUSE_ALERT_EMAIL"),
    }
