"""The marts analysts read beside deliverability_daily (issue 15): built by transform from SES events,
each checked on one row worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bouncehouse.transform import transform
from ses_events import Message, load, settings_for
from warehouse_reads import fetch

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 2, 9, 0)
LOADED = datetime(2026, 11, 5, 0, 0)
AS_OF = datetime(2026, 11, 10, 0, 0)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module (the tests only read). A newsletter to four recipients at Google's two domains and one unlisted domain (tags campaign
    a and b, user_type trial), and the digest's own email to an admin at gmail.com, which bounces."""
    news = Message(
        "news",
        ["ann@gmail.com", "bob@googlemail.com", "cat@gmail.com", "dan@corp.example"],
        T0,
        tags={"campaign": ["a", "b"], "user_type": ["trial"]},
    )
    digest = Message("digest", ["admin@gmail.com"], T0, tags={"bouncehouse_message": ["digest"]})
    events = [
        news.send(),
        news.delivery(minutes(1), "ann@gmail.com", "cat@gmail.com", "dan@corp.example"),
        news.bounce(minutes(2), "bob@googlemail.com", diagnostic="smtp; 550 5.1.1 no such user"),
        news.complaint(minutes(30), "cat@gmail.com"),
        news.open(minutes(40)),
        digest.send(),
        digest.bounce(minutes(3), "admin@gmail.com"),
    ]
    warehouse_path = tmp_path_factory.mktemp("warehouse") / "bouncehouse.duckdb"
    load(warehouse_path, events, LOADED)
    transform(settings_for(warehouse_path, AS_OF))
    return warehouse_path


def test_deliverability_by_domain_daily_counts_google_per_domain_without_the_digest(built: Path) -> None:
    rows = fetch(
        built,
        "select domain, provider, sent, delivered, hard_bounced, complained, bounce_rate, complaint_rate "
        "from deliverability_by_domain_daily where day = '2026-11-02' order by domain",
    )
    assert rows == [
        ("corp.example", "other", 1, 1, 0, 0, 0.0, 0.0),
        # ann delivered, cat complained; the digest's admin@gmail.com bounce is not here.
        ("gmail.com", "Google", 2, 1, 0, 1, 0.0, 0.5),
        ("googlemail.com", "Google", 1, 0, 1, 0, 1.0, 0.0),
    ]


def test_deliverability_by_tag_daily_counts_the_newsletter_under_each_campaign(built: Path) -> None:
    rows = fetch(
        built,
        "select tag, value, sent, delivered, hard_bounced, complained, bounce_rate "
        "from deliverability_by_tag_daily where day = '2026-11-02' and tag in ('campaign', 'user_type') "
        "order by tag, value",
    )
    # Four recipients: ann and dan delivered, bob hard-bounced, cat complained; the digest is left out.
    assert rows == [
        ("campaign", "a", 4, 2, 1, 1, 0.25),
        ("campaign", "b", 4, 2, 1, 1, 0.25),
        ("user_type", "trial", 4, 2, 1, 1, 0.25),
    ]
    (configuration_set,) = fetch(
        built,
        "select sent from deliverability_by_tag_daily where tag = 'ses:configuration-set' and value = 'tracking'",
    )
    assert configuration_set == (4,)


def test_bounce_diagnostics_says_what_bob_bounced_with(built: Path) -> None:
    rows = fetch(
        built,
        "select smtp_status, bounce_type, bounce_sub_type, bounced, bounced_recipients, first_seen_at, "
        "last_seen_at, example_diagnostic_codes from bounce_diagnostics",
    )
    # Only bob's bounce: the digest admin's bounce (5.1.1 too) is left out.
    assert rows == [
        ("5.1.1", "Permanent", "General", 1, 1, minutes(2), minutes(2), ["smtp; 550 5.1.1 no such user"]),
    ]


def test_engagement_daily_counts_the_open_for_delivered_recipients_only(built: Path) -> None:
    (row,) = fetch(
        built,
        "select delivered, opened, clicked, open_rate, click_rate from engagement_daily "
        "where day = '2026-11-02' and tag = 'campaign' and value = 'a'",
    )
    # ann, cat (she complained, but was delivered to) and dan; bob bounced, so the open is not his.
    assert row == (3, 3, 0, 1.0, 0.0)
