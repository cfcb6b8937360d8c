"""The daily admin digest: one email per route per UTC day, at most once, never to a suppressed address.

Flow: read the routes file (ConfigError if bad), read the marts once, close the warehouse; then per
route: claim (route, day) in ``ops.digest_log``, compose, send with retries, mark sent. The warehouse
is opened only for those short steps, never while waiting on a mail server. Every route has its turn;
then, if any route's send failed, is unconfirmed or is held by another run, the run raises
``DigestDeliveryError`` naming them, so the Airflow task and the CLI fail and an operator hears of it.
A route whose admins are all suppressed is only reported (an error log line, ``problems``).

At most once (see the README's digest section): a claim row is written before each transmission
(state 'sending') and turned into 'retrying' after a failure the server certainly did not accept, or
'sent' after success. A run that finds 'sent' does nothing; 'retrying' (or any state, for the
idempotent outbox) sends again; 'sending' means a process died mid-transmission or the outcome was
unknown: it is reported as ``unconfirmed`` and not resent, because a missing digest is recoverable
(delete the row and re-run) and a duplicate is not.

Owned claims: each run has a token (``claimed_by``); a claim is one compare-and-set, read and written in
one transaction of one warehouse session, and holds a lease (``lease_until``) the run renews at each
step. A run takes a row only when there is none, or it is 'retrying' (or 'sending' on the outbox) and
its lease has run out; every later change checks ``claimed_by``, and a run whose claim was taken over
stops. So an operator's hand run and the DAG on the same day never both send one route: the later one
reports ``in_progress`` for it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import duckdb

from bouncehouse import warehouse
from bouncehouse.config import Settings
from bouncehouse.digest.chart import rates_chart_png
from bouncehouse.digest.compose import compose_digest, message_key
from bouncehouse.digest.data import (
    AccountStats,
    RouteDay,
    Suppression,
    digest_day,
    load_digest_data,
    load_suppressions,
)
from bouncehouse.digest.routes import load_routes
from bouncehouse.digest.transports import (
    PermanentFailure,
    SmtpSettings,
    TemporaryFailure,
    Transport,
    UncertainFailure,
    build_transport,
)
from bouncehouse.errors import DigestDeliveryError

__all__ = ["DigestDeliveryError", "SmtpSettings", "send_digests"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
FIRST_RETRY_DELAY = 1.0  # seconds; doubles on each retry (1, 2, 4)
# How long a claim stays this run's without a word from it. Every step renews it, and the longest gap
# between two steps of a live run is a backoff (at most 4 s) plus waiting for the warehouse lock. Safety
# never depends on it (every change checks the owner); it only decides how soon a run that died between
# attempts leaves its route to the next run (an Airflow retry comes a minute or more later).
LEASE = timedelta(seconds=60)
CLAIM_TRIES = 3

# Outcomes that leave a route sent; any other fails the run once every route has had its turn.
DONE = ("sent", "already_sent")
# Not a failure of the run: the rule "never to a suppressed address" was kept, and nothing was sent that
# could be lost or doubled. It is logged as an error and listed in the counts' "problems".
REPORTED_ONLY = ("undeliverable",)


@dataclass(frozen=True)
class RouteOutcome:
    """What became of one route: sent | already_sent | unconfirmed | failed | in_progress | undeliverable
    (``claimed`` only between ``_claim`` and the send), and for the last four, why, for the operator."""

    outcome: str
    problem: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_owner() -> str:
    """This run's token in ``ops.digest_log.claimed_by``: host and pid for people, a random part so two
    runs never share it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def send_digests(
    settings: Settings, *, smtp: SmtpSettings | None = None, ses_client: Any = None
) -> dict[str, Any]:
    """Send each route's digest for the day before ``settings.now()``; return the counts.

    Raises ``DigestDeliveryError`` (carrying the counts) after the last route when any route's send
    was unconfirmed, failed, or in progress in another run. A route whose admins are all suppressed
    (undeliverable) is logged as an error and listed in ``problems``, but does not fail the run.
    """
    routes = load_routes(settings.routes)
    day = digest_day(settings.now())
    transport = build_transport(
        settings.digest_transport, outbox=settings.outbox, smtp=smtp, ses_client=ses_client
    )
    sender = (
        smtp.from_email if smtp and smtp.from_email and transport.name == "smtp" else None
    ) or settings.digest_sender
    owner = new_owner()

    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        data = load_digest_data(con, routes, day)
        suppressed = load_suppressions(con, {a for r in routes for a in r.admins}, settings.now())
    log.info(
        "digest for %s: %d routes, %d listed recipients, 7-day bounce rate %s, complaint rate %s (run %s)",
        day, len(routes), sum(len(r.rows) for r in data.routes),
        data.account.bounce.value, data.account.complaint.value, owner,
    )  # fmt: skip
    chart_png = rates_chart_png(data.account.series)

    counts: dict[str, Any] = {
        "day": day.isoformat(),
        "transport": transport.name,
        "routes": len(routes),
        "sent": 0,
        "already_sent": 0,
        "unconfirmed": 0,
        "failed": 0,
        "in_progress": 0,
        "undeliverable": 0,
        "admins_skipped": 0,
        "recipients_listed": 0,
        "problems": {},
    }
    reasons: list[str] = []
    for index, route_day in enumerate(data.routes, start=1):
        name = route_day.route.name
        skipped = {a: suppressed[a] for a in route_day.route.admins if a in suppressed}
        recipients = [a for a in route_day.route.admins if a not in suppressed]
        if recipients:
            result = _send_route(
                settings, owner, transport, route_day, data.account, sender, recipients, skipped, chart_png
            )
        else:
            result = RouteOutcome(
                "undeliverable",
                f"every admin is suppressed ({', '.join(sorted(skipped))}): "
                "give the route an admin who can receive it in the routes file",
            )
            log.error("digest %s/%s: not sent: %s", day, name, result.problem)
        counts[result.outcome] += 1
        if result.outcome == "sent":
            counts["admins_skipped"] += len(skipped)
            counts["recipients_listed"] += len(route_day.rows)
        if result.outcome not in DONE:
            counts["problems"][name] = result.outcome
        if result.outcome not in DONE + REPORTED_ONLY:
            reasons.append(f"{name}: {result.problem or result.outcome}")
        log.info("digest %d/%d route %r: %s", index, len(data.routes), name, result.outcome)

    log.info(
        "digest for %s: %d sent, %d already sent, %d unconfirmed, %d failed, %d in progress elsewhere, "
        "%d undeliverable",
        day, counts["sent"], counts["already_sent"], counts["unconfirmed"], counts["failed"],
        counts["in_progress"], counts["undeliverable"],
    )  # fmt: skip
    if reasons:
        raise DigestDeliveryError(
            f"digest for {day}: {len(reasons)} of {len(data.routes)} route(s) not sent or not confirmed "
            f"({counts['sent']} sent, {counts['already_sent']} already sent over {transport.name}): "
            + "; ".join(reasons),
            counts=counts,
            problems=counts["problems"],
        )
    return counts


def _one_line(text: object) -> str:
    """An error as one line (SMTP replies can span several)."""
    return " ".join(str(text).split())


def _send_route(
    settings: Settings,
    owner: str,
    transport: Transport,
    route_day: RouteDay,
    account: AccountStats,
    sender: str,
    recipients: list[str],
    skipped: dict[str, Suppression],
    chart_png: bytes,
) -> RouteOutcome:
    """Claim, send with retries, record; stop as soon as another run has taken the claim over."""
    name, day = route_day.route.name, account.day
    message = compose_digest(
        route_day, account, sender=sender, recipients=recipients, skipped=skipped,
        chart_png=chart_png, generated_at=_utcnow(),
    )  # fmt: skip
    decision = _claim(
        settings,
        name,
        day,
        partial(
            _claim_in,
            owner=owner,
            transport=transport,
            name=name,
            day=day,
            recipients=recipients,
            skipped=skipped,
            subject=message["Subject"],
            message_id=message["Message-ID"],
            route_day=route_day,
        ),
    )
    if decision.outcome != "claimed":
        return decision

    key = message_key(name, day.isoformat())
    delay = FIRST_RETRY_DELAY
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # From 'retrying' to 'sending' only if the claim is still ours and nobody sent meanwhile.
        if not _update(settings, owner, name, day, expect="retrying", state="sending", attempts=attempt):
            return _taken_over(name, day)
        try:
            ref = transport.send(message, sender=sender, recipients=recipients, key=key)
        except TemporaryFailure as exc:
            if not _update(settings, owner, name, day, state="retrying", last_error=str(exc)):
                return _taken_over(name, day)
            if attempt == MAX_ATTEMPTS:
                log.error("digest %s/%s: giving up after %d attempts: %s", day, name, attempt, exc)
                _release(settings, owner, name, day)
                return RouteOutcome(
                    "failed",
                    f"not sent after {attempt} attempts over {transport.name} ({_one_line(exc)}); "
                    "a re-run tries again",
                )
            log.warning(
                "digest %s/%s: attempt %d/%d failed (%s); retrying in %.0fs",
                day,
                name,
                attempt,
                MAX_ATTEMPTS,
                exc,
                delay,
            )
            time.sleep(delay)
            delay *= 2
        except PermanentFailure as exc:
            log.error("digest %s/%s: not sent: %s", day, name, exc)
            _release(settings, owner, name, day)
            return RouteOutcome("failed", f"not sent over {transport.name} ({_one_line(exc)})")
        except UncertainFailure as exc:
            # Leave the claim in 'sending': a re-run reports it instead of risking a second copy.
            # The run lets go of it at once, so the next run reports it as unconfirmed straight away.
            _update(settings, owner, name, day, state="sending", last_error=str(exc), hold=False)
            log.error(
                "digest %s/%s: outcome unknown (%s); not retried. If no admin received it, run "
                "`delete from ops.digest_log where route = '%s' and digest_day = '%s'` and re-run",
                day, name, exc, name, day,
            )  # fmt: skip
            return RouteOutcome(
                "unconfirmed",
                f"outcome unknown ({_one_line(exc)}), not retried: if no admin received it, delete its "
                "ops.digest_log row and re-run; if they did, set its state to 'sent'",
            )
        else:
            if not _update(
                settings, owner, name, day, state="sent", message_ref=ref, sent_at=_utcnow(), last_error=None
            ):
                # Only the idempotent outbox lets a 'sending' claim be taken over: the same file again.
                return _taken_over(name, day)
            log.info(
                "digest %s/%s: sent to %d admin(s) via %s (%s)",
                day,
                name,
                len(recipients),
                transport.name,
                ref,
            )
            return RouteOutcome("sent")
    raise AssertionError("unreachable")  # the loop always returns


def _taken_over(name: str, day: date) -> RouteOutcome:
    log.warning("digest %s/%s: another run took this route's claim over; leaving the route to it", day, name)
    return RouteOutcome("in_progress", "another run took its claim over; re-run later to confirm it was sent")


def _claim(
    settings: Settings, name: str, day: date, claim_in: Callable[[duckdb.DuckDBPyConnection], RouteOutcome]
) -> RouteOutcome:
    """Take (route, day) for this run: read and write in one transaction of one warehouse session.

    DuckDB lets one process at a time open the file for writing, so no other run acts between the read
    and the write; two connections of one process conflict at the write or the commit instead, and the
    claim is looked at again. Returns ``claimed`` or why not.
    """
    for _ in range(CLAIM_TRIES):
        try:
            with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
                con.execute("begin transaction")
                decision = claim_in(con)
                con.execute("commit")
                return decision
        except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
            log.info("digest %s/%s: claim met another claim (%s); looking again", day, name, _one_line(exc))
    return RouteOutcome("in_progress", "another run kept claiming it at the same moment; re-run to confirm")


def _claim_in(
    con: duckdb.DuckDBPyConnection,
    *,
    owner: str,
    transport: Transport,
    name: str,
    day: date,
    recipients: list[str],
    skipped: dict[str, Suppression],
    subject: str,
    message_id: str,
    route_day: RouteDay,
) -> RouteOutcome:
    now = _utcnow()
    existing = con.execute(
        "select state, transport, claimed_by, lease_until from ops.digest_log where route = ? and digest_day = ?",
        [name, day],
    ).fetchone()
    if existing is not None:
        state, previous_transport, holder, lease_until = existing
        if state == "sent":
            return RouteOutcome("already_sent")
        held = holder is not None and holder != owner and lease_until is not None and lease_until > now
        # 'sending' = a transmission whose outcome nobody saw; only an idempotent transport (the outbox
        # rewrites the same file) may safely do it again, and only once its run has let go of it.
        redoable = state == "retrying" or (previous_transport == transport.name and transport.idempotent)
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
        con.execute("delete from ops.digest_log where route = ? and digest_day = ?", [name, day])
    con.execute(
        """
        insert into ops.digest_log (route, digest_day, state, recipients, skipped, transport, message_id,
                                    subject, bounced, complained, attempts, claimed_at, claimed_by, lease_until)
        values (?, ?, 'retrying', ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
        """,
        [
            name, day, recipients, sorted(skipped), transport.name, message_id, subject,
            route_day.hard_bounced + route_day.soft_bounced, route_day.complained, now, owner, now + LEASE,
        ],
    )  # fmt: skip
    return RouteOutcome("claimed")


_UPDATABLE = {"state", "attempts", "message_ref", "sent_at", "last_error"}


def _update(
    settings: Settings,
    owner: str,
    name: str,
    day: date,
    *,
    expect: str | None = None,
    hold: bool = True,
    **values: Any,
) -> bool:
    """Change this run's claim and renew its lease (or, ``hold=False``, end it); False when the row is
    no longer ours (or, with ``expect``, no longer in that state): the caller must stop."""
    assert set(values) <= _UPDATABLE, values
    assignments = ", ".join(f"{column} = ?" for column in values)
    condition = "route = ? and digest_day = ? and claimed_by = ?" + (" and state = ?" if expect else "")
    now = _utcnow()
    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        [changed] = con.execute(
            f"update ops.digest_log set {assignments}, lease_until = ? where {condition}",
            [*values.values(), now + LEASE if hold else now, name, day, owner, *([expect] if expect else [])],
        ).fetchone()
    return changed == 1


def _release(settings: Settings, owner: str, name: str, day: date) -> None:
    """Drop this run's claim on an email that certainly did not go out, so the next run sends it."""
    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        con.execute(
            "delete from ops.digest_log where route = ? and digest_day = ? and claimed_by = ?",
            [name, day, owner],
        )
