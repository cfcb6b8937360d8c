"""Alerts at once, after each transform: rates nearing SES's review levels, and a landing gone quiet.

- **Rates**: a 7-day bounce or complaint rate, ours (``deliverability_daily``, the 7 UTC days up to
  "now") or SES's (the latest ``Reputation.*`` point pulled, at most two days old), at or above
  ``BOUNCEHOUSE_ALERT_SHARE`` (default 0.8) of SES's review level (bounce 5%, complaint 0.1%). Ours needs
  ``BOUNCEHOUSE_ALERT_MIN_SENDS`` sends in the window (default 500), so 1 bounce in 3 sends pages
  nobody; SES computes its own rates over a volume it deems representative, so they need no floor.
- **Freshness**: no object has landed (its S3 LastModified, else when ingest loaded it) for
  ``BOUNCEHOUSE_ALERT_STALE_HOURS`` (default 6): Firehose, SNS or ingest is broken. This is dbt source
  freshness's question, asked in Python so that it measures against ``--as-of`` (dbt's measures against
  the clock) and reads the threshold from the same settings as everything else.

Each alert is told once per UTC day (``ops.ses_alert_log``): logged at ERROR and emailed to
``BOUNCEHOUSE_ALERT_EMAIL`` when set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import duckdb

from bouncehouse.config import Settings
from bouncehouse.digest.data import BOUNCE_REVIEW, COMPLAINT_REVIEW, format_rate
from bouncehouse.ses.reputation import BOUNCE_METRIC, COMPLAINT_METRIC
from bouncehouse.ses.schema import ensure_ses_schema
from bouncehouse.warehouse import find_relation, transaction, writer

log = logging.getLogger(__name__)

RATE_WINDOW_DAYS = 7
SES_FIGURE_MAX_AGE = timedelta(days=2)

# Sends one email (subject, text body) to the given recipients.
EmailSender = Callable[[EmailMessage, list[str]], None]


@dataclass(frozen=True)
class Alert:
    key: str  # what crossed: ours.bounce_rate, ses.complaint_rate, landing.stale, ...
    message: str


def _rate_alert(key: str, what: str, value: float | None, review: float, share: float) -> Alert | None:
    if value is None or value + 1e-12 < review * share:
        return None
    return Alert(
        key,
        f"{what} {format_rate(value)} is at or over {share:.0%} of SES's review level "
        f"({format_rate(review)}): find the cause before SES reviews or pauses the account.",
    )


def rate_alerts(con: duckdb.DuckDBPyConnection, settings: Settings, now: datetime) -> list[Alert]:
    alerts: list[Alert | None] = []
    relation = find_relation(con, "deliverability_daily")
    if relation is not None:
        first = now.date() - timedelta(days=RATE_WINDOW_DAYS - 1)
        sent, hard, complained = con.execute(
            f"select coalesce(sum(sent), 0), coalesce(sum(hard_bounced), 0), coalesce(sum(complained), 0)"
            f" from {relation} where day::date between ? and ?",
            [first, now.date()],
        ).fetchone()
        if sent >= settings.alert_min_sends:
            share = settings.alert_share
            alerts += [
                _rate_alert("ours.bounce_rate", "Our 7-day bounce rate", hard / sent, BOUNCE_REVIEW, share),
                _rate_alert(
                    "ours.complaint_rate",
                    "Our 7-day complaint rate",
                    complained / sent,
                    COMPLAINT_REVIEW,
                    share,
                ),
            ]
        else:
            log.info("alerts: %d sends in the last %d days, under the floor of %d: our rates not judged",
                     sent, RATE_WINDOW_DAYS, settings.alert_min_sends)  # fmt: skip
    for metric, key, label, review in (
        (BOUNCE_METRIC, "ses.bounce_rate", "bounce", BOUNCE_REVIEW),
        (COMPLAINT_METRIC, "ses.complaint_rate", "complaint", COMPLAINT_REVIEW),
    ):
        row = con.execute(
            "select average from raw.ses_reputation_metrics where metric = ? and period_start <= ?"
            " and period_start > ? order by period_start desc limit 1",
            [metric, now, now - SES_FIGURE_MAX_AGE],
        ).fetchone()
        if row is not None:
            alerts.append(
                _rate_alert(key, f"SES's {metric} ({label} rate)", row[0], review, settings.alert_share)
            )
    return [alert for alert in alerts if alert is not None]


def freshness_alert(con: duckdb.DuckDBPyConnection, settings: Settings, now: datetime) -> Alert | None:
    last = con.execute("select max(coalesce(last_modified, loaded_at)) from raw.ingested_objects").fetchone()[
        0
    ]
    limit = timedelta(hours=settings.alert_stale_hours)
    if last is not None and now - last < limit:
        return None
    since = (
        "no object has landed yet" if last is None else f"the last object landed at {last:%Y-%m-%d %H:%M} UTC"
    )
    return Alert(
        "landing.stale",
        f"No new object has landed for {settings.alert_stale_hours:g} hours ({since}): check Firehose, "
        "the SNS subscription and the ingest DAG.",
    )


def _claim(con: duckdb.DuckDBPyConnection, alerts: list[Alert], day: date, now: datetime) -> list[Alert]:
    """The alerts not yet told today, recorded as told (in one transaction)."""
    new = []
    with transaction(con):
        for alert in alerts:
            told = con.execute(
                "select count(*) from ops.ses_alert_log where alert_key = ? and alert_day = ?",
                [alert.key, day],
            ).fetchone()[0]
            if not told:
                con.execute(
                    "insert into ops.ses_alert_log (alert_key, alert_day, message, raised_at) values (?, ?, ?, ?)",
                    [alert.key, day, alert.message, now],
                )
                new.append(alert)
    return new


def alert_email(alerts: list[Alert], settings: Settings, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[bouncehouse] {len(alerts)} alert{'s' * (len(alerts) > 1)}: " + ", ".join(
        a.key for a in alerts
    )
    message["From"] = settings.digest_sender
    message["To"] = settings.alert_email or ""
    message["Auto-Submitted"] = "auto-generated"
    body = [f"Bouncehouse, {now:%Y-%m-%d %H:%M} UTC:", ""] + [f"- {a.message}" for a in alerts]
    message.set_content("\n".join(body + ["", "Each alert is sent once per UTC day."]) + "\n")
    return message


def _tell(new: list[Alert], settings: Settings, now: datetime, send_email: EmailSender | None) -> str:
    for alert in new:
        log.error("bouncehouse alert %s: %s", alert.key, alert.message)
    recipients = [r.strip() for r in (settings.alert_email or "").split(",") if r.strip()]
    if not recipients or send_email is None:
        return "the log only (BOUNCEHOUSE_ALERT_EMAIL or an SMTP connection not set)"
    send_email(alert_email(new, settings, now), recipients)
    return "email to " + ", ".join(recipients)


def check_alerts(settings: Settings, send_email: EmailSender | None = None) -> dict[str, Any]:
    """Raise the rate and freshness alerts as of ``settings.now()``; tell each new one once per day.

    An email that cannot be sent releases its alerts (the next run tries again) and raises."""
    now = settings.now()
    with writer(settings) as con:
        ensure_ses_schema(con)
        stale = freshness_alert(con, settings, now)
        raised = rate_alerts(con, settings, now) + ([stale] if stale else [])
        new = _claim(con, raised, now.date(), now)
        told = "nobody (nothing new)"
        if new:
            keys = [a.key for a in new]
            try:
                told = _tell(new, settings, now, send_email)
            except BaseException:
                con.execute(
                    "delete from ops.ses_alert_log where alert_day = ? and alert_key in ?", [now.date(), keys]
                )
                raise
            con.execute(
                "update ops.ses_alert_log set notified = ? where alert_day = ? and alert_key in ?",
                [told, now.date(), keys],
            )
    return {
        "raised": [a.key for a in raised],
        "new": [a.message for a in new],
        "already_told_today": len(raised) - len(new),
        "told": told,
    }


def smtp_sender(smtp: Any) -> EmailSender:
    """An EmailSender over the digest's SMTP transport (``SmtpSettings``)."""
    from bouncehouse.digest.transports import SmtpTransport

    transport = SmtpTransport(smtp)

    def send(message: EmailMessage, recipients: list[str]) -> None:
        transport.send(message, sender=message["From"], recipients=recipients, key=message["Subject"])

    return send
