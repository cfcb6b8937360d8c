"""SES's own figures: what SES judges the account by, pulled once a UTC day into raw tables.

- CloudWatch ``AWS/SES`` ``Reputation.BounceRate`` and ``Reputation.ComplaintRate`` (hourly, last 14 days)
  into ``raw.ses_reputation_metrics``. These are the rates SES's review (5% / 0.1%) and pause
  (10% / 0.5%) levels apply to.
- SES v1 ``GetSendStatistics`` (15-minute intervals, last 14 days) into ``raw.ses_send_statistics``.
- SES v1 ``GetSendQuota`` into ``raw.ses_send_quota``.

``load_ses_figures`` reads them back for the digest, beside Bouncehouse's own 7-day rates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from bouncehouse.config import Settings
from bouncehouse.ses.pacing import PacedCaller, naive_utc, paced_caller, utcnow
from bouncehouse.ses.schema import ensure_ses_schema
from bouncehouse.warehouse import transaction, writer

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SES"
BOUNCE_METRIC, COMPLAINT_METRIC = "Reputation.BounceRate", "Reputation.ComplaintRate"
PERIOD_SECONDS = 3600
PULL_DAYS = 14
WINDOW_DAYS = 7


def pull_due(con: duckdb.DuckDBPyConnection, now: datetime) -> bool:
    """Once per UTC day: True unless the figures were already pulled today."""
    last = con.execute("select max(pulled_at) from raw.ses_send_quota").fetchone()[0]
    return last is None or last.date() < now.date()


def pull_reputation(
    settings: Settings,
    cloudwatch: Any,
    ses: Any,
    *,
    caller: PacedCaller | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Pull SES's reputation metrics, send statistics and quota (skipped when already pulled today)."""
    caller = caller or paced_caller(settings)
    now, window_end = utcnow(), settings.now()  # CloudWatch's window ends at "now" (--as-of, for backfills)
    with writer(settings) as con:
        ensure_ses_schema(con)
        if not force and not pull_due(con, now):
            return {"pulled": False, "reason": "already pulled today"}
        metrics = []
        for metric in (BOUNCE_METRIC, COMPLAINT_METRIC):
            answer = caller(
                cloudwatch.get_metric_statistics,
                Namespace=NAMESPACE,
                MetricName=metric,
                StartTime=window_end - timedelta(days=PULL_DAYS),
                EndTime=window_end,
                Period=PERIOD_SECONDS,
                Statistics=["Average", "Maximum"],
            )
            metrics += [
                (metric, naive_utc(p["Timestamp"]), PERIOD_SECONDS, p.get("Average"), p.get("Maximum"), now)
                for p in answer.get("Datapoints", [])
            ]
        points = caller(ses.get_send_statistics).get("SendDataPoints", [])
        statistics = [
            (naive_utc(p["Timestamp"]), p.get("DeliveryAttempts", 0), p.get("Bounces", 0), p.get("Complaints", 0),
             p.get("Rejects", 0), now)
            for p in points
        ]  # fmt: skip
        quota = caller(ses.get_send_quota)
        with transaction(con):
            if metrics:
                con.executemany(
                    "insert or replace into raw.ses_reputation_metrics values (?, ?, ?, ?, ?, ?)", metrics
                )
            if statistics:
                con.executemany(
                    "insert or replace into raw.ses_send_statistics values (?, ?, ?, ?, ?, ?)", statistics
                )
            con.execute(
                "insert or replace into raw.ses_send_quota values (?, ?, ?, ?)",
                [now, quota.get("Max24HourSend"), quota.get("MaxSendRate"), quota.get("SentLast24Hours")],
            )
    log.info(
        "ses figures: %d metric points, %d send intervals, quota %s", len(metrics), len(statistics), quota
    )
    return {
        "pulled": True,
        "metric_points": len(metrics),
        "send_intervals": len(statistics),
        "requests": caller.requests,
    }


@dataclass(frozen=True)
class SesFigures:
    """SES's own view of the account, for the digest: the reputation rates it judges the account by,
    and its send statistics over the digest's 7-day window."""

    bounce_rate: float | None  # latest Reputation.BounceRate (a fraction) at or before the day's end
    bounce_rate_at: datetime | None
    complaint_rate: float | None
    complaint_rate_at: datetime | None
    window_attempts: int
    window_bounces: int
    window_complaints: int
    max_24_hour_send: float | None
    sent_last_24_hours: float | None

    @property
    def window_bounce_rate(self) -> float | None:
        return self.window_bounces / self.window_attempts if self.window_attempts else None

    @property
    def window_complaint_rate(self) -> float | None:
        return self.window_complaints / self.window_attempts if self.window_attempts else None


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw'"
        " and table_name in ('ses_reputation_metrics', 'ses_send_statistics', 'ses_send_quota')"
    ).fetchone()[0]
    return found == 3


def latest_metric(
    con: duckdb.DuckDBPyConnection, metric: str, before: datetime
) -> tuple[float | None, datetime | None]:
    row = con.execute(
        "select average, period_start from raw.ses_reputation_metrics"
        " where metric = ? and period_start < ? order by period_start desc limit 1",
        [metric, before],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def load_ses_figures(con: duckdb.DuckDBPyConnection, day: date) -> SesFigures | None:
    """SES's figures up to the end of ``day``; None when none were ever pulled."""
    if not _has_tables(con):
        return None
    if con.execute("select count(*) from raw.ses_send_quota").fetchone()[0] == 0:
        return None
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    bounce, bounce_at = latest_metric(con, BOUNCE_METRIC, end)
    complaint, complaint_at = latest_metric(con, COMPLAINT_METRIC, end)
    attempts, bounces, complaints = con.execute(
        "select coalesce(sum(delivery_attempts), 0), coalesce(sum(bounces), 0), coalesce(sum(complaints), 0)"
        " from raw.ses_send_statistics where interval_start >= ? and interval_start < ?",
        [end - timedelta(days=WINDOW_DAYS), end],
    ).fetchone()
    quota = con.execute(
        "select max_24_hour_send, sent_last_24_hours from raw.ses_send_quota"
        " where pulled_at < ? order by pulled_at desc limit 1",
        [end + timedelta(days=1)],
    ).fetchone() or (None, None)
    return SesFigures(
        bounce_rate=bounce,
        bounce_rate_at=bounce_at,
        complaint_rate=complaint,
        complaint_rate_at=complaint_at,
        window_attempts=int(attempts),
        window_bounces=int(bounces),
        window_complaints=int(complaints),
        max_24_hour_send=quota[0],
        sent_last_24_hours=quota[1],
    )
