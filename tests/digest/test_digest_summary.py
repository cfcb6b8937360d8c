"""The summary above a digest's recipient list: where the day's bounces come from (top diagnostic codes, top
recipient domains), counted over every listed row, escaped in HTML."""

from __future__ import annotations

from email import message_from_bytes, policy

from bouncehouse.digest.compose import _html_summary, diagnostic_key, top_diagnostics, top_domains
from bouncehouse.digest.data import DigestRow
from test_digest_layout import LONG_ADDRESS, realistic_digest


def _bounce(recipient: str, diagnostic: str | None, status: str = "hard_bounced") -> DigestRow:
    return DigestRow(recipient, status, None, "Permanent", "General", diagnostic, None, None, None, "m", {})


GMAIL_NO_USER = "smtp; 550-5.1.1 The email account that you tried to reach does not exist. - gsmtp"
ROWS = [
    _bounce("a@gmail.com", GMAIL_NO_USER),
    _bounce("b@Gmail.com", "smtp; 550 5.1.1 <b@gmail.com>: Recipient address rejected"),
    _bounce("c@gmail.com", "smtp; 452 4.2.2 mailbox full", "soft_bounced"),
    _bounce("d@corp.example", "smtp; 554 Message rejected <script>"),
    _bounce("e@corp.example", "Amazon SES did not send the message to this address"),
    _bounce("f@other.example", None, "complained"),
]


def test_diagnostics_group_by_status_code() -> None:
    assert diagnostic_key(GMAIL_NO_USER) == "5.1.1"
    assert diagnostic_key("smtp;550-5.1.1_unknown") == "5.1.1"
    assert diagnostic_key("smtp; 554 Message rejected") == "554"
    assert diagnostic_key("queue id 1234.5.6.7 and 25500") == "queue id 1234.5.6.7 and 25500"
    assert diagnostic_key("  no code here  ") == "no code here"
    assert top_diagnostics(ROWS) == [
        ("5.1.1", 2),
        ("4.2.2", 1),
        ("554", 1),
        ("Amazon SES did not send the message to this address", 1),
    ]
    # Domains are case-insensitive; the complaint counts too.
    assert top_domains(ROWS) == [("gmail.com", 3), ("corp.example", 2), ("other.example", 1)]


def test_summary_is_in_both_parts_above_the_list() -> None:
    message = message_from_bytes(realistic_digest(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    domain = LONG_ADDRESS.rpartition("@")[2]
    assert "Top diagnostic codes: 4.2.2 (1), 5.1.1 (1)" in text
    assert f"Top domains: other.example (1), {domain} (1), trial.example (1)" in text
    assert text.index("Top domains") < text.index("Bounced and complained recipients (3):")
    assert "Top diagnostic codes: <b>4.2.2</b> (1), <b>5.1.1</b> (1)" in html
    assert html.index("Top domains") < html.index(LONG_ADDRESS)


def test_summary_escapes_what_it_quotes() -> None:
    html = "".join(_html_summary([_bounce("x@evil.example", "<img src=x onerror=alert(1)>")]))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
