"""The digest tests' scenario: one day of hand-made SES events covering every case the digest must
get right, the routes file, and settings for a test home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bouncehouse.config import Settings, load_settings
from ses_events import Event, Message

AS_OF = datetime(2026, 11, 22, 6, 0)
DAY = datetime(2026, 11, 21)  # the digest day for AS_OF
HOSTILE_DIAGNOSTIC = 'smtp; 550 5.1.1 <script>alert("pwned")</script> & <b>unknown</b>'
HOSTILE_SUBJECT = "Invoice <img src=x onerror=alert(1)> #42"
SUPPRESSED_ADMIN = "gone-admin@example.com"

CUSTOMER = {"user_type": ["customer"]}
TRIAL = {"user_type": ["trial"]}
PARTNER = {"user_type": ["partner"]}

ROUTES_YAML = f"""
routes:
  - name: customers
    admins: [cs@example.com, {SUPPRESSED_ADMIN}]
    when: {{tag: user_type, equals: customer}}
  - name: trials
    admins: [growth@example.com]
    when: {{tag: user_type, equals: trial}}
  - name: partners
    admins: [partner-ops@example.com]
    when: {{tag: user_type, equals: partner}}
  - name: everything-else
    admins: [postmaster@example.com]
"""

# What each route's digest must list for DAY (recipient -> final status).
EXPECTED_ROWS = {
    "customers": {"hard@cust.example": "hard_bounced"},
    "trials": {"angry@trial.example": "complained"},
    "partners": {},
    "everything-else": {"full@other.example": "soft_bounced"},
}
# Must never appear in any digest for DAY.
NEVER_LISTED = {
    "away@cust.example": "out-of-office: a Transient/General bounce after a delivery",
    "old@cust.example": "bounced the day before",
    "fine@partner.example": "not-spam complaint",
    "lost@ops.example": "the digest's own email (tag bouncehouse_message=digest)",
    "filler-0@cust.example": "delivered",
}
FILLER = 40


def scenario_events() -> list[Event]:
    day = DAY
    events: list[Event] = []

    m = Message(
        "m-cust-hard", ["hard@cust.example"], day + timedelta(hours=9), tags=CUSTOMER, subject=HOSTILE_SUBJECT
    )
    events += [
        m.send(),
        m.bounce(day + timedelta(hours=9, minutes=5), "hard@cust.example", diagnostic=HOSTILE_DIAGNOSTIC),
    ]

    m = Message(
        "m-trial-complaint", ["angry@trial.example"], day - timedelta(hours=9), tags=TRIAL, subject="Welcome"
    )
    events += [
        m.send(),
        m.delivery(day - timedelta(hours=8)),
        m.complaint(day + timedelta(hours=8), "angry@trial.example"),
    ]

    m = Message("m-untagged-soft", ["full@other.example"], day + timedelta(hours=10), subject=None)
    events += [
        m.send(),
        m.bounce(
            day + timedelta(hours=10, minutes=30),
            "full@other.example",
            bounce_type="Transient",
            sub_type="MailboxFull",
            diagnostic="smtp; 452 4.2.2 mailbox full",
        ),
    ]

    m = Message("m-cust-ooo", ["away@cust.example"], day + timedelta(hours=7), tags=CUSTOMER)
    events += [
        m.send(),
        m.delivery(day + timedelta(hours=7, minutes=1)),
        m.bounce(
            day + timedelta(hours=7, minutes=2),
            "away@cust.example",
            bounce_type="Transient",
            sub_type="General",
        ),
    ]

    m = Message("m-cust-old", ["old@cust.example"], day - timedelta(hours=15), tags=CUSTOMER)
    events += [m.send(), m.bounce(day - timedelta(hours=14), "old@cust.example")]

    m = Message("m-partner-notspam", ["fine@partner.example"], day + timedelta(hours=12), tags=PARTNER)
    events += [
        m.send(),
        m.delivery(day + timedelta(hours=12, minutes=1)),
        m.complaint(day + timedelta(hours=13), "fine@partner.example", feedback_type="not-spam"),
    ]

    m = Message(
        "m-digest-own",
        ["lost@ops.example"],
        day + timedelta(hours=6),
        tags={"bouncehouse_message": ["digest"]},
    )
    events += [m.send(), m.bounce(day + timedelta(hours=6, minutes=1), "lost@ops.example")]

    # An admin address that hard-bounced earlier: on the suppression list.
    m = Message("m-admin", [SUPPRESSED_ADMIN], day - timedelta(days=11), tags=CUSTOMER)
    events += [m.send(), m.bounce(day - timedelta(days=11) + timedelta(minutes=1), SUPPRESSED_ADMIN)]

    for i in range(FILLER):
        sent = day - timedelta(days=i % 7) + timedelta(hours=14)
        m = Message(f"m-filler-{i}", [f"filler-{i}@cust.example"], sent, tags=CUSTOMER)
        events += [m.send(), m.delivery(sent + timedelta(minutes=1))]
    return events


def make_settings(home: Path, warehouse: Path, **overrides: Any) -> Settings:
    values = {
        "warehouse": str(warehouse),
        "outbox": str(home / "outbox"),
        "routes": str(home / "routes.yml"),
        "as_of": AS_OF,
        "digest_sender": "bouncehouse@example.com",
        "lock_timeout": 30,
        **overrides,
    }
    return load_settings(values, env={}, home=home)


@dataclass
class DigestEnv:
    home: Path
    settings: Settings

    def with_(self, **overrides: Any) -> Settings:
        return make_settings(self.home, self.settings.warehouse, **overrides)
