"""SES API calls at a steady pace (about one request per second by default) with backoff on throttling.

botocore's own retries are switched off on the clients built here, so every request SES sees goes
through ``PacedCaller`` and the pace holds across retries too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from bouncehouse.config import Settings
from bouncehouse.errors import BouncehouseError

log = logging.getLogger(__name__)

THROTTLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "ThrottledException"}
)
MAX_THROTTLE_RETRIES = 8
MAX_BACKOFF_SECONDS = 60.0


class SesThrottledError(BouncehouseError):
    """SES kept throttling past the retries: the run stops; the next run resumes where this one stopped."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(value: Any) -> Any:
    """An aware datetime (as boto3 returns them) as the naive UTC the warehouse stores."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class PacedCaller:
    """Calls ``fn(**kwargs)`` no sooner than ``interval`` seconds after the previous request; a throttled
    request waits ``interval * 2**n`` (up to a minute) and is tried again."""

    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    throttled: int = 0
    _last: float | None = field(default=None, repr=False)

    def _wait_turn(self) -> None:
        if self._last is not None:
            wait = self._last + self.interval - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last = self.clock()

    def __call__(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            self._wait_turn()
            self.requests += 1
            try:
                return fn(**kwargs)
            except ClientError as exc:
                if error_code(exc) not in THROTTLE_CODES:
                    raise
                self.throttled += 1
                backoff = min(max(self.interval, 0.05) * 2**attempt, MAX_BACKOFF_SECONDS)
                log.warning("SES throttled %s; backing off %.2fs", getattr(fn, "__name__", fn), backoff)
                self.sleep(backoff)
        raise SesThrottledError(
            f"SES throttled {MAX_THROTTLE_RETRIES + 1} requests in a row; try again later"
        )


def paced_caller(settings: Settings) -> PacedCaller:
    return PacedCaller(interval=1.0 / settings.ses_requests_per_second)


def client_config() -> Any:
    from botocore.config import Config

    # One attempt per request: PacedCaller does the retrying, at its pace.
    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30)


def boto3_client(service: str, settings: Settings) -> Any:
    """A boto3 client outside Airflow: the default credential chain, ``BOUNCEHOUSE_SES_ENDPOINT_URL`` if set."""
    import boto3

    return boto3.client(service, endpoint_url=settings.ses_endpoint_url or None, config=client_config())
