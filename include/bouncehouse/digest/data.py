"""What a digest says, read from the dbt marts (message_status, suppression_list, deliverability_daily).

Plain values out, no formatting: compose.py turns them into an email, chart.py into a PNG.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from bouncehouse.digest.routes import Route, routes_for
from bouncehouse.errors import ConfigError
from bouncehouse.ses.reputation import SesFigures, load_ses_figures
from bouncehouse.warehouse import MARTS, find_relation

# SES's account-level limits (fractions): above "review" SES puts the account under review, above
# "pause" it may pause sending. "near" warns at this share of the review level.
BOUNCE_REVIEW, BOUNCE_PAUSE = 0.05, 0.10
COMPLAINT_REVIEW, COMPLAINT_PAUSE = 0.001, 0.005
NEAR_SHARE = 0.8
RATE_WINDOW_DAYS = 7
CHART_DAYS = 30
LISTED_STATUSES = ("hard_bounced", "soft_bounced", "complained")
SENDS_UNKNOWN_ADVICE = (
    "enable SES event publishing with Send events on the configuration set "
    "(or Delivery notifications on the identity)"
)


@dataclass(frozen=True)
class DigestRow:
    """One bounced or complained recipient of the digest day."""

    recipient: str
    status: str
    status_at: datetime | None
    bounce_type: str | None
    bounce_sub_type: str | None
    diagnostic_code: str | None
    complaint_feedback_type: str | None
    sent_at: datetime | None
    subject: str | None
    message_id: str
    tags: dict[str, list[str]]


@dataclass(frozen=True)
class RateCheck:
    """A 7-day rate against SES's review and pause levels."""

    label: str
    value: float | None  # None: nothing sent in the window, or the sends are not known
    review: float
    pause: float
    sends_known: bool = True  # False: SES reported only feedback, so `sent` (the denominator) is short

    @property
    def level(self) -> str:
        if not self.sends_known:
            return "sends unknown"
        if self.value is None:
            return "no data"
        # A hair of tolerance so 0.05 * 0.8 counts as 4% (floating point makes it 0.04000000000000001).
        value = self.value + 1e-12
        if value >= self.pause:
            return "pause"
        if value >= self.review:
            return "review"
        if value >= self.review * NEAR_SHARE:
            return "near"
        return "ok"

    @property
    def warning(self) -> str | None:
        """A sentence an admin can act on, or None when the rate is comfortably below the limits."""
        if self.value is None or self.level == "ok":
            return None
        rate = format_rate(self.value)
        if self.level == "pause":
            return (
                f"{self.label} {rate} is at or over SES's pause level ({format_rate(self.pause)}): "
                "SES may pause sending for the whole account. Act now."
            )
        if self.level == "review":
            return (
                f"{self.label} {rate} is over SES's review level ({format_rate(self.review)}): "
                f"SES may put the account under review; it may pause sending at {format_rate(self.pause)}."
            )
        return (
            f"{self.label} {rate} is near SES's review level ({format_rate(self.review)}): "
            "find the cause before it crosses it."
        )


@dataclass(frozen=True)
class DayPoint:
    day: date
    sent: int
    hard_bounced: int  # what SES's bounce rate counts (deliverability_daily.rate_hard_bounced)
    complained: int
    bounce_rate: float | None  # None: nothing sent, or the day's sends are not known
    complaint_rate: float | None
    sends_known: bool = True  # deliverability_daily.sends_known


@dataclass(frozen=True)
class AccountStats:
    """Account-wide figures (all routes) from deliverability_daily."""

    day: date
    window_start: date
    window_sent: int
    window_hard_bounced: int
    window_complained: int
    bounce: RateCheck
    complaint: RateCheck
    series: list[DayPoint]  # CHART_DAYS days ending on the digest day, one per day
    ses: SesFigures | None = None  # SES's own figures (bouncehouse.ses), when they were ever pulled

    @property
    def warnings(self) -> list[str]:
        return [w for w in (self.bounce.warning, self.complaint.warning) if w]

    @property
    def unknown_days(self) -> list[date]:
        """The window's days with sends whose count is not known (no Send events behind them)."""
        return [p.day for p in self.series[-RATE_WINDOW_DAYS:] if p.sent and not p.sends_known]

    @property
    def sends_notice(self) -> str | None:
        """Why the 7-day rates are not shown, and what to enable; None when the sends are known."""
        days = self.unknown_days
        if not days:
            return None
        listed = ", ".join(day.isoformat() for day in days)
        return (
            f"Sends are not known for {listed}: SES reported only feedback (bounces, complaints, deliveries) "
            "for some of those days' messages, not the sends themselves, so the number sent is short and a "
            f"bounce or complaint rate would overstate it. To see the 7-day rates against SES's limits, "
            f"{SENDS_UNKNOWN_ADVICE}."
        )


@dataclass(frozen=True)
class RouteDay:
    """One route's figures for the digest day."""

    route: Route
    rows: list[DigestRow]
    sent: int  # recipients of this route's messages sent on the day (any outcome)
    delivered: int  # of those, delivered so far

    @property
    def hard_bounced(self) -> int:
        return sum(1 for row in self.rows if row.status == "hard_bounced")

    @property
    def soft_bounced(self) -> int:
        return sum(1 for row in self.rows if row.status == "soft_bounced")

    @property
    def complained(self) -> int:
        return sum(1 for row in self.rows if row.status == "complained")


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str
    suppressed_at: datetime | None
    expires_at: datetime | None

    def describe(self) -> str:
        since = f" since {self.suppressed_at:%Y-%m-%d %H:%M} UTC" if self.suppressed_at else ""
        until = f", until {self.expires_at:%Y-%m-%d}" if self.expires_at else ""
        reason = self.reason.replace("_", " ")
        return f"on the suppression list ({reason}{since}{until})"


@dataclass
class DigestData:
    day: date
    account: AccountStats
    routes: list[RouteDay] = field(default_factory=list)


def format_rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    percent = value * 100
    return f"{percent:.2f}%" if percent < 1 else f"{percent:.1f}%"


def digest_day(now: datetime) -> date:
    """The UTC day a digest run at ``now`` reports on: the day before."""
    return (now - timedelta(days=1)).date()


def require_marts(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    found = {name: find_relation(con, name) for name in MARTS}
    missing = [name for name, relation in found.items() if relation is None]
    if missing:
        raise ConfigError(
            f"the warehouse has no {', '.join(missing)}: run `python -m bouncehouse transform` before the digest"
        )
    return {name: relation for name, relation in found.items() if relation}


def _tags(value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        return {}
    return {
        str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs]) if v is not None]
        for k, vs in parsed.items()
    }


def load_digest_data(con: duckdb.DuckDBPyConnection, routes: Sequence[Route], day: date) -> DigestData:
    marts = require_marts(con)
    next_day = day + timedelta(days=1)
    listed = con.execute(
        f"""
        select recipient, final_status, status_at, bounce_type, bounce_sub_type, diagnostic_code,
               complaint_feedback_type, sent_at, subject, message_id, to_json(tags)::varchar
        from {marts["message_status"]}
        where final_status in ?
          and status_at >= ? and status_at < ?
          and not is_digest
        order by final_status, status_at, recipient, message_id
        """,
        [list(LISTED_STATUSES), day, next_day],
    ).fetchall()
    per_route: dict[str, list[DigestRow]] = {route.name: [] for route in routes}
    for values in listed:
        row = DigestRow(*values[:10], tags=_tags(values[10]))
        for route in routes_for(row.tags, routes):
            per_route[route.name].append(row)

    # Sends of the day, grouped by tag set so routing runs once per distinct tag set, not per row.
    # The digest's own emails (is_digest) are not tracked sends: neither listed nor counted.
    sent_by_tags = con.execute(
        f"""
        select to_json(tags)::varchar, count(*), count_if(final_status = 'delivered')
        from {marts["message_status"]}
        where sent_at >= ? and sent_at < ?
          and not is_digest
        group by all
        """,
        [day, next_day],
    ).fetchall()
    sent: dict[str, list[int]] = {route.name: [0, 0] for route in routes}
    for tags_json, recipients, delivered in sent_by_tags:
        for route in routes_for(_tags(tags_json), routes):
            sent[route.name][0] += recipients
            sent[route.name][1] += delivered

    return DigestData(
        day=day,
        account=with_ses_figures(con, load_account_stats(con, day, marts["deliverability_daily"])),
        routes=[
            RouteDay(
                route=route,
                rows=per_route[route.name],
                sent=sent[route.name][0],
                delivered=sent[route.name][1],
            )
            for route in routes
        ],
    )


def _daily_columns(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[str, str]:
    """deliverability_daily's bounce-rate numerator and sends-known flag; a mart built before they
    existed counts every hard bounce and takes its sends as known."""
    columns = {row[0] for row in con.execute(f"select * from {relation} limit 0").description}
    hard = "rate_hard_bounced" if "rate_hard_bounced" in columns else "hard_bounced"
    known = "sends_known" if "sends_known" in columns else "true"
    return hard, known


def _day_point(day: date, found: dict[date, tuple[Any, ...]]) -> DayPoint:
    """One day's figures; a day whose sends are not known has no rate (a bounce-only day reads 100%)."""
    sent, hard, complained, known = found.get(day, (0, 0, 0, True))
    sent, hard, complained = int(sent), int(hard), int(complained)
    rated = bool(sent) and bool(known)
    return DayPoint(
        day=day,
        sent=sent,
        hard_bounced=hard,
        complained=complained,
        bounce_rate=hard / sent if rated else None,
        complaint_rate=complained / sent if rated else None,
        sends_known=bool(known),
    )


def load_account_stats(con: duckdb.DuckDBPyConnection, day: date, relation: str) -> AccountStats:
    first = day - timedelta(days=CHART_DAYS - 1)
    hard_column, known_column = _daily_columns(con, relation)
    found = {
        row[0]: row[1:]
        for row in con.execute(
            f"""
            select day::date, coalesce(sum(sent), 0), coalesce(sum({hard_column}), 0),
                   coalesce(sum(complained), 0), coalesce(bool_and({known_column}), true)
            from {relation}
            where day::date between ? and ?
            group by 1
            """,
            [first, day],
        ).fetchall()
    }
    series = [_day_point(first + timedelta(days=offset), found) for offset in range(CHART_DAYS)]
    window = series[-RATE_WINDOW_DAYS:]
    window_sent = sum(p.sent for p in window)
    window_hard = sum(p.hard_bounced for p in window)
    window_complained = sum(p.complained for p in window)
    # A rate over sends that are not all known would overstate (a bounce-only day reads 100%).
    known = all(p.sends_known for p in window if p.sent)
    rated = bool(window_sent) and known
    return AccountStats(
        day=day,
        window_start=window[0].day,
        window_sent=window_sent,
        window_hard_bounced=window_hard,
        window_complained=window_complained,
        bounce=RateCheck(
            "Bounce rate",
            window_hard / window_sent if rated else None,
            BOUNCE_REVIEW,
            BOUNCE_PAUSE,
            sends_known=known,
        ),
        complaint=RateCheck(
            "Complaint rate",
            window_complained / window_sent if rated else None,
            COMPLAINT_REVIEW,
            COMPLAINT_PAUSE,
            sends_known=known,
        ),
        series=series,
    )


def load_suppressions(
    con: duckdb.DuckDBPyConnection, addresses: Iterable[str], now: datetime
) -> dict[str, Suppression]:
    """The admins among ``addresses`` that are on the suppression list (and not expired at ``now``)."""
    addresses = sorted(set(addresses))
    if not addresses:
        return {}
    relation = require_marts(con)["suppression_list"]
    rows = con.execute(
        f"""
        select lower(trim(email)), reason, suppressed_at, expires_at
        from {relation}
        where lower(trim(email)) in ? and (expires_at is null or expires_at > ?)
        """,
        [addresses, now],
    ).fetchall()
    return {row[0]: Suppression(*row) for row in rows}


def with_ses_figures(con: duckdb.DuckDBPyConnection, account: AccountStats) -> AccountStats:
    """The account's figures with SES's own beside them (SES in the loop; none until first pulled)."""
    return replace(account, ses=load_ses_figures(con, account.day))
