"""What a digest says, read from the dbt marts (message_status, suppression_list, deliverability_daily).

Each route's own figures (its 7-day rates, its worst domains, its newly suppressed addresses) come from
message_status and suppression_list, grouped by the routes a message's tags take it to; the account's
come from deliverability_daily.

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
TREND_DAYS = 2 * RATE_WINDOW_DAYS  # this window and the week before
CHART_DAYS = 30
# A domain's rate for one day ranks only from this many recipients up: one bounce on a one-send domain
# reads 100% and says nothing.
MIN_DOMAIN_SENDS = 20
WORST_DOMAINS = 5
# SES's bounce-rate numerator over message_status rows, as dbt's ses_rate_hard_bounced macro counts it
# (dbt/macros/recipient_counts.sql; tests check a route's figures against deliverability_daily's).
SES_RATE_HARD_BOUNCED = """count_if(
    final_status = 'hard_bounced'
    and lower(trim(coalesce(bounce_sub_type, ''))) <> 'onaccountsuppressionlist'
    and not coalesce(hard_by_smtp_status, false)
)"""
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
class Window:
    """Seven days' sums and rates (the account's or one route's). No rate when nothing was sent, or when
    any day with sends has sends that are not known: a bounce-only day would read 100%."""

    start: date
    end: date
    sent: int
    hard_bounced: int
    complained: int
    unknown_days: tuple[date, ...]

    @property
    def sends_known(self) -> bool:
        return not self.unknown_days

    def _rate(self, count: int) -> float | None:
        return count / self.sent if self.sent and self.sends_known else None

    @property
    def bounce_rate(self) -> float | None:
        return self._rate(self.hard_bounced)

    @property
    def complaint_rate(self) -> float | None:
        return self._rate(self.complained)

    @property
    def checks(self) -> tuple[RateCheck, RateCheck]:
        """The bounce and complaint rates against SES's review and pause levels."""
        return (
            RateCheck("Bounce rate", self.bounce_rate, BOUNCE_REVIEW, BOUNCE_PAUSE, self.sends_known),
            RateCheck(
                "Complaint rate", self.complaint_rate, COMPLAINT_REVIEW, COMPLAINT_PAUSE, self.sends_known
            ),
        )


def window_of(series: Sequence[DayPoint], weeks_back: int = 0) -> Window:
    """The RATE_WINDOW_DAYS days of ``series`` (one point a day, oldest first) ending ``weeks_back`` weeks
    before its last day."""
    end = len(series) - weeks_back * RATE_WINDOW_DAYS
    days = list(series[max(end - RATE_WINDOW_DAYS, 0) : max(end, 0)])
    if not days:
        raise ValueError(f"a series of {len(series)} days has no window {weeks_back} week(s) back")
    return Window(
        start=days[0].day,
        end=days[-1].day,
        sent=sum(p.sent for p in days),
        hard_bounced=sum(p.hard_bounced for p in days),
        complained=sum(p.complained for p in days),
        unknown_days=tuple(p.day for p in days if p.sent and not p.sends_known),
    )


@dataclass(frozen=True)
class Trend:
    """A 7-day rate against the same rate over the 7 days before (on the same sends-known rule)."""

    label: str
    current: float | None
    previous: float | None
    unknown_days: tuple[date, ...]  # days of either window whose sends are not known

    @property
    def direction(self) -> str | None:
        """up, down or unchanged; None when there is nothing to compare."""
        if self.unknown_days or self.current is None or self.previous is None:
            return None
        if abs(self.current - self.previous) < 1e-12:
            return "unchanged"
        return "up" if self.current > self.previous else "down"

    @property
    def change(self) -> str:
        """The difference in percentage points, signed ("+1.20 pts"); "" when there is none to show."""
        if self.direction in (None, "unchanged"):
            return ""
        assert self.current is not None and self.previous is not None
        points = (self.current - self.previous) * 100
        if abs(points) < 0.005:  # would read +0.00
            return f"{'+' if points > 0 else '-'}<0.01 pts"
        return f"{points:+.2f} pts" if abs(points) < 1 else f"{points:+.1f} pts"

    def describe(self) -> str:
        if self.unknown_days:
            listed = ", ".join(day.isoformat() for day in self.unknown_days)
            return f"no comparison: sends not known for {listed}"
        if self.previous is None:
            return "no comparison: nothing sent in the 7 days before"
        if self.current is None:
            return "no comparison: nothing sent in the last 7 days"
        if self.direction == "unchanged":
            return f"unchanged at {format_rate(self.current)}"
        return f"{self.direction} from {format_rate(self.previous)} to {format_rate(self.current)} ({self.change})"


def trends_between(current: Window, previous: Window) -> tuple[Trend, Trend]:
    """The bounce and complaint rates of ``current`` against those of ``previous``."""
    unknown = previous.unknown_days + current.unknown_days
    return (
        Trend("Bounce rate", current.bounce_rate, previous.bounce_rate, unknown),
        Trend("Complaint rate", current.complaint_rate, previous.complaint_rate, unknown),
    )


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
    def window(self) -> Window:
        """The rate window's sums, as the rates above were computed from them."""
        return Window(
            self.window_start, self.day, self.window_sent, self.window_hard_bounced, self.window_complained,
            tuple(self.unknown_days),
        )  # fmt: skip

    @property
    def previous_window(self) -> Window:
        """The 7 days before the rate window."""
        return window_of(self.series, 1)

    @property
    def trends(self) -> tuple[Trend, Trend]:
        return trends_between(self.window, self.previous_window)

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
    # TREND_DAYS days ending on the digest day, one per day: the route's own rates and their trend.
    series: tuple[DayPoint, ...] = ()
    domains: tuple[DomainRate, ...] = ()  # the route's recipient domains of the day's sends
    # Addresses whose suppression started on the digest day, by the message that caused it.
    new_suppressions: tuple[Suppression, ...] = ()

    @property
    def window(self) -> Window | None:
        return window_of(self.series) if self.series else None

    @property
    def previous_window(self) -> Window | None:
        return window_of(self.series, 1) if len(self.series) >= TREND_DAYS else None

    @property
    def trends(self) -> tuple[Trend, Trend] | None:
        if len(self.series) < TREND_DAYS:
            return None
        return trends_between(window_of(self.series), window_of(self.series, 1))

    @property
    def day_sends_known(self) -> bool:
        """Whether the digest day's sends are known for this route (else no domain has a rate)."""
        return not self.series or not self.series[-1].sent or self.series[-1].sends_known

    @property
    def worst_domains(self) -> list[DomainRate]:
        """Up to WORST_DOMAINS domains with MIN_DOMAIN_SENDS sends or more that bounced or complained,
        the worst first: by the rate nearest (or furthest over) its SES review level."""
        if not self.day_sends_known:
            return []
        ranked = [d for d in self.domains if d.sent >= MIN_DOMAIN_SENDS and (d.hard_bounced or d.complained)]
        ranked.sort(key=lambda d: (-d.severity, -d.sent, d.domain))
        return ranked[:WORST_DOMAINS]

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
class DomainRate:
    """One recipient domain's figures among a route's recipients sent on the digest day (rates as
    deliverability_daily's and deliverability_by_domain_daily's)."""

    domain: str
    sent: int
    hard_bounced: int  # what SES's bounce rate counts
    complained: int

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounced / self.sent

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.sent

    @property
    def severity(self) -> float:
        """The worse of the two rates as a share of its SES review level (complaint levels are 50x lower)."""
        return max(self.bounce_rate / BOUNCE_REVIEW, self.complaint_rate / COMPLAINT_REVIEW)


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
    account = with_ses_figures(con, load_account_stats(con, day, marts["deliverability_daily"]))
    rows = _listed_rows(con, marts["message_status"], routes, day)
    series, delivered = _route_series(con, marts["message_status"], routes, day, account.series)
    domains = _route_domains(con, marts["message_status"], routes, day)
    suppressed = _new_suppressions(con, marts, routes, day)
    return DigestData(
        day=day,
        account=account,
        routes=[
            RouteDay(
                route=route,
                rows=rows[route.name],
                sent=series[route.name][-1].sent,
                delivered=delivered[route.name],
                series=tuple(series[route.name]),
                domains=tuple(domains[route.name]),
                new_suppressions=tuple(suppressed[route.name]),
            )
            for route in routes
        ],
    )


def _listed_rows(
    con: duckdb.DuckDBPyConnection, relation: str, routes: Sequence[Route], day: date
) -> dict[str, list[DigestRow]]:
    """The day's bounced and complained recipients (by status time), per route."""
    listed = con.execute(
        f"""
        select recipient, final_status, status_at, bounce_type, bounce_sub_type, diagnostic_code,
               complaint_feedback_type, sent_at, subject, message_id, to_json(tags)::varchar
        from {relation}
        where final_status in ?
          and status_at >= ? and status_at < ?
          and not is_digest
        order by final_status, status_at, recipient, message_id
        """,
        [list(LISTED_STATUSES), day, day + timedelta(days=1)],
    ).fetchall()
    per_route: dict[str, list[DigestRow]] = {route.name: [] for route in routes}
    for values in listed:
        row = DigestRow(*values[:10], tags=_tags(values[10]))
        for route in routes_for(row.tags, routes):
            per_route[route.name].append(row)
    return per_route


def _route_series(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    routes: Sequence[Route],
    day: date,
    account_series: Sequence[DayPoint],
) -> tuple[dict[str, list[DayPoint]], dict[str, int]]:
    """Each route's TREND_DAYS days of sends (by send day, as deliverability_daily), and its recipients of
    the digest day delivered so far.

    A route's day has known sends on deliverability_daily's rule (every recipient had a Send event, or
    deliveries were reported without one), and only when message_status still holds every send of
    the day: prune's counts of dropped sends say nothing of their routes.
    """
    first = day - timedelta(days=TREND_DAYS - 1)
    # Grouped by tag set, so routing runs once per distinct tag set and day, not per row. The digest's own
    # emails (is_digest) are not tracked sends.
    grouped = con.execute(
        f"""
        select sent_at::date, to_json(tags)::varchar, count(*), count_if(final_status = 'delivered'),
               {SES_RATE_HARD_BOUNCED}, count_if(final_status = 'complained'),
               count_if(coalesce(has_send_event, false)),
               count_if(not coalesce(has_send_event, false) and coalesce(delivered, false))
        from {relation}
        where sent_at >= ? and sent_at < ? and not is_digest
        group by all
        """,
        [first, day + timedelta(days=1)],
    ).fetchall()
    sums: dict[tuple[str, date], list[int]] = {}
    visible: dict[date, int] = {}  # the day's recipients message_status still holds, every route
    for sent_day, tags_json, *counts in grouped:
        visible[sent_day] = visible.get(sent_day, 0) + counts[0]
        for route in routes_for(_tags(tags_json), routes):
            totals = sums.setdefault((route.name, sent_day), [0] * len(counts))
            for index, count in enumerate(counts):
                totals[index] += count
    account_sent = {point.day: point.sent for point in account_series}
    series: dict[str, list[DayPoint]] = {}
    for route in routes:
        found = {}
        for offset in range(TREND_DAYS):
            this_day = first + timedelta(days=offset)
            sent, _, hard, complained, with_send, delivered_without_send = sums.get(
                (route.name, this_day), [0] * 6
            )
            whole = visible.get(this_day, 0) >= account_sent.get(this_day, 0)
            known = whole and (with_send == sent or delivered_without_send > 0)
            found[this_day] = (sent, hard, complained, known)
        series[route.name] = [_day_point(d, found) for d in sorted(found)]
    delivered = {route.name: sums.get((route.name, day), [0, 0])[1] for route in routes}
    return series, delivered


def _route_domains(
    con: duckdb.DuckDBPyConnection, relation: str, routes: Sequence[Route], day: date
) -> dict[str, list[DomainRate]]:
    """Each route's recipient domains among the digest day's sends (the domain as
    deliverability_by_domain_daily takes it: the part after the last @)."""
    grouped = con.execute(
        f"""
        select to_json(tags)::varchar, coalesce(regexp_extract(recipient, '@([^@]*)$', 1), ''),
               count(*), {SES_RATE_HARD_BOUNCED}, count_if(final_status = 'complained')
        from {relation}
        where sent_at >= ? and sent_at < ? and not is_digest
        group by all
        """,
        [day, day + timedelta(days=1)],
    ).fetchall()
    sums: dict[str, dict[str, list[int]]] = {route.name: {} for route in routes}
    for tags_json, domain, *counts in grouped:
        for route in routes_for(_tags(tags_json), routes):
            totals = sums[route.name].setdefault(domain, [0, 0, 0])
            for index, count in enumerate(counts):
                totals[index] += count
    return {
        name: [DomainRate(domain, *counts) for domain, counts in sorted(domains.items())]
        for name, domains in sums.items()
    }


def _new_suppressions(
    con: duckdb.DuckDBPyConnection, marts: dict[str, str], routes: Sequence[Route], day: date
) -> dict[str, list[Suppression]]:
    """The addresses whose suppression started on ``day``, per route of the message behind it (a manual
    entry has none, so it goes where an untagged message would: the catch-all route).

    Left out: addresses suppressed through the digest's own emails, and addresses already suppressed
    for good before the day (an earlier hard bounce or complaint) whose strongest reason only changed.
    """
    status = marts["message_status"]
    found = con.execute(
        f"""
        with suppression as (
            select * from {marts["suppression_list"]}
            where suppressed_at >= ? and suppressed_at < ?
        ),
        messages as (
            select message_id, any_value(to_json(tags)::varchar) as tags, bool_or(is_digest) as is_digest
            from {status}
            where message_id in (select last_message_id from suppression)
            group by message_id
        )
        select suppression.email, suppression.reason, suppression.suppressed_at, suppression.expires_at,
               messages.tags
        from suppression
        left join messages on messages.message_id = suppression.last_message_id
        where not coalesce(messages.is_digest, false)
          and not exists (
              select 1 from {status} as earlier
              where earlier.recipient = suppression.email
                and earlier.final_status in ('hard_bounced', 'complained')
                and earlier.status_at < ?
          )
        order by suppression.suppressed_at, suppression.email
        """,
        [day, day + timedelta(days=1), day],
    ).fetchall()
    per_route: dict[str, list[Suppression]] = {route.name: [] for route in routes}
    for email, reason, suppressed_at, expires_at, tags_json in found:
        for route in routes_for(_tags(tags_json), routes):
            per_route[route.name].append(Suppression(email, reason, suppressed_at, expires_at))
    return per_route


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
    window = window_of(series)
    bounce, complaint = window.checks
    return AccountStats(
        day=day,
        window_start=window.start,
        window_sent=window.sent,
        window_hard_bounced=window.hard_bounced,
        window_complained=window.complained,
        bounce=bounce,
        complaint=complaint,
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
