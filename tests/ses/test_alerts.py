"""Alerts at once: a 7-day rate (ours or SES's) near SES's review level, or a landing gone quiet, is
told once per crossing and day, by email over real SMTP (aiosmtpd on loopback)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import duckdb
from bouncehouse.digest.transports import SmtpSettings
from bouncehouse.ses.alerts import check_alerts, smtp_sender
from ses_scenario import AS_OF


def our_rates(settings: Any) -> tuple[int, float, float]:
    first = settings.now().date() - timedelta(days=6)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        sent, hard, complained = con.execute(
            "select sum(sent), sum(hard_bounced), sum(complained) from deliverability_daily"
            " where day::date between ? and ?",
            [first, settings.now().date()],
        ).fetchone()
    return int(sent), hard / sent, complained / sent


def test_a_rate_crossing_is_told_once_a_day_by_email_and_a_small_volume_pages_nobody(
    settings: Any, smtp_server: Any
) -> None:
    send = smtp_sender(SmtpSettings(host=smtp_server.host, port=smtp_server.port))
    settings = settings.with_overrides(alert_email="ops@example.com, oncall@example.com", alert_min_sends=100)
    sent, bounce, complaint = our_rates(settings)
    expected = {
        key
        for key, rate, review in (
            ("ours.bounce_rate", bounce, 0.05),
            ("ours.complaint_rate", complaint, 0.001),
        )
        if rate >= 0.8 * review
    }
    assert sent >= 100 and expected == {"ours.complaint_rate"}, (sent, bounce, complaint)
    # SES's own bounce rate, pulled earlier, is at 90% of its review level.
    with duckdb.connect(str(settings.warehouse)) as con:
        from bouncehouse.ses.schema import ensure_ses_schema

        ensure_ses_schema(con)
        con.execute(
            "insert into raw.ses_reputation_metrics values ('Reputation.BounceRate', ?, 3600, 0.045, 0.045, ?)",
            [AS_OF - timedelta(hours=3), AS_OF],
        )

    first = check_alerts(settings, send)
    assert set(first["raised"]) == expected | {"ses.bounce_rate"} and len(first["new"]) == 2
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert sorted(smtp_server.envelopes[0][1]) == ["oncall@example.com", "ops@example.com"]
    assert "ours.complaint_rate" in mail["Subject"] and "ses.bounce_rate" in mail["Subject"]
    assert "4.5%" in mail.get_payload() and "Reputation.BounceRate" in mail.get_payload()

    again = check_alerts(settings, send)
    assert again["new"] == [] and again["already_told_today"] == 2 and len(smtp_server.messages) == 1

    # The next day, still over: told again, once.
    tomorrow = settings.with_overrides(as_of=AS_OF + timedelta(days=1))
    assert "ours.complaint_rate" in check_alerts(tomorrow, send)["raised"]
    check_alerts(tomorrow, send)
    assert len(smtp_server.messages) == 2

    floor = settings.with_overrides(alert_min_sends=sent + 1, as_of=AS_OF + timedelta(days=2))
    assert [k for k in check_alerts(floor, send)["raised"] if k.startswith("ours.")] == []


def test_a_quiet_landing_is_told_once(settings: Any, smtp_server: Any) -> None:
    send = smtp_sender(SmtpSettings(host=smtp_server.host, port=smtp_server.port))
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        last = con.execute(
            "select max(coalesce(last_modified, loaded_at)) from raw.ingested_objects"
        ).fetchone()[0]
    settings = settings.with_overrides(alert_email="ops@example.com", alert_stale_hours=6.0)

    fresh = check_alerts(settings.with_overrides(as_of=last + timedelta(hours=5)), send)
    assert "landing.stale" not in fresh["raised"]
    # Both stale checks fall on one UTC day whatever the hour the landing was written at: a check
    # after midnight is a new day, and a new day is told again.
    stale_at = last + timedelta(hours=7)
    if (stale_at + timedelta(hours=1)).date() != stale_at.date():
        stale_at = datetime.combine(stale_at.date() + timedelta(days=1), time())
    stale = settings.with_overrides(as_of=stale_at)
    assert "landing.stale" in check_alerts(stale, send)["raised"]
    assert check_alerts(stale.with_overrides(as_of=stale_at + timedelta(hours=1)), send)["new"] == []
    assert len(smtp_server.messages) == 1 and "landing.stale" in smtp_server.messages[0]["Subject"]
    assert "No new object has landed for 6 hours" in smtp_server.messages[0].get_payload()


def test_without_an_alert_address_the_alert_is_logged_and_still_told_once(settings: Any) -> None:
    settings = settings.with_overrides(alert_min_sends=100)
    first = check_alerts(settings)
    assert first["new"] and first["told"].startswith("the log only")
    assert check_alerts(settings)["new"] == []
