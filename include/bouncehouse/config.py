"""Settings: command-line options over ``BOUNCEHOUSE_*`` environment variables over defaults.

Read once per command (or once at the top of a DAG file) and passed down as a frozen value, so the
same code behaves the same under the CLI, ``make run`` and Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bouncehouse.errors import ConfigError

DEFAULT_SOURCE = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse/bouncehouse.duckdb"
DEFAULT_OUTBOX = "data/outbox"
DEFAULT_ROUTES = "include/admin_routes.yml"
DEFAULT_RETENTION_DAYS = 30
DIGEST_TRANSPORTS = ("outbox", "smtp", "ses")

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


def _resolve(path: str | os.PathLike[str], home: Path | None) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or home is None:
        return candidate
    return home / candidate


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
    if not source.startswith(("s3://", "file://")):
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
        digest_sender=str(pick("digest_sender", "BOUNCEHOUSE_DIGEST_SENDER", "bouncehouse@localhost")),
        lock_timeout=_positive(
            "BOUNCEHOUSE_LOCK_TIMEOUT", pick("lock_timeout", "BOUNCEHOUSE_LOCK_TIMEOUT", 600.0), float
        ),
        aws_conn_id=pick("aws_conn_id", "BOUNCEHOUSE_AWS_CONN_ID", None),
        smtp_conn_id=pick("smtp_conn_id", "BOUNCEHOUSE_SMTP_CONN_ID", None),
        **_ses_fields(pick),
    )


# --- SES in the loop (bouncehouse.ses): its settings, parsed in one place ---------------------------
SES_LIFT_POLICIES = ("ours", "all", "never")


def _flag(name: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _ses_fields(pick: Any) -> dict[str, Any]:
    lift = str(pick("ses_lift_policy", "BOUNCEHOUSE_SES_LIFT_POLICY", "ours")).strip().lower()
    if lift not in SES_LIFT_POLICIES:
        raise ConfigError(
            f"BOUNCEHOUSE_SES_LIFT_POLICY must be one of {', '.join(SES_LIFT_POLICIES)}, got {lift!r}"
        )
    share = _positive("BOUNCEHOUSE_ALERT_SHARE", pick("alert_share", "BOUNCEHOUSE_ALERT_SHARE", 0.8), float)
    return {
        "ses_sync": _flag("BOUNCEHOUSE_SES_SYNC", pick("ses_sync", "BOUNCEHOUSE_SES_SYNC", "false")),
        "ses_endpoint_url": pick("ses_endpoint_url", "BOUNCEHOUSE_SES_ENDPOINT_URL", None),
        "ses_sync_soft_bounces": _flag(
            "BOUNCEHOUSE_SES_SYNC_SOFT_BOUNCES",
            pick("ses_sync_soft_bounces", "BOUNCEHOUSE_SES_SYNC_SOFT_BOUNCES", "false"),
        ),
        "ses_lift_policy": lift,
        "ses_requests_per_second": _positive(
            "BOUNCEHOUSE_SES_REQUESTS_PER_SECOND",
            pick("ses_requests_per_second", "BOUNCEHOUSE_SES_REQUESTS_PER_SECOND", 1.0),
            float,
        ),
        "ses_max_requests": _positive(
            "BOUNCEHOUSE_SES_MAX_REQUESTS", pick("ses_max_requests", "BOUNCEHOUSE_SES_MAX_REQUESTS", 600)
        ),
        "alert_share": share,
        "alert_min_sends": _positive(
            "BOUNCEHOUSE_ALERT_MIN_SENDS", pick("alert_min_sends", "BOUNCEHOUSE_ALERT_MIN_SENDS", 500)
        ),
        "alert_stale_hours": _positive(
            "BOUNCEHOUSE_ALERT_STALE_HOURS",
            pick("alert_stale_hours", "BOUNCEHOUSE_ALERT_STALE_HOURS", 6.0),
            float,
        ),
        "alert_email": pick("alert_email", "BOUNCEHOUSE_ALERT_EMAIL", None),
    }
