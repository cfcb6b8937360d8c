"""The daily admin digest: one email per route per UTC day, at most once, never to a suppressed address.

Flow: read the routes file (ConfigError if bad), read the marts once, close the warehouse; then per
route: claim (route, day) in ``ops.digest_log``, compose, send with retries, mark sent. The warehouse
is opened only for those short steps, never while waiting on a mail server.

Exactly-once (see the README's digest section): a claim row is written before each transmission
(state 'sending') and turned into 'retrying' after a failure the server certainly did not accept, or
'sent' after success. A run that finds 'sent' does nothing; 'retrying' (or any state, for the
idempotent outbox) sends again; 'sending' means a process died mid-transmission or the outcome was
unknown: it is reported as ``unconfirmed`` and not resent, because a missing digest is recoverable
(delete the row and re-run) and a duplicate is not.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime
from typing import Any

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
from bouncehouse.digest.transports import (
    PermanentFailure,
    SmtpSettings,
    TemporaryFailure,
    Transport,
    UncertainFailure,
    build_transport,
)
from bouncehouse.errors import BouncehouseError
from bouncehouse.routes import load_routes

__all__ = ["DigestDeliveryError", "SmtpSettings", "send_digests"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
FIRST_RETRY_DELAY = 1.0  # seconds; doubles on each retry (1, 2, 4)


class DigestDeliveryError(BouncehouseError):
    """Some routes' digests could not be sent; the others went out. A re-run sends only the missing ones."""


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def send_digests(
    settings: Settings, *, smtp: SmtpSettings | None = None, ses_client: Any = None
) -> dict[str, Any]:
    routes = load_routes(settings.routes)
    day = digest_day(settings.now())
    transport = build_transport(
        settings.digest_transport, outbox=settings.outbox, smtp=smtp, ses_client=ses_client
    )
    sender = (
        smtp.from_email if smtp and smtp.from_email and transport.name == "smtp" else None
    ) or settings.digest_sender

    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        data = load_digest_data(con, routes, day)
        suppressed = load_suppressions(con, {a for r in routes for a in r.admins}, settings.now())
    log.info(
        "digest for %s: %d routes, %d listed recipients, 7-day bounce rate %s, complaint rate %s",
        day, len(routes), sum(len(r.rows) for r in data.routes),
        data.account.bounce.value, data.account.complaint.value,
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
        "undeliverable": 0,
        "admins_skipped": 0,
        "recipients_listed": 0,
    }
    failures: list[str] = []
    for index, route_day in enumerate(data.routes, start=1):
        name = route_day.route.name
        skipped = {a: suppressed[a] for a in route_day.route.admins if a in suppressed}
        recipients = [a for a in route_day.route.admins if a not in suppressed]
        if not recipients:
            counts["undeliverable"] += 1
            log.warning(
                "digest %s/%s: every admin of route %r is suppressed (%s); nothing sent: fix the routes file",
                day, name, name, ", ".join(sorted(skipped)),
            )  # fmt: skip
            continue
        outcome = _send_route(
            settings, transport, route_day, data.account, sender, recipients, skipped, chart_png
        )
        counts[outcome] += 1
        if outcome == "sent":
            counts["admins_skipped"] += len(skipped)
            counts["recipients_listed"] += len(route_day.rows)
        elif outcome == "failed":
            failures.append(name)
        log.info("digest %d/%d route %r: %s", index, len(data.routes), name, outcome)

    log.info(
        "digest for %s: %d sent, %d already sent, %d unconfirmed, %d failed, %d undeliverable",
        day, counts["sent"], counts["already_sent"], counts["unconfirmed"], counts["failed"], counts["undeliverable"],
    )  # fmt: skip
    if failures:
        raise DigestDeliveryError(
            f"digest for {day}: could not send route(s) {', '.join(failures)} over {transport.name} "
            f"({counts['sent']} sent); a re-run sends only those"
        )
    return counts


def _send_route(
    settings: Settings,
    transport: Transport,
    route_day: RouteDay,
    account: AccountStats,
    sender: str,
    recipients: list[str],
    skipped: dict[str, Suppression],
    chart_png: bytes,
) -> str:
    """Claim, send with retries, record. Returns sent | already_sent | unconfirmed | failed."""
    name, day = route_day.route.name, account.day
    message = compose_digest(
        route_day, account, sender=sender, recipients=recipients, skipped=skipped,
        chart_png=chart_png, generated_at=_utcnow(),
    )  # fmt: skip
    decision = _claim(
        settings,
        transport,
        name,
        day,
        recipients,
        skipped,
        message["Subject"],
        message["Message-ID"],
        route_day,
    )
    if decision != "claimed":
        return decision

    key = message_key(name, day.isoformat())
    delay = FIRST_RETRY_DELAY
    for attempt in range(1, MAX_ATTEMPTS + 1):
        _update(settings, name, day, state="sending", attempts=attempt)
        try:
            ref = transport.send(message, sender=sender, recipients=recipients, key=key)
        except TemporaryFailure as exc:
            _update(settings, name, day, state="retrying", last_error=str(exc))
            if attempt == MAX_ATTEMPTS:
                log.error("digest %s/%s: giving up after %d attempts: %s", day, name, attempt, exc)
                _release(settings, name, day)
                return "failed"
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
            _release(settings, name, day)
            return "failed"
        except UncertainFailure as exc:
            # Leave the claim in 'sending': a re-run reports it instead of risking a second copy.
            _update(settings, name, day, state="sending", last_error=str(exc))
            log.error(
                "digest %s/%s: outcome unknown (%s); not retried. If no admin received it, run "
                "`delete from ops.digest_log where route = '%s' and digest_day = '%s'` and re-run",
                day, name, exc, name, day,
            )  # fmt: skip
            return "unconfirmed"
        else:
            _update(settings, name, day, state="sent", message_ref=ref, sent_at=_utcnow(), last_error=None)
            log.info(
                "digest %s/%s: sent to %d admin(s) via %s (%s)",
                day,
                name,
                len(recipients),
                transport.name,
                ref,
            )
            return "sent"
    raise AssertionError("unreachable")  # the loop always returns


def _claim(
    settings: Settings,
    transport: Transport,
    name: str,
    day: date,
    recipients: list[str],
    skipped: dict[str, Suppression],
    subject: str,
    message_id: str,
    route_day: RouteDay,
) -> str:
    """Take (route, day) for this run, inside one warehouse session (DuckDB: one writer, so atomic)."""
    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        existing = con.execute(
            "select state, transport from ops.digest_log where route = ? and digest_day = ?", [name, day]
        ).fetchone()
        if existing is not None:
            state, previous_transport = existing
            if state == "sent":
                return "already_sent"
            # 'sending' = a transmission whose outcome nobody saw; only an idempotent transport
            # (the outbox rewrites the same file) may safely do it again.
            if state == "sending" and not (previous_transport == transport.name and transport.idempotent):
                log.error(
                    "digest %s/%s: a previous send's outcome is unknown (state 'sending'); not resending. "
                    "If no admin received it, delete its ops.digest_log row and re-run",
                    day, name,
                )  # fmt: skip
                return "unconfirmed"
            con.execute("delete from ops.digest_log where route = ? and digest_day = ?", [name, day])
        con.execute(
            """
            insert into ops.digest_log (route, digest_day, state, recipients, skipped, transport, message_id,
                                        subject, bounced, complained, attempts, claimed_at)
            values (?, ?, 'retrying', ?, ?, ?, ?, ?, ?, ?, 0, ?)
            """,
            [
                name, day, recipients, sorted(skipped), transport.name, message_id, subject,
                route_day.hard_bounced + route_day.soft_bounced, route_day.complained, _utcnow(),
            ],
        )  # fmt: skip
    return "claimed"


_UPDATABLE = {"state", "attempts", "message_ref", "sent_at", "last_error"}


def _update(settings: Settings, name: str, day: date, **values: Any) -> None:
    assert set(values) <= _UPDATABLE, values
    assignments = ", ".join(f"{column} = ?" for column in values)
    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        con.execute(
            f"update ops.digest_log set {assignments} where route = ? and digest_day = ?",
            [*values.values(), name, day],
        )


def _release(settings: Settings, name: str, day: date) -> None:
    """Drop a claim whose email certainly did not go out, so the next run sends it."""
    with warehouse.session(settings.warehouse, lock_timeout=settings.lock_timeout) as con:
        con.execute("delete from ops.digest_log where route = ? and digest_day = ?", [name, day])
