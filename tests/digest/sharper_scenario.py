"""Two weeks of hand-made SES events for the digest's route figures: each route's 7-day rates and their
trend against the week before, worst domains by rate, addresses newly suppressed on the day (with a
route long enough to be capped and a hostile domain), and a second scenario whose sends are not known.

The expected values in test_digest_sharper.py are worked out by hand from the comments here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from digest_scenario import DAY
from ses_events import Event, Message

GROWTH = {"user_type": ["growth"]}
BULK = {"user_type": ["bulk"]}
CUSTOMER = {"user_type": ["customer"]}
TRIAL = {"user_type": ["trial"]}

ROUTES_YAML = """
routes:
  - name: growth
    admins: [growth-admin@example.com]
    when: {tag: user_type, equals: growth}
  - name: bulk
    admins: [bulk-admin@example.com]
    when: {tag: user_type, equals: bulk}
  - name: everything-else
    admins: [postmaster@example.com]
"""
UNKNOWN_ROUTES_YAML = """
routes:
  - name: customers
    admins: [cs@example.com]
    when: {tag: user_type, equals: customer}
  - name: trials
    admins: [growth@example.com]
    when: {tag: user_type, equals: trial}
"""

# Untrusted all the way: no '>' after the '<', so the address rule keeps it as it is.
HOSTILE_DOMAIN = 'evil&co.example"<svg/onload=alert(1)'
HOSTILE_DIAGNOSTIC = 'smtp; 550 5.1.1 <script>alert("x")</script>'
BULK_BOUNCED = 23  # more than the digest lists (MAX_NEW_SUPPRESSIONS = 20)


def _at(days_before: int, hour: int, minute: int = 0) -> datetime:
    return DAY - timedelta(days=days_before) + timedelta(hours=hour, minutes=minute)


class _Builder:
    """One message per recipient: sent (with a Send event unless ``send=False``), then what befell it."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.count = 0

    def message(
        self,
        recipient: str,
        sent_at: datetime,
        tags: Mapping[str, Sequence[str]] | None,
        *,
        send: bool = True,
    ) -> Message:
        self.count += 1
        m = Message(f"m-{self.count:04d}", [recipient], sent_at, tags=tags)
        if send:
            self.events.append(m.send())
        return m

    def delivered(
        self, recipient: str, sent_at: datetime, tags: Mapping[str, Sequence[str]] | None
    ) -> Message:
        m = self.message(recipient, sent_at, tags)
        self.events.append(m.delivery(sent_at + timedelta(minutes=1)))
        return m

    def hard(
        self,
        recipient: str,
        sent_at: datetime,
        tags: Mapping[str, Sequence[str]] | None,
        *,
        at: datetime | None = None,
        send: bool = True,
        **bounce: str,
    ) -> Message:
        m = self.message(recipient, sent_at, tags, send=send)
        self.events.append(m.bounce(at or sent_at + timedelta(minutes=5), recipient, **bounce))
        return m


def sharper_events() -> list[Event]:
    """Windows: the last 7 days are 2026-11-15..21 (DAY is the 21st), the 7 days before 2026-11-08..14.

    growth, last 7 days: 100 sent, 4 counted hard bounces (4.0%), 1 complaint (1.0%):
      on DAY big.example 40 (b0..b2 hard at 09:10..09:12, oasl@ OnAccountSuppressionList at 09:13, which SES
      does not count, 36 delivered), mid.example 20 (c@ complained at 11:00, 19 delivered),
      tiny.example 1 (t@ hard at 09:14: 100%, under the 20 sends a domain needs to rank);
      on DAY-3 fine.example 39 delivered.
    growth, the 7 days before: 50 sent: DAY-10 was@big.example hard and 48 delivered; DAY-12 was@big.example
      again, delivered, and its complaint arrives on DAY: 1 hard (2.0%), 1 complaint (2.0%). So was@ is
      suppressed since DAY-10 and is not new on DAY, though its strongest reason (complaint) dates from DAY.
    bulk, last 7 days: on DAY 25 sent to HOSTILE_DOMAIN, 23 hard (92.0%) at 12:00..12:22; nothing before.
    everything-else (untagged), last 7 days: 10 sent, none hard: soft@other.example soft-bounced on DAY-4,
      DAY-2 and DAY (10:30): suppressed on DAY until 2026-12-05; 7 delivered on DAY-1. The 7 days before:
      DAY-8 10 delivered. The digest's own email (lost@ops.example, hard on DAY) counts nowhere.
    Account: last 7 days 135 sent, 27 hard (20.0%), 1 complaint (0.74%); before 60 sent, 1 hard and
      1 complaint (1.7% each).
    """
    b = _Builder()
    for n in range(3):
        b.hard(f"b{n}@big.example", _at(0, 9), GROWTH, at=_at(0, 9, 10 + n))
    b.hard("oasl@big.example", _at(0, 9), GROWTH, at=_at(0, 9, 13), sub_type="OnAccountSuppressionList")
    for n in range(36):
        b.delivered(f"d{n}@big.example", _at(0, 8), GROWTH)
    m = b.delivered("c@mid.example", _at(0, 10), GROWTH)
    b.events.append(m.complaint(_at(0, 11), "c@mid.example"))
    for n in range(19):
        b.delivered(f"d{n}@mid.example", _at(0, 10), GROWTH)
    b.hard("t@tiny.example", _at(0, 9), GROWTH, at=_at(0, 9, 14))
    for n in range(39):
        b.delivered(f"f{n}@fine.example", _at(3, 14), GROWTH)
    b.hard("was@big.example", _at(10, 9), GROWTH)
    for n in range(48):
        b.delivered(f"p{n}@big.example", _at(10, 9), GROWTH)
    m = b.delivered("was@big.example", _at(12, 9), GROWTH)
    b.events.append(m.complaint(_at(0, 7), "was@big.example"))

    for n in range(BULK_BOUNCED):
        b.hard(
            f"r{n:02d}@{HOSTILE_DOMAIN}", _at(0, 11), BULK, at=_at(0, 12, n), diagnostic=HOSTILE_DIAGNOSTIC
        )
    for n in range(BULK_BOUNCED, 25):
        b.delivered(f"r{n:02d}@{HOSTILE_DOMAIN}", _at(0, 11), BULK)

    for days_before in (4, 2, 0):
        m = b.message("soft@other.example", _at(days_before, 10), None)
        b.events.append(m.soft_bounce(_at(days_before, 10, 30), "soft@other.example"))
    for n in range(7):
        b.delivered(f"ok{n}@other.example", _at(1, 10), None)
    for n in range(10):
        b.delivered(f"old{n}@other.example", _at(8, 10), None)
    b.hard("lost@ops.example", _at(0, 6), {"bouncehouse_message": ["digest"]})
    return b.events


def sends_unknown_events() -> list[Event]:
    """customers: last 7 days DAY-1 20 sent with Send events, 1 hard (5.0%); the 7 days before only three
      bounces without Send events on DAY-9 (2026-11-12): its rate stands, its trend cannot be told.
    trials: DAY-2 10 delivered with Send events, and on DAY two bounces without Send events: no rate, no
      trend, no domain rates. The 7 days before: DAY-8 10 delivered.
    Account: both windows have a day of unknown sends."""
    b = _Builder()
    b.hard("h@cust.example", _at(1, 9), CUSTOMER)
    for n in range(19):
        b.delivered(f"d{n}@cust.example", _at(1, 9), CUSTOMER)
    for n in range(3):
        b.hard(f"gone{n}@cust.example", _at(9, 9), CUSTOMER, send=False)
    for n in range(10):
        b.delivered(f"t{n}@trial.example", _at(2, 9), TRIAL)
    for n in range(2):
        b.hard(f"gone{n}@trial.example", _at(0, 9), TRIAL, send=False)
    for n in range(10):
        b.delivered(f"o{n}@trial.example", _at(8, 9), TRIAL)
    return b.events


def pruned_events() -> list[Event]:
    """customers: on DAY-13 (2026-11-08, the first day of the 7 days before) 20 delivered at 01:00 and
    one hard bounce; on DAY-1 10 delivered. With the shortest retention (14 days: before 2026-11-08 06:00)
    prune drops the 20 deliveries, so message_status holds one of that day's 21 sends: the route cannot
    tell its rate for that day (1 of 1 would read 100%), though the account's counts still can."""
    b = _Builder()
    for n in range(20):
        b.delivered(f"d{n}@cust.example", _at(13, 1), CUSTOMER)
    b.hard("h@cust.example", _at(13, 1), CUSTOMER)
    for n in range(10):
        b.delivered(f"n{n}@cust.example", _at(1, 9), CUSTOMER)
    return b.events
