"""Honest denominators: when SES reported only feedback (no Send events), the number sent is short, so
the digest shows no 7-day rate and no SES-limit warning, and says what to enable instead."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from bouncehouse.digest import send_digests
from bouncehouse.digest.data import SENDS_UNKNOWN_ADVICE
from digest_scenario import CUSTOMER, DAY, ROUTES_YAML, make_settings
from ses_events import Message, load

pytestmark = pytest.mark.xdist_group("digest")


def _texts(outbox: Path) -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        found.append((str(message["Subject"]), text, html))
    return found


def test_a_bounce_only_day_shows_no_rate_and_says_what_to_enable(tmp_path: Path) -> None:
    # Event publishing without Send events (or identity notifications): only the bounces arrive.
    events = []
    for n in range(3):
        m = Message(f"m-bounce-{n}", [f"gone-{n}@cust.example"], DAY + timedelta(hours=9 + n), tags=CUSTOMER)
        events.append(m.bounce(DAY + timedelta(hours=9 + n, minutes=5), f"gone-{n}@cust.example"))
    path = tmp_path / "warehouse.duckdb"
    load(path, events)
    (tmp_path / "routes.yml").write_text(ROUTES_YAML)
    settings = make_settings(tmp_path, path)
    from bouncehouse.transform import transform

    transform(settings)
    send_digests(settings)

    emails = _texts(tmp_path / "outbox")
    assert emails, "every route still gets its digest"
    for subject, text, html in emails:
        # Without the fix the day reads 3 sent, 3 hard bounced: a 100% bounce rate and a pause warning.
        assert "ACTION NEEDED" not in subject and "WARNING" not in subject
        assert "100" not in text.split("Account-wide", 1)[1].split("\n\n", 1)[0]
        assert "SES's pause level" not in html and "SES&#x27;s pause level" not in html
        assert "OVER PAUSE LEVEL" not in html and "OVER REVIEW LEVEL" not in html
        assert "!!" not in text
        assert "Bounce rate: n/a [SENDS UNKNOWN]" in text and "SENDS UNKNOWN" in html
        assert SENDS_UNKNOWN_ADVICE in text and SENDS_UNKNOWN_ADVICE in html
        assert DAY.date().isoformat() in text.split("Sends are not known for", 1)[1]
    customers = next(text for subject, text, _ in emails if "customers" in subject)
    # The day's bounced recipients are still listed: only the rates need the sends.
    assert all(f"gone-{n}@cust.example" in customers for n in range(3))
