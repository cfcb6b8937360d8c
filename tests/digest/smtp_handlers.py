"""aiosmtpd handlers for the digest's SMTP tests: servers that fail, stall or keep count, on loopback."""

from __future__ import annotations

import asyncio
import threading
from email import message_from_bytes
from typing import Any


class FlakyHandler:
    """An SMTP server that answers the first DATA with 451 (try again later), then accepts."""

    def __init__(self, failures: int = 1, code: str = "451 4.3.0 Temporary failure, try again") -> None:
        self.failures = failures
        self.code = code
        self.received: list[Any] = []
        self.attempts = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.failures:
                return self.code
            self.received.append(message_from_bytes(envelope.content))
        return "250 OK"


class SlowHandler:
    """Takes the message, then answers after the client has given up: the outcome is unknown to it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(message_from_bytes(envelope.content))
        await asyncio.sleep(self.delay)
        return "250 OK"


class FirstTryPerRouteHandler:
    """Answers 451 to the first DATA of each route's digest (X-Bouncehouse-Route), then accepts: every
    route spends a backoff in state 'retrying', the window a second sender used to slip into."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.received: dict[str, list[Any]] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = message_from_bytes(envelope.content)
        route = str(message["X-Bouncehouse-Route"])
        with self.lock:
            if route not in self.refused:
                self.refused.add(route)
                return "451 4.3.0 Temporary failure, try again"
            self.received.setdefault(route, []).append(message)
        return "250 OK"
