"""transform() on the shapes real SES sends (issue 10): identity notifications that name one recipient of
many, the same feedback reported through both channels, SES's suppression-list bounces, complaints that
name nobody, bounce types in any case, and enhanced status codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bouncehouse.transform import transform
from ses_events import Event, Message, load, settings_for
from warehouse_reads import fetch

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 2, 9, 0)
LOADED = datetime(2026, 11, 5, 0, 0)
AS_OF = datetime(2026, 11, 10, 0, 0)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def statuses(path: Path, message_id: str) -> dict[str, str]:
    rows = fetch(
        path, f"select recipient, final_status from message_status where message_id = '{message_id}'"
    )
    return dict(rows)


def daily(path: Path, day: str) -> dict[str, object]:
    columns = (
        "sent, delivered, hard_bounced, soft_bounced, complained, bounce_rate, sends_source, sends_known"
    )
    (row,) = fetch(path, f"select {columns} from deliverability_daily where day = '{day}'")
    return dict(zip(columns.split(", "), row, strict=True))


def with_bounce(event: Event, **fields: object) -> Event:
    """The event with its bounce object changed (SES's own sub-types and shapes)."""
    payload = json.loads(event.text)
    payload["bounce"].update(fields)
    return Event(event.event_type, event.message_id, event.event_at, payload)


def test_identity_notifications_keep_every_recipient_and_say_sends_are_unknown(warehouse_path: Path) -> None:
    """Identity notifications only (no Send events): a bounce names one of three recipients, a delivery
    another. Every recipient still has a row and the day counts all three; its sends are known because
    Delivery notifications are on (every message draws an event). The next day holds only a bounce
    (Bounce notifications alone): its sends are not known."""
    news = Message("news", ["Ann <ann@ex.com>", "bob@ex.com", "cat@ex.com"], T0, identity=True)
    alert = Message("alert", ["dee@ex.com", "eli@ex.com"], T0 + timedelta(days=1), identity=True)
    load(
        warehouse_path,
        [
            news.bounce(minutes(1), "bob@ex.com"),
            news.delivery(minutes(2), "cat@ex.com"),
            alert.bounce(T0 + timedelta(days=1, minutes=1), "dee@ex.com"),
        ],
        LOADED,
    )

    transform(settings_for(warehouse_path, AS_OF))

    assert statuses(warehouse_path, "news") == {
        "ann@ex.com": "sent",
        "bob@ex.com": "hard_bounced",
        "cat@ex.com": "delivered",
    }
    (ann,) = fetch(
        warehouse_path,
        "select sent_at, status_at, has_send_event from message_status where recipient = 'ann@ex.com'",
    )
    assert ann == (T0, T0, False)
    figures = daily(warehouse_path, "2026-11-02")
    assert (figures["sent"], figures["delivered"], figures["hard_bounced"]) == (3, 1, 1)
    assert (figures["sends_source"], figures["sends_known"]) == ("feedback_only", True)
    bounce_only = daily(warehouse_path, "2026-11-03")
    assert (bounce_only["sent"], bounce_only["hard_bounced"]) == (2, 1)
    assert (bounce_only["sends_source"], bounce_only["sends_known"]) == ("feedback_only", False)

    # An incremental run: a late identity bounce for ann changes her row, the others stay.
    load(warehouse_path, [news.soft_bounce(minutes(30), "ann@ex.com")], LOADED + timedelta(hours=1))
    transform(settings_for(warehouse_path, AS_OF))
    assert statuses(warehouse_path, "news") == {
        "ann@ex.com": "soft_bounced",
        "bob@ex.com": "hard_bounced",
        "cat@ex.com": "delivered",
    }
    assert daily(warehouse_path, "2026-11-02")["sent"] == 3


def test_feedback_reported_through_both_channels_counts_once(warehouse_path: Path) -> None:
    """SES publishes each bounce, complaint and delivery through event publishing and identity
    notifications: two raw events each (different event_ids, the same feedbackId). Raw rows stay; the
    soft-bounce rule, statuses and daily counts see each once: two real soft bounces never suppress."""
    events: list[Event] = []
    for n, day in enumerate((0, 2)):
        published = Message(f"dan{n}", ["dan@ex.com"], T0 + timedelta(days=day))
        notified = Message(f"dan{n}", ["dan@ex.com"], T0 + timedelta(days=day), identity=True)
        bounce_at = T0 + timedelta(days=day, minutes=5)
        events += [published.send(), published.soft_bounce(bounce_at, "dan@ex.com")]
        events += [notified.soft_bounce(bounce_at, "dan@ex.com")]
    published = Message("eve", ["eve@ex.com", "fay@ex.com"], T0)
    notified = Message("eve", ["eve@ex.com", "fay@ex.com"], T0, identity=True)
    events += [published.send()]
    for channel in (published, notified):
        events += [channel.bounce(minutes(1), "eve@ex.com"), channel.delivery(minutes(2), "fay@ex.com")]
    load(warehouse_path, events, LOADED)

    transform(settings_for(warehouse_path, AS_OF))

    assert fetch(warehouse_path, "select count(*) from raw.ses_events where event_type = 'Bounce'") == [(6,)]
    assert fetch(warehouse_path, "select email from suppression_list") == [("eve@ex.com",)]
    assert statuses(warehouse_path, "eve") == {"eve@ex.com": "hard_bounced", "fay@ex.com": "delivered"}
    (tags,) = fetch(warehouse_path, "select tags->>'$.\"ses:configuration-set\"[0]' from message_status "
                    "where recipient = 'eve@ex.com'")  # fmt: skip
    assert tags == ("tracking",), "the copy with tags (event publishing) is the one kept"
    figures = daily(warehouse_path, "2026-11-02")
    assert (figures["sent"], figures["delivered"], figures["hard_bounced"], figures["soft_bounced"]) == (
        3,
        1,
        1,
        1,
    )
    assert (figures["sends_source"], figures["sends_known"]) == ("send_events", True)
    assert figures["bounce_rate"] == pytest.approx(1 / 3)

    # A third real soft bounce within 7 days (reported once) does suppress: 3 real ones.
    third = Message("dan2", ["dan@ex.com"], T0 + timedelta(days=4))
    load(warehouse_path, [third.send(), third.soft_bounce(T0 + timedelta(days=4, minutes=5), "dan@ex.com")],
         LOADED + timedelta(hours=1))  # fmt: skip
    transform(settings_for(warehouse_path, AS_OF))
    assert fetch(warehouse_path, "select email, reason from suppression_list order by 1") == [
        ("dan@ex.com", "soft_bounce"),
        ("eve@ex.com", "hard_bounce"),
    ]


def test_ses_suppression_list_bounces_complaints_naming_nobody_and_odd_types(warehouse_path: Path) -> None:
    """OnAccountSuppressionList and Suppressed bounces are hard and suppress, but only Suppressed counts
    toward the bounce rate (as AWS says). A complaint with complaintSubType OnAccountSuppressionList and
    no complainedRecipients names nobody: no null-recipient row, its recipient keeps its status. Bounce
    types in another case are read case-insensitively, kept as sent; the SMTP code is carried."""
    m = Message("m1", ["acct@ex.com", "glob@ex.com", "odd@ex.com", "ok@ex.com"], T0)
    quiet = Message("m2", ["quiet@ex.com"], T0)
    complaint = quiet.complaint(minutes(3))
    complaint_payload = json.loads(complaint.text)
    complaint_payload["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    events = [
        m.send(),
        with_bounce(m.bounce(minutes(1), "acct@ex.com"), bounceSubType="OnAccountSuppressionList"),
        with_bounce(m.bounce(minutes(1.5), "glob@ex.com"), bounceSubType="Suppressed"),
        with_bounce(
            m.soft_bounce(minutes(2), "odd@ex.com"),
            bounceType="permanent",
            bouncedRecipients=[
                {"emailAddress": "odd@ex.com", "diagnosticCode": "smtp; 550-5.1.1 no such user"}
            ],
        ),
        m.delivery(minutes(1), "ok@ex.com"),
        quiet.send(),
        quiet.delivery(minutes(1), "quiet@ex.com"),
        Event("Complaint", "m2", minutes(3), complaint_payload),
    ]
    load(warehouse_path, events, LOADED)

    transform(settings_for(warehouse_path, AS_OF))

    rows = fetch(
        warehouse_path,
        "select recipient, final_status, bounce_type, bounce_sub_type, smtp_status from message_status "
        "where message_id = 'm1' order by recipient",
    )
    assert rows == [
        ("acct@ex.com", "hard_bounced", "Permanent", "OnAccountSuppressionList", "5.1.1"),
        ("glob@ex.com", "hard_bounced", "Permanent", "Suppressed", "5.1.1"),
        ("odd@ex.com", "hard_bounced", "permanent", "MailboxFull", "5.1.1"),
        ("ok@ex.com", "delivered", None, None, None),
    ]
    assert statuses(warehouse_path, "m2") == {"quiet@ex.com": "delivered"}
    assert fetch(warehouse_path, "select count(*) from message_status where recipient is null") == [(0,)]
    assert fetch(warehouse_path, "select email, reason from suppression_list order by 1") == [
        ("acct@ex.com", "hard_bounce"),
        ("glob@ex.com", "hard_bounce"),
        ("odd@ex.com", "hard_bounce"),
    ]
    figures = daily(warehouse_path, "2026-11-02")
    assert (figures["sent"], figures["hard_bounced"], figures["complained"]) == (5, 3, 0)
    # acct@ (OnAccountSuppressionList: SES did not send) is left out of the rate; glob@ and odd@ count.
    assert figures["bounce_rate"] == pytest.approx(2 / 5)
