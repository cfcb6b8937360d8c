"""Errors a user can act on. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BouncehouseError(Exception):
    """Base class: the message alone tells the user what to fix."""


class ConfigError(BouncehouseError):
    """A setting (option, environment variable, connection or file) is missing or wrong."""


class WarehouseBusyError(BouncehouseError):
    """Another process held the DuckDB file's write lock for longer than we were willing to wait."""


class DiskFullError(BouncehouseError):
    """A write to the warehouse (or its WAL or temp files) found its disk full; nothing half-written stays."""


class TransformError(BouncehouseError):
    """dbt failed; the message names the failing node."""


class DigestDeliveryError(BouncehouseError):
    """Some routes' digests were not sent, or not confirmed sent; every other route had its turn first.

    ``problems`` maps each such route to its outcome (``undeliverable``, ``unconfirmed``, ``failed``,
    ``in_progress``); ``counts`` is the run's summary, the same dict a successful run returns, so the CLI
    can still print it and ``ops.digest_log`` says the rest.
    """

    def __init__(
        self,
        message: str,
        *,
        counts: Mapping[str, Any] | None = None,
        problems: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.counts = dict(counts or {})
        self.problems = dict(problems or {})
