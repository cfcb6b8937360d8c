"""SES's own figures over real HTTP (moto's CloudWatch and SES v1), into raw tables and into the digest."""

from __future__ import annotations

import email
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import duckdb
from bouncehouse.ses.pacing import PacedCaller, utcnow
from bouncehouse.ses.reputation import load_ses_figures, pull_reputation
from ses_scenario import AS_OF

REPO_ROOT = Path(__file__).resolve().parents[2]


def _seed_moto(moto: Any) -> None:
    cloudwatch, ses = moto.client("cloudwatch"), moto.client("ses")
    for hours, bounce, complaint in ((30, 0.021, 0.0004), (8, 0.0312, 0.0006)):
        at = (AS_OF - timedelta(hours=hours)).replace(tzinfo=UTC)
        cloudwatch.put_metric_data(
            Namespace="AWS/SES",
            MetricData=[
                {"MetricName": "Reputation.BounceRate", "Value": bounce, "Timestamp": at},
                {"MetricName": "Reputation.ComplaintRate", "Value": complaint, "Timestamp": at},
            ],
        )
    ses.verify_email_identity(EmailAddress="app@acme.example")
    for n in range(3):
        ses.send_email(
            Source="app@acme.example",
            Destination={"ToAddresses": [f"user{n}@example.com"]},
            Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hello"}}},
        )


def test_ses_figures_land_in_raw_tables_once_a_day_and_the_digest_shows_them_beside_ours(
    settings: Any, moto: Any
) -> None:
    _seed_moto(moto)
    caller = PacedCaller(interval=0.001)
    counts = pull_reputation(settings, moto.client("cloudwatch"), moto.client("ses"), caller=caller)
    assert counts["pulled"] and counts["metric_points"] == 4 and caller.requests == 4
    again = pull_reputation(settings, moto.client("cloudwatch"), moto.client("ses"), caller=caller)
    assert again == {"pulled": False, "reason": "already pulled today"} and caller.requests == 4

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        metrics = con.execute(
            "select metric, period_start, average from raw.ses_reputation_metrics order by 1, 2"
        ).fetchall()
        sent = con.execute("select sum(delivery_attempts) from raw.ses_send_statistics").fetchone()[0]
        quota = con.execute("select max_24_hour_send, sent_last_24_hours from raw.ses_send_quota").fetchall()
        # Today's window holds moto's sends; the digest day (before AS_OF) holds the reputation points.
        today = load_ses_figures(con, utcnow().date())
    assert [(m, round(v, 4)) for m, _, v in metrics] == [
        ("Reputation.BounceRate", 0.021),
        ("Reputation.BounceRate", 0.0312),
        ("Reputation.ComplaintRate", 0.0004),
        ("Reputation.ComplaintRate", 0.0006),
    ]
    assert sent == 3 and quota == [(200.0, 3.0)]
    assert today is not None and today.window_attempts == 3 and today.window_bounce_rate == 0

    from bouncehouse.digest import send_digests

    digest_settings = settings.with_overrides(routes=REPO_ROOT / "include" / "admin_routes.yml")
    assert send_digests(digest_settings)["sent"] >= 1
    emails = sorted(Path(digest_settings.outbox).glob("*.eml"))
    message = email.message_from_bytes(emails[0].read_bytes())
    text, html = (
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    )
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        ours = con.execute(
            "select sum(hard_bounced) / sum(sent) from deliverability_daily where day::date between ? and ?",
            [AS_OF.date() - timedelta(days=7), AS_OF.date() - timedelta(days=1)],
        ).fetchone()[0]
    from bouncehouse.digest.data import format_rate

    line = next(row for row in text.splitlines() if row.strip().startswith("Bounce rate: ours"))
    assert f"ours {format_rate(ours)}" in line and "SES reputation 3.1%" in line, line
    assert "Complaint rate: ours" in text and "SES reputation 0.06%" in text
    assert "SES reviews and pauses the account by its own reputation metrics" in text
    assert "SES&#x27;s own figures beside ours" in html or "SES's own figures beside ours" in html
    assert "<b>3.1%</b>" in html


def test_the_digest_says_when_ses_figures_were_never_pulled(settings: Any) -> None:
    from bouncehouse.digest import send_digests

    digest_settings = settings.with_overrides(routes=REPO_ROOT / "include" / "admin_routes.yml")
    send_digests(digest_settings)
    text = sorted(Path(digest_settings.outbox).glob("*.eml"))[0].read_text()
    assert "SES's own figures: not pulled yet (see BOUNCEHOUSE_SES_SYNC)." in text
