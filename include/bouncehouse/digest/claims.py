"""Owned claims on ``ops.digest_log``: what makes a route's digest of one day go out at most once.

A run takes (route, day) with one compare-and-set, read and written in one transaction of one warehouse
session, and holds a lease (``lease_until``) it renews at each step. It takes a row only when there is
none, or it is 'retrying' (or 'sending' on the idempotent outbox) and its lease has run out; every later
change checks ``claimed_by``, and a run whose claim was taken over stops.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from bouncehouse import warehouse
from bouncehouse.config import Settings

log = logging.getLogger(__name__)

# How long a claim stays this run's without a word from it. Every step renews it, and the longest gap
# between two steps of a live run is a backoff (at most 4 s) plus waiting for the warehouse lock. Safety
# never depends on it (every change checks the owner); it only decides how soon a run that died between
# attempts leaves its route to the next run (an Airflow retry comes a minute or more later).
LEASE = timedelta(seconds=60)
CLAIM_TRIES = 3
# The columns a claim's owner may change after taking it.
UPDATABLE = {"state", "attempts", "message_ref", "sent_at", "last_error"}


@dataclass(frozen=True)
class RouteOutcome:
    """What became of one route: sent | already_sent | unconfirmed | failed | in_progress | undeliverable
    (``claimed`` only between the claim and the send), and for the last four, why, for the operator."""

    outcome: str
    problem: str | None = None


@dataclass(frozen=True)
class ClaimRow:
    """What a new claim writes: the digest about to go out, and over which transport."""

    transport: str
    idempotent: bool  # the transport leaves one copy when the same digest is sent twice
    recipients: list[str]
    skipped: list[str]
    subject: str
    message_id: str
    bounced: int
    complained: int


@dataclass(frozen=True)
class RouteClaim:
    """One run's claim on one route's digest of one day."""

    settings: Settings
    owner: str
    route: str
    day: date

    def update(self, *, expect: str | None = None, hold: bool = True, **values: Any) -> bool:
        """Change this run's claim and renew its lease (or, ``hold=False``, end it); False when the row is
        no longer ours (or, with ``expect``, no longer in that state): the caller must stop."""
        assert set(values) <= UPDATABLE, values
        assignments = ", ".join(f"{column} = ?" for column in values)
        condition = "route = ? and digest_day = ? and claimed_by = ?" + (" and state = ?" if expect else "")
        now = utcnow()
        with warehouse.writer(self.settings) as con:
            [changed] = con.execute(
                f"update ops.digest_log set {assignments}, lease_until = ? where {condition}",
                [*values.values(), now + LEASE if hold else now, *self._key(), *([expect] if expect else [])],
            ).fetchone()
        return changed == 1

    def release(self) -> None:
        """Drop this run's claim on an email that certainly did not go out, so the next run sends it."""
        with warehouse.writer(self.settings) as con:
            con.execute(
                "delete from ops.digest_log where route = ? and digest_day = ? and claimed_by = ?",
                self._key(),
            )

    def taken_over(self) -> RouteOutcome:
        log.warning(
            "digest %s/%s: another run took this route's claim over; leaving the route to it",
            self.day,
            self.route,
        )
        return RouteOutcome(
            "in_progress", "another run took its claim over; re-run later to confirm it was sent"
        )

    def _key(self) -> list[Any]:
        return [self.route, self.day, self.owner]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_owner() -> str:
    """This run's token in ``ops.digest_log.claimed_by``: host and pid for people, a random part so two
    runs never share it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def one_line(text: object) -> str:
    """An error as one line (SMTP replies can span several)."""
    return " ".join(str(text).split())


def take_claim(claim: RouteClaim, row: ClaimRow) -> RouteOutcome:
    """Take (route, day) for this run: read and write in one transaction of one warehouse session.

    DuckDB lets one process at a time open the file for writing, so no other run acts between the read
    and the write; two connections of one process conflict at the write or the commit instead, and the
    claim is looked at again. Returns ``claimed`` or why not.
    """
    for _ in range(CLAIM_TRIES):
        try:
            with warehouse.writer(claim.settings) as con, warehouse.transaction(con):
                return _claim_in(con, claim, row)
        except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
            log.info(
                "digest %s/%s: claim met another claim (%s); looking again",
                claim.day,
                claim.route,
                one_line(exc),
            )
    return RouteOutcome("in_progress", "another run kept claiming it at the same moment; re-run to confirm")


def _claim_in(con: duckdb.DuckDBPyConnection, claim: RouteClaim, row: ClaimRow) -> RouteOutcome:
    now = utcnow()
    existing = con.execute(
        "select state, transport, claimed_by, lease_until from ops.digest_log where route = ? and digest_day = ?",
        [claim.route, claim.day],
    ).fetchone()
    if existing is not None:
        refusal = _refusal(claim, row, *existing, now=now)
        if refusal is not None:
            return refusal
        con.execute("delete from ops.digest_log where route = ? and digest_day = ?", [claim.route, claim.day])
    con.execute(
        """
        insert into ops.digest_log (route, digest_day, state, recipients, skipped, transport, message_id,
                                    subject, bounced, complained, attempts, claimed_at, claimed_by, lease_until)
        values (?, ?, 'retrying', ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
        """,
        [
            claim.route, claim.day, row.recipients, row.skipped, row.transport, row.message_id, row.subject,
            row.bounced, row.complained, now, claim.owner, now + LEASE,
        ],
    )  # fmt: skip
    return RouteOutcome("claimed")


def _refusal(
    claim: RouteClaim,
    row: ClaimRow,
    state: str,
    previous_transport: str,
    holder: str | None,
    lease_until: datetime | None,
    *,
    now: datetime,
) -> RouteOutcome | None:
    """Why an existing row may not be taken over (None: it may be, and is replaced)."""
    day, name = claim.day, claim.route
    if state == "sent":
        return RouteOutcome("already_sent")
    held = holder is not None and holder != claim.owner and lease_until is not None and lease_until > now
    # 'sending' = a transmission whose outcome nobody saw; only an idempotent transport (the outbox
    # rewrites the same file) may safely do it again, and only once its run has let go of it.
    redoable = state == "retrying" or (previous_transport == row.transport and row.idempotent)
    if held:
        log.warning(
            "digest %s/%s: another run (%s) holds the claim until %s (state %r); leaving the route to it",
            day, name, holder, f"{lease_until:%H:%M:%S}", state,
        )  # fmt: skip
        return RouteOutcome(
            "in_progress",
            f"being sent by another run ({holder}, state '{state}', claim held until "
            f"{lease_until:%Y-%m-%d %H:%M:%S} UTC); re-run later to confirm it was sent",
        )
    if not redoable:
        log.error(
            "digest %s/%s: a previous send's outcome is unknown (state 'sending'); not resending. "
            "If no admin received it, delete its ops.digest_log row and re-run",
            day, name,
        )  # fmt: skip
        return RouteOutcome(
            "unconfirmed",
            f"an earlier send's outcome is unknown (ops.digest_log state 'sending' over {previous_transport}), "
            "not resent: if no admin received it, delete its row and re-run; if they did, set its state to 'sent'",
        )
    return None
