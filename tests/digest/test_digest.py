"""The digest end to end on marts built by dbt: content, routing, suppression, at-most-once, and the three
transports against real servers (aiosmtpd on loopback, moto's SES over HTTP)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from bouncehouse import warehouse
from bouncehouse.config import DIGEST_TAG_NAME, DIGEST_TAG_VALUE
from bouncehouse.digest import DigestDeliveryError, SmtpSettings, send_digests
from bouncehouse.digest.data import RateCheck, format_rate
from digest_scenario import (
    AS_OF,
    DAY,
    EXPECTED_ROWS,
    HOSTILE_DIAGNOSTIC,
    HOSTILE_SUBJECT,
    NEVER_LISTED,
    SUPPRESSED_ADMIN,
    DigestEnv,
)
from smtp_handlers import FlakyHandler, SlowHandler

pytestmark = pytest.mark.xdist_group("digest")

ROUTES = list(EXPECTED_ROWS)


def _read_eml(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[return-value]


def _outbox(env: DigestEnv) -> dict[str, EmailMessage]:
    """The outbox's emails by route (X-Bouncehouse-Route)."""
    found = {}
    for path in sorted((env.home / "outbox").glob("*.eml")):
        message = _read_eml(path)
        found[str(message["X-Bouncehouse-Route"])] = message
    return found


def _parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    images = [part for part in message.walk() if part.get_content_maintype() == "image"]
    return text, html, images


def _log(env: DigestEnv) -> list[tuple[Any, ...]]:
    with warehouse.session(env.settings.warehouse) as con:
        return con.execute(
            "select route, state, recipients, skipped, transport, message_ref, attempts from ops.digest_log order by route"
        ).fetchall()


def _window_rates(env: DigestEnv) -> tuple[int, int, int]:
    with warehouse.session(env.settings.warehouse) as con:
        return con.execute(
            "select sum(sent), sum(hard_bounced), sum(complained) from deliverability_daily "
            "where day::date between ?::date - 6 and ?::date",
            [DAY.date(), DAY.date()],
        ).fetchone()


def test_outbox_digest_content(digest_env: DigestEnv) -> None:
    counts = send_digests(digest_env.settings)
    assert counts["day"] == DAY.date().isoformat()
    assert counts["sent"] == len(ROUTES) and counts["failed"] == 0
    emails = _outbox(digest_env)
    assert sorted(emails) == sorted(ROUTES)

    sent, hard, complained = _window_rates(digest_env)
    # The scenario: 2 hard bounces (m-cust-hard, m-cust-old) and 1 complaint sent within the 7 days.
    assert (hard, complained) == (2, 1)
    bounce_rate, complaint_rate = format_rate(hard / sent), format_rate(complained / sent)

    for route, message in emails.items():
        text, html, images = _parts(message)
        # Structure: text + HTML alternatives, the chart inline in multipart/related, referenced by cid.
        assert message.get_content_type() == "multipart/alternative"
        assert any(part.get_content_type() == "multipart/related" for part in message.walk())
        assert len(images) == 1 and images[0].get_content_type() == "image/png"
        png = images[0].get_content()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        assert f"cid:{images[0]['Content-ID'].strip('<>')}" in html
        # The digest's own tag, so its feedback never counts as a tracked send.
        assert message["X-SES-MESSAGE-TAGS"] == f"{DIGEST_TAG_NAME}={DIGEST_TAG_VALUE}"
        assert DAY.date().isoformat() in message["Subject"] and route in message["Subject"]

        listed = EXPECTED_ROWS[route]
        for recipient in listed:
            assert recipient in text and recipient in html
        others = {r for rs in EXPECTED_ROWS.values() for r in rs} - set(listed)
        for recipient in list(others) + list(NEVER_LISTED):
            assert recipient not in html, f"{recipient} wrongly in {route}'s digest"
            assert recipient not in text, f"{recipient} wrongly in {route}'s digest"
        assert f"Bounced and complained recipients ({len(listed)})" in html
        # Counts of the day for this route.
        statuses = list(listed.values())
        assert f"hard bounced: {statuses.count('hard_bounced')}" in text
        assert f"soft bounced: {statuses.count('soft_bounced')}" in text
        assert f"complained:   {statuses.count('complained')}" in text
        # Account-wide 7-day rates against SES's limits, with the complaint warning (1/sent > 0.5%).
        assert f"Bounce rate: {bounce_rate}" in text and bounce_rate in html
        assert f"Complaint rate: {complaint_rate}" in text and complaint_rate in html
        assert f"{sent} sent" in text
        assert "pause level" in html and "OVER PAUSE LEVEL" in html
        assert "ACTION NEEDED" in message["Subject"]

    text, html, _ = _parts(emails["customers"])
    # Hostile strings from the event are escaped in HTML and intact in the plain text.
    assert "<script>" not in html and "<img src=x" not in html and "<b>unknown" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;unknown&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert HOSTILE_DIAGNOSTIC in text and HOSTILE_SUBJECT in text
    assert "Permanent / General" in html and "user_type=customer" in html
    soft_text, soft_html, _ = _parts(emails["everything-else"])
    assert "Transient / MailboxFull" in soft_html and "452 4.2.2 mailbox full" in soft_text
    trial_text, trial_html, _ = _parts(emails["trials"])
    assert "abuse" in trial_html and "Welcome" in trial_html

    # The suppressed admin: not a recipient; the others are told, in the email, why.
    customers = emails["customers"]
    assert SUPPRESSED_ADMIN not in str(customers["To"]) and "cs@example.com" in str(customers["To"])
    assert SUPPRESSED_ADMIN in html and "suppression list" in html and "hard bounce" in html
    assert counts["admins_skipped"] == 1
    log = {row[0]: row for row in _log(digest_env)}
    assert log["customers"][2] == ["cs@example.com"] and log["customers"][3] == [SUPPRESSED_ADMIN]
    assert all(row[1] == "sent" and row[4] == "outbox" for row in log.values())


def test_run_twice_sends_once(digest_env: DigestEnv, smtp_server) -> None:
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port)
    settings = digest_env.with_(digest_transport="smtp")
    first = send_digests(settings, smtp=smtp)
    second = send_digests(settings, smtp=smtp)
    assert first["sent"] == len(ROUTES) and first["already_sent"] == 0
    assert second["sent"] == 0 and second["already_sent"] == len(ROUTES)
    assert len(smtp_server.messages) == len(ROUTES)
    # Envelope recipients: the route's admins minus the suppressed one.
    rcpts = sorted(r for _, tos in smtp_server.envelopes for r in tos)
    assert rcpts == sorted(
        ["cs@example.com", "growth@example.com", "partner-ops@example.com", "postmaster@example.com"]
    )
    for message in smtp_server.messages:
        assert message["X-SES-MESSAGE-TAGS"] == f"{DIGEST_TAG_NAME}={DIGEST_TAG_VALUE}"
        assert message.is_multipart()
    # Another transport on the same day is still the same digest: not sent again.
    third = send_digests(digest_env.settings)
    assert third["already_sent"] == len(ROUTES) and not (digest_env.home / "outbox").exists()


def test_smtp_settings_from_environment(
    digest_env: DigestEnv, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCEHOUSE_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("BOUNCEHOUSE_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("BOUNCEHOUSE_SMTP_STARTTLS", "false")
    counts = send_digests(digest_env.with_(digest_transport="smtp"))
    assert counts["sent"] == len(ROUTES) == len(smtp_server.messages)


def _one_route(env: DigestEnv, route: str = "trials") -> None:
    """Keep one route so the failure tests stay short and unambiguous."""
    text = (env.home / "routes.yml").read_text()
    (env.home / "routes.yml").write_text(
        "routes:\n  - name: trials\n    admins: [growth@example.com]\n    when: {tag: user_type, equals: trial}\n"
    )
    assert route in text


def test_temporary_smtp_failure_is_retried_and_delivered_once(digest_env: DigestEnv, custom_smtp) -> None:
    _one_route(digest_env)
    handler = FlakyHandler(failures=1)
    counts = send_digests(digest_env.with_(digest_transport="smtp"), smtp=custom_smtp(handler))
    assert counts["sent"] == 1 and counts["failed"] == 0
    assert handler.attempts == 2
    assert len(handler.received) == 1
    [row] = _log(digest_env)
    assert row[1] == "sent" and row[6] == 2  # state, attempts
    # And a re-run sends nothing more.
    again = send_digests(digest_env.with_(digest_transport="smtp"), smtp=custom_smtp(handler))
    assert again["already_sent"] == 1 and len(handler.received) == 1


def test_permanent_failure_releases_the_claim_for_the_next_run(digest_env: DigestEnv, custom_smtp) -> None:
    _one_route(digest_env)
    rejecting = FlakyHandler(failures=99, code="554 5.7.1 Message rejected")
    with pytest.raises(DigestDeliveryError, match="trials"):
        send_digests(digest_env.with_(digest_transport="smtp"), smtp=custom_smtp(rejecting))
    assert rejecting.attempts == 1  # a 5xx is not retried
    assert _log(digest_env) == []
    working = FlakyHandler(failures=0)
    counts = send_digests(digest_env.with_(digest_transport="smtp"), smtp=custom_smtp(working))
    assert counts["sent"] == 1 and len(working.received) == 1


def test_unknown_outcome_is_never_resent(digest_env: DigestEnv, custom_smtp) -> None:
    """The crash window: the server took the message but the client never saw the reply."""
    _one_route(digest_env)
    slow = SlowHandler(delay=3.0)
    smtp = custom_smtp(slow)
    # An unconfirmed digest fails the run (so the task fails and someone looks), naming the route.
    with pytest.raises(DigestDeliveryError, match=r"trials: outcome unknown") as failure:
        send_digests(digest_env.with_(digest_transport="smtp"), smtp=smtp)
    counts = failure.value.counts
    assert counts["unconfirmed"] == 1 and counts["sent"] == 0
    [row] = _log(digest_env)
    assert row[1] == "sending"
    with pytest.raises(DigestDeliveryError, match=r"trials: an earlier send's outcome is unknown") as failure:
        send_digests(digest_env.with_(digest_transport="smtp"), smtp=smtp)
    again = failure.value.counts
    assert again["unconfirmed"] == 1 and again["sent"] == 0
    assert len(slow.received) == 1


def test_ses_transport_on_moto(digest_env: DigestEnv, moto) -> None:
    ses = moto.client("ses")
    settings = digest_env.with_(digest_transport="ses")
    # An unverified sender is refused by SES: a permanent failure, nothing logged as sent.
    with pytest.raises(DigestDeliveryError):
        send_digests(settings, ses_client=ses)
    assert _log(digest_env) == []

    ses.verify_email_identity(EmailAddress=settings.digest_sender)
    counts = send_digests(settings, ses_client=ses)
    assert counts["sent"] == len(ROUTES)
    refs = {row[0]: row[5] for row in _log(digest_env)}
    assert all(ref.startswith("ses:") for ref in refs.values())

    import urllib.request

    with urllib.request.urlopen(f"{moto.endpoint_url}/moto-api/data.json") as response:
        sent = json.load(response)["ses"]["RawMessage"]
    ours = {item["id"]: item for item in sent if f"ses:{item['id']}" in refs.values()}
    assert len(ours) == len(ROUTES)
    for item in ours.values():
        raw = message_from_bytes(item["raw_data"].encode(), policy=policy.default)
        assert raw["X-SES-MESSAGE-TAGS"] == f"{DIGEST_TAG_NAME}={DIGEST_TAG_VALUE}"
        assert SUPPRESSED_ADMIN not in item["destinations"]
    assert send_digests(settings, ses_client=ses)["already_sent"] == len(ROUTES)
    # The default client (ses_client=None) reaches moto through AWS_ENDPOINT_URL too.
    next_day = digest_env.with_(digest_transport="ses", as_of=AS_OF.replace(day=23))
    assert send_digests(next_day)["sent"] == len(ROUTES)


def test_sesv2_client_is_supported(digest_env: DigestEnv, moto) -> None:
    moto.client("ses").verify_email_identity(EmailAddress="bouncehouse@example.com")
    counts = send_digests(digest_env.with_(digest_transport="ses"), ses_client=moto.client("sesv2"))
    assert counts["sent"] == len(ROUTES)


def test_cli_digest_prints_counts_last(digest_env: DigestEnv) -> None:
    s = digest_env.settings
    result = subprocess.run(
        [
            sys.executable, "-m", "bouncehouse", "digest", "--warehouse", str(s.warehouse), "--as-of", AS_OF.isoformat() + "Z",
            "--outbox", str(s.outbox), "--routes", str(s.routes),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["sent"] == len(ROUTES) and counts["day"] == DAY.date().isoformat()
    assert len(list(s.outbox.glob("*.eml"))) == len(ROUTES)
    assert re.search(r"digest for 2026-11-21: 4 sent", result.stderr)


@pytest.mark.parametrize(
    ("value", "level"),
    [(None, "no data"), (0.01, "ok"), (0.04, "near"), (0.05, "review"), (0.099, "review"), (0.10, "pause")],
)
def test_bounce_rate_levels(value: float | None, level: str) -> None:
    check = RateCheck("Bounce rate", value, 0.05, 0.10)
    assert check.level == level
    assert (check.warning is None) == (level in ("ok", "no data"))


def test_digest_without_marts_is_a_config_error(tmp_path: Path) -> None:
    from bouncehouse.errors import ConfigError
    from digest_scenario import ROUTES_YAML, make_settings

    (tmp_path / "routes.yml").write_text(ROUTES_YAML)
    with pytest.raises(ConfigError, match="run `python -m bouncehouse transform`"):
        send_digests(make_settings(tmp_path, tmp_path / "empty.duckdb"))
