"""A route with many admins (issue 14, item 5): SES takes at most 50 recipients a message, so the digest
goes out as several emails, each admin in exactly one; admins are not shown to each other unless
BOUNCEHOUSE_DIGEST_SHOW_ADMINS says so; and the route's digest of the day still goes out at most once,
even when a send fails midway through the emails."""

from __future__ import annotations

import json
import urllib.request
from email import message_from_bytes, policy
from typing import Any

from bouncehouse import warehouse
from bouncehouse.digest import SmtpSettings, send_digests
from bouncehouse.digest.parts import RECIPIENTS_PER_EMAIL, UNDISCLOSED
from digest_scenario import DigestEnv

ADMINS = [f"admin-{i:05d}@example.com" for i in range(10_000)]


def _route_with(env: DigestEnv, admins: list[str]) -> None:
    listed = ", ".join(admins)
    (env.home / "routes.yml").write_text(
        f"routes:\n  - name: trials\n    admins: [{listed}]\n    when: {{tag: user_type, equals: trial}}\n"
    )


def _log(env: DigestEnv, *more: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(("route", "state", "attempts", "len(recipients)", *more))
    with warehouse.session(env.settings.warehouse) as con:
        return con.execute(f"select {columns} from ops.digest_log").fetchall()


def test_ten_thousand_admins_get_one_bcc_email_each_in_emails_of_at_most_50(digest_env: DigestEnv, moto):
    """Before: one email with all 10,000 addresses in To, which SES (here moto, which keeps SES's limit)
    refuses: more than 50 recipients. After: 200 emails of 50, each admin in exactly one, To naming none
    of them, under one claim."""
    _route_with(digest_env, ADMINS)
    ses = moto.client("ses")
    ses.verify_email_identity(EmailAddress="bouncehouse@example.com")
    settings = digest_env.with_(digest_transport="ses")

    counts = send_digests(settings, ses_client=ses)

    assert counts["sent"] == 1
    [(route, state, attempts, recipients, ref)] = _log(digest_env, "message_ref")
    assert (route, state, attempts, recipients) == ("trials", "sent", 1, len(ADMINS))  # one claim
    refs = ref.split()
    with urllib.request.urlopen(f"{moto.endpoint_url}/moto-api/data.json") as response:
        sent = {item["id"]: item for item in json.load(response)["ses"]["RawMessage"]}
    ours = [sent[r.removeprefix("ses:")] for r in refs]
    assert len(ours) == len(ADMINS) // RECIPIENTS_PER_EMAIL
    assert max(len(item["destinations"]) for item in ours) == RECIPIENTS_PER_EMAIL
    assert sorted(a for item in ours for a in item["destinations"]) == ADMINS  # each admin exactly once
    for item in ours:
        message = message_from_bytes(item["raw_data"].encode(), policy=policy.default)
        headers = "".join(f"{name}: {value}\n" for name, value in message.items())
        assert message["To"] == UNDISCLOSED and "admin-" not in headers  # no admin sees another
        assert message["Bcc"] is None and message["Cc"] is None
    assert send_digests(settings, ses_client=ses)["already_sent"] == 1


def test_admins_are_shown_to_each_other_only_when_configured(digest_env: DigestEnv, smtp_server):
    _route_with(digest_env, ADMINS[:120])
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port)
    send_digests(digest_env.with_(digest_transport="smtp", digest_show_admins=True), smtp=smtp)
    assert [len(tos) for _, tos in smtp_server.envelopes] == [50, 50, 20]
    for message, (_, tos) in zip(smtp_server.messages, smtp_server.envelopes, strict=True):
        assert sorted(a.strip() for a in str(message["To"]).split(",")) == sorted(tos)


class _FailsOnce:
    """Accepts DATA, except the ``nth`` one, answered with ``code``."""

    def __init__(self, nth: int, code: str) -> None:
        self.nth, self.code, self.calls, self.accepted = nth, code, 0, []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.calls += 1
        if self.calls == self.nth:
            return self.code
        self.accepted.append(list(envelope.rcpt_tos))
        return "250 OK"


def test_a_temporary_failure_midway_resumes_at_the_email_that_failed(digest_env: DigestEnv, custom_smtp):
    _route_with(digest_env, ADMINS[:120])
    handler = _FailsOnce(2, "451 4.3.0 try again")
    counts = send_digests(digest_env.with_(digest_transport="smtp"), smtp=custom_smtp(handler))
    assert counts["sent"] == 1
    assert sorted(r for tos in handler.accepted for r in tos) == ADMINS[:120]  # nobody twice, nobody missed
    assert _log(digest_env) == [("trials", "sent", 2, 120)]


def test_a_failure_after_some_emails_went_out_is_never_resent(digest_env: DigestEnv, custom_smtp):
    _route_with(digest_env, ADMINS[:120])
    handler = _FailsOnce(2, "554 5.7.1 refused")
    settings = digest_env.with_(digest_transport="smtp")
    smtp = custom_smtp(handler)

    first = send_digests_counts(settings, smtp)
    assert first["unconfirmed"] == 1 and "email 2 of 3 (1 sent)" in first["problems_text"]
    assert _log(digest_env)[0][1] == "sending"
    again = send_digests_counts(settings, smtp)
    assert again["unconfirmed"] == 1
    assert handler.accepted == [ADMINS[:50]]  # the first email only, once


def send_digests_counts(settings, smtp) -> dict[str, Any]:
    from bouncehouse.errors import DigestDeliveryError

    try:
        return send_digests(settings, smtp=smtp)
    except DigestDeliveryError as exc:
        return {**exc.counts, "problems_text": str(exc)}
