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

Owned claims (``digest/claims.py``): each run has a token (``claimed_by``) and takes a route's row with
one compare-and-set under a lease it renews; every later change checks the owner, and a run whose claim
was taken over stops. So an operator's hand run and the DAG on the same day never both send one route:
the later one reports ``in_progress`` for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bouncehouse import warehouse
from bouncehouse.config import Settings
from bouncehouse.digest.chart import rates_chart_png
from bouncehouse.digest.claims import ClaimRow, RouteClaim, RouteOutcome, new_owner, one_line, utcnow
from bouncehouse.digest.claims import take_claim as _claim  # a module attribute: tests step in after it
from bouncehouse.digest.compose import compose_digest, message_key
from bouncehouse.digest.data import (
    AccountStats,
    RouteDay,
    Suppression,
    digest_day,
    load_digest_data,
    load_suppressions,
)
from bouncehouse.digest.parts import Part, split_digest
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
# Outcomes that leave a route sent; any other fails the run once every route has had its turn.
DONE = ("sent", "already_sent")
# Not a failure of the run: the rule "never to a suppressed address" was kept, and nothing was sent that
# could be lost or doubled. It is logged as an error and listed in the counts' "problems".
REPORTED_ONLY = ("undeliverable",)


@dataclass(frozen=True)
class _Run:
    """What every route of one run shares."""

    settings: Settings
    owner: str
    transport: Transport
    sender: str
    account: AccountStats
    suppressed: dict[str, Suppression]
    chart_png: bytes


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
    with warehouse.writer(settings) as con:
        data = load_digest_data(con, routes, day)
        suppressed = load_suppressions(con, {a for r in routes for a in r.admins}, settings.now())
    log.info(
        "digest for %s: %d routes, %d listed recipients, 7-day bounce rate %s, complaint rate %s (run %s)",
        day, len(routes), sum(len(r.rows) for r in data.routes),
        data.account.bounce.value, data.account.complaint.value, owner,
    )  # fmt: skip
    run = _Run(
        settings, owner, transport, sender, data.account, suppressed, rates_chart_png(data.account.series)
    )
    counts = _new_counts(day.isoformat(), transport.name, len(routes))
    reasons: list[str] = []
    for index, route_day in enumerate(data.routes, start=1):
        result = _route_turn(run, route_day)
        reasons += _count(counts, route_day, result, suppressed)
        log.info("digest %d/%d route %r: %s", index, len(data.routes), route_day.route.name, result.outcome)
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


def _new_counts(day: str, transport: str, routes: int) -> dict[str, Any]:
    outcomes = ("sent", "already_sent", "unconfirmed", "failed", "in_progress", "undeliverable")
    return {
        "day": day,
        "transport": transport,
        "routes": routes,
        **dict.fromkeys(outcomes, 0),
        "admins_skipped": 0,
        "recipients_listed": 0,
        "problems": {},
    }


def _route_turn(run: _Run, route_day: RouteDay) -> RouteOutcome:
    """Send the route to its admins who are not suppressed; undeliverable when none is left."""
    skipped = {a: run.suppressed[a] for a in route_day.route.admins if a in run.suppressed}
    recipients = [a for a in route_day.route.admins if a not in run.suppressed]
    if recipients:
        return _send_route(run, route_day, recipients, skipped)
    result = RouteOutcome(
        "undeliverable",
        f"every admin is suppressed ({', '.join(sorted(skipped))}): "
        "give the route an admin who can receive it in the routes file",
    )
    log.error("digest %s/%s: not sent: %s", run.account.day, route_day.route.name, result.problem)
    return result


def _count(
    counts: dict[str, Any], route_day: RouteDay, result: RouteOutcome, suppressed: dict[str, Suppression]
) -> list[str]:
    """Add one route's outcome to the counts; why it fails the run, if it does."""
    name = route_day.route.name
    counts[result.outcome] += 1
    if result.outcome == "sent":
        counts["admins_skipped"] += sum(1 for a in route_day.route.admins if a in suppressed)
        counts["recipients_listed"] += len(route_day.rows)
    if result.outcome not in DONE:
        counts["problems"][name] = result.outcome
    if result.outcome not in DONE + REPORTED_ONLY:
        return [f"{name}: {result.problem or result.outcome}"]
    return []


def _send_route(
    run: _Run, route_day: RouteDay, recipients: list[str], skipped: dict[str, Suppression]
) -> RouteOutcome:
    """Claim, send with retries, record; stop as soon as another run has taken the claim over."""
    transport, sender = run.transport, run.sender
    message = compose_digest(
        route_day, run.account, sender=sender, recipients=recipients, skipped=skipped,
        chart_png=run.chart_png, generated_at=utcnow(),
    )  # fmt: skip
    claim = RouteClaim(run.settings, run.owner, route_day.route.name, run.account.day)
    row = ClaimRow(
        transport=transport.name,
        idempotent=transport.idempotent,
        recipients=recipients,
        skipped=sorted(skipped),
        subject=message["Subject"],
        message_id=message["Message-ID"],
        bounced=route_day.hard_bounced + route_day.soft_bounced,
        complained=route_day.complained,
    )
    decision = _claim(claim, row)
    if decision.outcome != "claimed":
        return decision
    key = message_key(claim.route, claim.day.isoformat())
    parts = split_digest(message, recipients, key, show_admins=run.settings.digest_show_admins)
    return _send_parts(claim, transport, sender, parts)


def _send_parts(claim: RouteClaim, transport: Transport, sender: str, parts: list[Part]) -> RouteOutcome:
    """Send every part under the one claim. A retry resumes at the part that failed; once a part has
    gone out the claim never goes back to 'retrying' (a run that dies then leaves 'sending', reported
    as unconfirmed), so no admin ever gets the route's digest twice."""
    refs: list[str] = []
    delay = FIRST_RETRY_DELAY
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # To 'sending' only if the claim is still ours and nobody sent meanwhile.
        if not claim.update(expect="sending" if refs else "retrying", state="sending", attempts=attempt):
            return claim.taken_over()
        try:
            for part in parts[len(refs) :]:
                refs.append(
                    transport.send(part.message, sender=sender, recipients=part.recipients, key=part.key)
                )
        except TemporaryFailure as exc:
            if not claim.update(
                state="sending" if refs else "retrying", last_error=_progress(exc, refs, parts)
            ):
                return claim.taken_over()
            if attempt == MAX_ATTEMPTS:
                return (
                    _unconfirmed(claim, _progress(exc, refs, parts))
                    if refs
                    else _gave_up(claim, transport, attempt, exc)
                )
            log.warning(
                "digest %s/%s: attempt %d/%d failed (%s); retrying in %.0fs",
                claim.day, claim.route, attempt, MAX_ATTEMPTS, _progress(exc, refs, parts), delay,
            )  # fmt: skip
            time.sleep(delay)
            delay *= 2
        except PermanentFailure as exc:
            if refs:
                return _unconfirmed(claim, _progress(exc, refs, parts))
            log.error("digest %s/%s: not sent: %s", claim.day, claim.route, exc)
            claim.release()
            return RouteOutcome("failed", f"not sent over {transport.name} ({one_line(exc)})")
        except UncertainFailure as exc:
            return _unconfirmed(claim, _progress(exc, refs, parts))
        else:
            return _sent(claim, transport, " ".join(refs), sum(len(p.recipients) for p in parts))
    raise AssertionError("unreachable")  # the loop always returns


def _progress(exc: Exception, refs: list[str], parts: list[Part]) -> str:
    """The failure, and how far a digest of several emails got."""
    if len(parts) == 1:
        return str(exc)
    return f"email {len(refs) + 1} of {len(parts)} ({len(refs)} sent): {one_line(exc)}"


def _gave_up(claim: RouteClaim, transport: Transport, attempts: int, exc: Exception) -> RouteOutcome:
    """Every attempt met a temporary failure: nothing went out, so the next run may send it."""
    log.error("digest %s/%s: giving up after %d attempts: %s", claim.day, claim.route, attempts, exc)
    claim.release()
    return RouteOutcome(
        "failed",
        f"not sent after {attempts} attempts over {transport.name} ({one_line(exc)}); a re-run tries again",
    )


def _unconfirmed(claim: RouteClaim, exc: Exception | str) -> RouteOutcome:
    """Leave the claim in 'sending': a re-run reports it instead of risking a second copy. The run lets
    go of it at once, so the next run reports it as unconfirmed straight away."""
    claim.update(state="sending", last_error=str(exc), hold=False)
    log.error(
        "digest %s/%s: outcome unknown (%s); not retried. If no admin received it, run "
        "`delete from ops.digest_log where route = '%s' and digest_day = '%s'` and re-run",
        claim.day, claim.route, exc, claim.route, claim.day,
    )  # fmt: skip
    return RouteOutcome(
        "unconfirmed",
        f"outcome unknown ({one_line(exc)}), not retried: if no admin received it, delete its "
        "ops.digest_log row and re-run; if they did, set its state to 'sent'",
    )


def _sent(claim: RouteClaim, transport: Transport, ref: str, recipients: int) -> RouteOutcome:
    """Record the send; only the idempotent outbox lets a 'sending' claim be taken over (the same file
    again), so a claim lost here means another run wrote it too."""
    if not claim.update(state="sent", message_ref=ref, sent_at=utcnow(), last_error=None):
        return claim.taken_over()
    log.info(
        "digest %s/%s: sent to %d admin(s) via %s (%s)",
        claim.day,
        claim.route,
        recipients,
        transport.name,
        ref,
    )
    return RouteOutcome("sent")
