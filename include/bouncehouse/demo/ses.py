"""The simulated sender behind ``generate``: who gets which message, and what SES reports about it.

Everything is driven by one ``random.Random`` and integer epoch milliseconds, so the same seed
gives the same events. Field layouts follow AWS's published examples of SES event publishing
(``eventType``) and identity notifications (``notificationType``); identity notifications carry no
``mail.tags`` (SES publishes tags only through configuration sets).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
CALLER_IDENTITY = "bouncehouse-mailer"
SOURCE_IPS = ("198.51.100.23", "198.51.100.24", "198.51.100.87")
REMOTE_MTA_IPS = ("203.0.113.10", "203.0.113.25", "203.0.113.41", "203.0.113.77", "203.0.113.130")
REPORTING_MTAS = tuple(f"a8-{n}.smtp-out.amazonses.com" for n in (12, 30, 47, 91, 113))

# Message tags (mail.tags). The digest's example routes file routes on user_type.
USER_TYPES = (("customer", 0.60), ("trial", 0.25), ("partner", 0.10), (None, 0.05))
CAMPAIGNS = (("newsletter", 0.45), ("receipt", 0.30), ("password_reset", 0.15), ("welcome", 0.10))
TEMPLATED_CAMPAIGNS = ("newsletter", "welcome")


@dataclass(frozen=True)
class Sender:
    source: str  # mail.source as SES writes it (display name allowed)
    domain: str
    configuration_set: str


SENDERS = {
    "newsletter": Sender(
        "Acme Weekly <news@news.acme.example>", "news.acme.example", "bouncehouse-marketing"
    ),
    "receipt": Sender("Acme Billing <billing@acme.example>", "acme.example", "bouncehouse-transactional"),
    "password_reset": Sender(
        "Acme Accounts <no-reply@acme.example>", "acme.example", "bouncehouse-transactional"
    ),
    "welcome": Sender("Acme <hello@acme.example>", "acme.example", "bouncehouse-transactional"),
}
# A legacy application sends through an identity with SNS feedback notifications only: its messages
# produce identity notifications (Bounce/Complaint/Delivery), no Send/Open/Click, and no tags.
LEGACY_SOURCE = "alerts@legacy.acme.example"
LEGACY_DOMAIN = "legacy.acme.example"

FIRST_NAMES = tuple(
    (
        "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil "
        "trent victor walter yusuf zoe amara bjorn chen dmitri esther fatima gustavo hana ines jose kenji "
        "lena mateo noor oscar priya quinn rosa sven "
    ).split()
)
LAST_NAMES = tuple(
    (
        "smith jones garcia muller tanaka okafor kowalski rossi novak silva nguyen ivanova haddad larsen "
        "obrien dubois schmidt kim patel costa moreau fischer yilmaz jensen santos weber ali lopez sato "
        "berg hughes reyes meyer popescu walsh nakamura horvat khan ortiz lund "
    ).split()
)
# How a name is written in a display name: accents are what real address books hold.
DISPLAY = {
    "jose": "José",
    "zoe": "Zoë",
    "bjorn": "Björn",
    "muller": "Müller",
    "ines": "Inês",
    "obrien": "O'Brien",
}
RECIPIENT_DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example.com",
    "inbox.example", "customer.example", "corp.example", "post.example",
)  # fmt: skip
REPEAT_SOFT_BOUNCE_DOMAIN = "example.net"

HARD_BOUNCES = (
    ("General", 0.45, "5.1.1", "smtp; 550 5.1.1 <{addr}>: Recipient address rejected: User unknown in virtual mailbox table"),
    ("NoEmail", 0.25, "5.1.1", "smtp; 550 5.1.1 The email account that you tried to reach does not exist."),
    ("Suppressed", 0.15, "5.1.1", "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address."),
    ("OnAccountSuppressionList", 0.10, "5.1.1", "Amazon SES did not send the message to this address because it is on the suppression list for your account."),
    ("UnsubscribedRecipient", 0.05, "5.7.1", "smtp; 550 5.7.1 Recipient has unsubscribed from this sender"),
)  # fmt: skip
# Also the bounce of the mailboxes that stay full (repeat_soft_bounce_message).
MAILBOX_FULL = (
    "Transient", "MailboxFull", 0.35, "4.2.2", "smtp; 452 4.2.2 The email account that you tried to reach is over quota."
)  # fmt: skip
SOFT_BOUNCES = (
    MAILBOX_FULL,
    ("Transient", "General", 0.30, "4.4.7", "smtp; 421 4.4.7 Message expired: unable to deliver in 840 minutes."),
    ("Transient", "MessageTooLarge", 0.10, "5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed limit"),
    ("Transient", "ContentRejected", 0.10, "5.7.1", "smtp; 554 5.7.1 Message rejected due to content restrictions"),
    ("Transient", "AttachmentRejected", 0.05, "5.7.1", "smtp; 554 5.7.1 Attachment type not allowed"),
    ("Undetermined", "Undetermined", 0.10, "5.0.0", "smtp; 550 5.0.0 Unable to determine the reason for the bounce"),
)  # fmt: skip
AUTO_REPLY_CODES = (
    "smtp; 250 Auto-Reply: I am out of the office until Monday and will reply on my return.",
    "Automatic reply: Out of Office",
    "smtp; 550 5.0.0 Autoreply: on vacation",
    None,  # some auto-replies carry no diagnostic at all
)
HOSTILE_DIAGNOSTICS = (
    "smtp; 550 5.1.1 <script>alert(1)</script> user unknown",
    'smtp; 550 5.7.1 rejected }{"eventType":"Complaint"}{ by policy',
)
DELAY_TYPES = (
    ("TransientCommunicationFailure", "4.4.1", "smtp; 421 4.4.1 Unable to connect to remote host"),
    ("MailboxFull", "4.2.2", "smtp; 452 4.2.2 Mailbox full, try again later"),
    ("RecipientServerError", "4.3.0", "smtp; 451 4.3.0 Temporary server error. Please try again later"),
    ("SpamDetected", "4.7.1", "smtp; 450 4.7.1 Message temporarily deferred due to unexpected volume"),
    ("InternalFailure", "4.0.0", "Amazon SES internal failure, retrying"),
)  # fmt: skip
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
)  # fmt: skip
COMPLAINT_AGENTS = ("Yahoo!-Mail-Feedback/2.0", "Mozilla/5.0 (compatible; AOL-FBL)", None)
SUBJECTS = {
    "newsletter": ("Acme Weekly: {topic}", ("what's new in November", "5 tips for faster invoices", "your year in review")),
    "receipt": ("Your Acme receipt #{n}", ()),
    "password_reset": ("Reset your Acme password", ()),
    "welcome": ("Welcome to Acme, {name}!", ()),
}  # fmt: skip
LINKS = ("https://acme.example/pricing", "https://acme.example/blog/latest", "https://acme.example/account")

# Per-recipient outcome rates (see README): hard 1.5%, soft 1%, delays 1.5%; then, among delivered
# recipients, auto-replies 1%, complaints 0.1%, opens 25% (clicks 35% of openers).
P_HARD = 0.015
P_SOFT = 0.010
P_DELAY_THEN_DELIVERED = 0.012
P_DELAY_UNRESOLVED = 0.003
P_AUTO_REPLY = 0.010
P_COMPLAINT = 0.001
P_OPEN = 0.25
P_CLICK = 0.35
P_UNSUBSCRIBE = 0.02  # of newsletter openers: a Subscription event
P_REJECT = 0.001
P_RENDERING_FAILURE = 0.002  # of templated sends
P_LEGACY = 0.04  # messages from the legacy identity (identity notifications)

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Scenarios forced onto a few messages spread over the period, so even a small tree holds every shape.
FORCED_SCENARIOS = (
    "reject", "rendering_failure", "complaint_abuse", "complaint_not_spam", "complaint_no_type",
    "auto_reply", "delay_then_delivered", "delay_unresolved", "hard_hostile_script", "hard_hostile_braces",
    "soft_undetermined", "soft_after_delay", "unsubscribe", "click", "multi_delivery",
    "legacy_delivery", "legacy_hard", "legacy_complaint", "legacy_auto_reply",
)  # fmt: skip


@dataclass
class Event:
    """One SES event as SES would publish it, before SNS or Firehose touch it."""

    at_ms: int  # the event's own time (Send: mail.timestamp)
    type: str  # eventType or notificationType
    text: str  # the SES JSON, compact
    identity: bool  # an identity notification (always reaches Firehose through SNS)


@dataclass(frozen=True)
class Recipient:
    address: str  # canonical: lower-case, bare
    written: str  # as it appears in mail.destination (display name, case, spaces)
    reported: str  # as SES names it in per-recipient fields (bare, case kept)


_DAY_TEXT: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as SES writes times: ``2026-11-20T10:05:12.345Z`` (fast: called per event)."""
    seconds, millis = divmod(ms, 1000)
    days, rest = divmod(seconds, 86400)
    day_text = _DAY_TEXT.get(days)
    if day_text is None:
        day_text = _DAY_TEXT.setdefault(days, date.fromordinal(719163 + days).isoformat())
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{day_text}T{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}Z"


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pick(rng: random.Random, weighted: tuple) -> tuple:
    """One item of ``weighted`` (tuples whose first float is the item's probability)."""
    roll = rng.random()
    for item in weighted:
        roll -= _weight(item)
        if roll < 0:
            return item
    return weighted[-1]


def _weight(item: tuple) -> float:
    return next(v for v in item if isinstance(v, float))


def pool_address(index: int) -> tuple[str, str]:
    """Regular recipient number ``index``: (canonical address, display name). Pure arithmetic, no state."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    generation = index // (len(FIRST_NAMES) * len(LAST_NAMES))
    style = (index * 7 + generation) % 3
    local = (f"{first}.{last}", f"{first}{last}", f"{first}_{last}")[style]
    if generation:
        local += str(generation)
    domain = RECIPIENT_DOMAINS[(index * 31 + generation) % len(RECIPIENT_DOMAINS)]
    name = f"{DISPLAY.get(first, first.title())} {DISPLAY.get(last, last.title())}"
    return f"{local}@{domain}", name


def repeat_soft_bounce_address(index: int) -> str:
    """Addresses whose mailbox stays full: they soft-bounce 3+ times within a week."""
    return f"full.mailbox{index + 1:02d}@{REPEAT_SOFT_BOUNCE_DOMAIN}"


def mixed_case(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local.title()}@{domain.upper()}"  # Alice.Smith@EXAMPLE.COM


def _mail_headers(
    source: str, message_id: str, t0_ms: int, recipients: list[Recipient], subject: str | None
) -> tuple[list[dict[str, str]], dict[str, object]]:
    """mail.headers and mail.commonHeaders; a message without a subject has neither Subject field."""
    header_id = f"<{message_id}@email.amazonses.com>"
    date_header = format_datetime(datetime.fromtimestamp(t0_ms / 1000, UTC))
    headers = [
        {"name": "From", "value": source},
        {"name": "To", "value": ", ".join(r.written.strip() for r in recipients)},
    ]
    common: dict[str, object] = {
        "from": [source],
        "date": date_header,
        "to": [r.written.strip() for r in recipients],
        "messageId": header_id,
    }
    if subject is not None:
        headers.append({"name": "Subject", "value": subject})
        common["subject"] = subject
    headers += [
        {"name": "MIME-Version", "value": "1.0"},
        {"name": "Content-Type", "value": "text/html; charset=UTF-8"},
    ]
    return headers, common


@dataclass(frozen=True)
class _Message:
    """What every event of one message shares: its mail object, send time, campaign and identity."""

    mail: str  # mail_json's text
    t0_ms: int
    campaign: str | None
    legacy: bool  # sent through the legacy identity: identity notifications, no Send/Open/Click


@dataclass
class Simulator:
    """Turns "a message was sent at t0 to these recipients" into the SES events it produces."""

    rng: random.Random
    address_pool_size: int
    stats: dict[str, int] = field(default_factory=dict)
    _hostile_left: list[str] = field(default_factory=lambda: list(HOSTILE_DIAGNOSTICS))

    # --- identifiers ------------------------------------------------------------------------
    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def ses_id(self, at_ms: int) -> str:
        # SES ids begin with the send time in hex: 0100018c1a2b3c4d-<uuid>-000000
        return f"0100{at_ms:012x}-{self.uuid()}-000000"

    # --- recipients -------------------------------------------------------------------------
    def recipient(self, address: str, name: str) -> Recipient:
        roll = self.rng.random()
        if roll < 0.04:  # mixed case, the way people type it
            shown = mixed_case(address)
            return Recipient(address, shown, shown)
        if roll < 0.08:  # a display name, sometimes with stray spaces
            shown = mixed_case(address) if roll < 0.06 else address
            pad = " " if roll < 0.05 else ""
            return Recipient(address, f"{pad}{name} <{shown}>{pad}", shown)
        if roll < 0.09:
            return Recipient(address, f" {address} ", address)
        return Recipient(address, address, address)

    def pick_recipients(self) -> list[Recipient]:
        roll = self.rng.random()
        count = 1 if roll < 0.75 else 2 if roll < 0.92 else 3
        chosen: list[Recipient] = []
        seen: set[str] = set()
        while len(chosen) < count:
            address, name = pool_address(self.rng.randrange(self.address_pool_size))
            if address not in seen:
                seen.add(address)
                chosen.append(self.recipient(address, name))
        return chosen

    # --- the mail object --------------------------------------------------------------------
    def mail_json(
        self,
        *,
        message_id: str,
        t0_ms: int,
        recipients: list[Recipient],
        campaign: str | None,
        user_type: str | None,
        subject: str | None,
    ) -> str:
        """mail as SES writes it; the same text in every event of the message (built once)."""
        legacy = campaign is None
        if legacy:
            source, domain = LEGACY_SOURCE, LEGACY_DOMAIN
        else:
            sender = SENDERS[campaign]
            source, domain = sender.source, sender.domain
        headers, common = _mail_headers(source, message_id, t0_ms, recipients, subject)
        mail: dict[str, object] = {
            "timestamp": iso_ms(t0_ms),
            "source": source,
            "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{domain}",
            "sendingAccountId": ACCOUNT_ID,
            "messageId": message_id,
            "destination": [r.written for r in recipients],
            "headersTruncated": False,
            "headers": headers,
            "commonHeaders": common,
        }
        if legacy:
            mail["sourceIp"] = SOURCE_IPS[0]
            mail["callerIdentity"] = CALLER_IDENTITY
        else:
            mail["tags"] = self._mail_tags(campaign, domain, user_type)
        return _dumps(mail)

    def _mail_tags(self, campaign: str, domain: str, user_type: str | None) -> dict[str, list[str]]:
        """mail.tags: SES's automatic ``ses:*`` tags, then the message's own."""
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [SENDERS[campaign].configuration_set],
            "ses:source-ip": [self.rng.choice(SOURCE_IPS)],
            "ses:from-domain": [domain],
            "ses:caller-identity": [CALLER_IDENTITY],
            "campaign": [campaign],
        }
        if user_type is not None:
            tags["user_type"] = [user_type]
        return tags

    def subject_for(self, campaign: str, name: str) -> str | None:
        roll = self.rng.random()
        if roll < 0.01:
            return None  # no Subject header: message_status.subject may be null
        if roll < 0.012:
            return '<b>50% off</b> & "free" shipping'
        pattern, topics = SUBJECTS[campaign]
        return pattern.format(
            topic=self.rng.choice(topics) if topics else "",
            n=self.rng.randrange(100000, 999999),
            name=name,
        )

    # --- one message ------------------------------------------------------------------------
    def message(self, t0_ms: int, scenario: str | None = None) -> tuple[str, int, list[Event]]:
        """A regular message sent at ``t0_ms``: (message id, recipient count, its events)."""
        rng = self.rng
        legacy = scenario.startswith("legacy") if scenario else rng.random() < P_LEGACY
        if legacy:
            campaign = user_type = None
        else:
            campaign = _pick(rng, CAMPAIGNS)[0]
            user_type = _pick(rng, USER_TYPES)[0]
            if scenario == "unsubscribe":
                campaign = "newsletter"
            elif scenario == "rendering_failure":
                campaign = rng.choice(TEMPLATED_CAMPAIGNS)
        recipients = self.pick_recipients()
        if scenario == "multi_delivery" and len(recipients) < 2:
            recipients = (
                recipients + [r for r in self.pick_recipients() if r.address != recipients[0].address][:1]
            )
        message_id = self.ses_id(t0_ms)
        if legacy:
            subject = "Alert: nightly export finished" if rng.random() < 0.9 else None
        else:
            subject = self.subject_for(campaign, _name_of(recipients[0]))
        mail = self.mail_json(
            message_id=message_id,
            t0_ms=t0_ms,
            recipients=recipients,
            campaign=campaign,
            user_type=user_type,
            subject=subject,
        )
        events = self._message_events(_Message(mail, t0_ms, campaign, legacy), recipients, scenario)
        return message_id, len(recipients), events

    def repeat_soft_bounce_message(
        self, t0_ms: int, address: str, *, delivered: bool
    ) -> tuple[str, int, list[Event]]:
        """A message to a mailbox that stays full (or, ``delivered``, has been emptied at last)."""
        campaign = self.rng.choice(("newsletter", "receipt"))
        # Written differently from send to send: the suppression rule must normalise to count them.
        shown = self.rng.choice((address, mixed_case(address)))
        written = self.rng.choice((shown, f"Mailbox Owner <{shown}>"))
        recipient = Recipient(address, written, shown)
        message_id = self.ses_id(t0_ms)
        mail = self.mail_json(
            message_id=message_id,
            t0_ms=t0_ms,
            recipients=[recipient],
            campaign=campaign,
            user_type="customer",
            subject=self.subject_for(campaign, "Customer"),
        )
        m = _Message(mail, t0_ms, campaign, legacy=False)
        events = [_new_event(mail, t0_ms, "Send", "send", {})]
        if delivered:
            events += self._delivered(m, t0_ms + self.rng.randint(800, 9000), recipient, None)
        else:
            at = t0_ms + self.rng.randint(2 * MINUTE, 40 * MINUTE)
            if self.rng.random() < 0.5:
                events.append(
                    self._delay(
                        m, t0_ms + self.rng.randint(10 * SECOND, 2 * MINUTE), [recipient], "MailboxFull"
                    )
                )
            events.append(self._soft_bounce_event(m, at, recipient, MAILBOX_FULL))
        return message_id, 1, events

    def _message_events(self, m: _Message, recipients: list[Recipient], scenario: str | None) -> list[Event]:
        rng = self.rng
        events: list[Event] = []
        if not m.legacy:
            events.append(_new_event(m.mail, m.t0_ms, "Send", "send", {}))
            failure = None
            if scenario == "reject" or (scenario is None and rng.random() < P_REJECT):
                failure = "Reject"
            elif scenario == "rendering_failure" or (
                scenario is None and m.campaign in TEMPLATED_CAMPAIGNS and rng.random() < P_RENDERING_FAILURE
            ):
                failure = "Rendering Failure"
            if failure == "Reject":
                at = m.t0_ms + rng.randint(200, 3000)
                return events + [_new_event(m.mail, at, "Reject", "reject", {"reason": "Bad content"})]
            if failure == "Rendering Failure":
                at = m.t0_ms + rng.randint(200, 3000)
                body = {
                    "errorMessage": "Attribute 'first_name' is not present in the rendering data.",
                    "templateName": f"{m.campaign}_v3",
                }
                return events + [_new_event(m.mail, at, "Rendering Failure", "failure", body)]

        # A few multi-recipient messages get one Delivery naming every recipient, as SES sometimes does.
        if len(recipients) > 1 and (
            scenario == "multi_delivery" or (scenario is None and rng.random() < 0.15)
        ):
            at = m.t0_ms + rng.randint(800, 9000)
            events.append(self._delivery(m, at, recipients))
            for recipient in recipients:
                events += self._after_delivery(m, at, recipient, None)
            return events

        for position, recipient in enumerate(recipients):
            events += self._recipient_events(m, recipient, scenario if position == 0 else None)
        return events

    def _recipient_events(self, m: _Message, recipient: Recipient, scenario: str | None) -> list[Event]:
        outcome = _FORCED_OUTCOME.get(scenario or "") or self._outcome()
        if outcome == "hard":
            return [self._hard_bounce(m, recipient, scenario)]
        if outcome == "soft":
            return self._soft_bounce(m, recipient, scenario)
        if outcome in ("delay_then_delivered", "delay_unresolved"):
            return self._delayed(m, recipient, scenario, resolved=outcome == "delay_then_delivered")
        return self._delivered(m, m.t0_ms + self.rng.randint(800, 12 * SECOND), recipient, scenario)

    def _outcome(self) -> str:
        """What happens to a recipient with no forced scenario, by one draw."""
        roll = self.rng.random()
        if roll < P_HARD:
            return "hard"
        if roll < P_HARD + P_SOFT:
            return "soft"
        if roll < P_HARD + P_SOFT + P_DELAY_THEN_DELIVERED:
            return "delay_then_delivered"
        if roll < P_HARD + P_SOFT + P_DELAY_THEN_DELIVERED + P_DELAY_UNRESOLVED:
            return "delay_unresolved"
        return "delivered"

    def _hard_bounce(self, m: _Message, recipient: Recipient, scenario: str | None) -> Event:
        rng = self.rng
        bounce_sub_type, _, status, code = _pick(rng, HARD_BOUNCES)
        if scenario in ("hard_hostile_script", "hard_hostile_braces"):
            code = HOSTILE_DIAGNOSTICS[0 if scenario == "hard_hostile_script" else 1]
            bounce_sub_type = "General"
        elif rng.random() < 0.005:
            code = rng.choice(HOSTILE_DIAGNOSTICS)
        # SES's own suppression answers at once; a receiving server takes seconds.
        suppressed = bounce_sub_type in ("Suppressed", "OnAccountSuppressionList")
        at = m.t0_ms + (rng.randint(300, 2500) if suppressed else rng.randint(2 * SECOND, 90 * SECOND))
        code = code.replace("{addr}", recipient.reported)
        return self._bounce(
            m, at, [recipient], "Permanent", bounce_sub_type, status, code, suppressed=suppressed
        )

    def _soft_bounce(self, m: _Message, recipient: Recipient, scenario: str | None) -> list[Event]:
        """A soft bounce, half the time after one or two delays (identity notifications have none)."""
        rng = self.rng
        kind = _pick(rng, SOFT_BOUNCES)
        if scenario == "soft_undetermined":
            kind = SOFT_BOUNCES[-1]
        events = []
        if scenario == "soft_after_delay" or (scenario is None and rng.random() < 0.5):
            first = m.t0_ms + rng.randint(5 * MINUTE, 30 * MINUTE)
            if not m.legacy:
                events.append(self._delay(m, first, [recipient], None))
                if rng.random() < 0.4:
                    events.append(
                        self._delay(m, first + rng.randint(20 * MINUTE, 90 * MINUTE), [recipient], None)
                    )
            at = first + rng.randint(2 * HOUR, 7 * HOUR)
        else:
            at = m.t0_ms + rng.randint(5 * SECOND, 20 * MINUTE)
        return events + [self._soft_bounce_event(m, at, recipient, kind)]

    def _delayed(
        self, m: _Message, recipient: Recipient, scenario: str | None, *, resolved: bool
    ) -> list[Event]:
        """A delay, then (when ``resolved``) the delivery and what follows it."""
        rng = self.rng
        first = m.t0_ms + rng.randint(2 * MINUTE, 30 * MINUTE)
        events = [] if m.legacy else [self._delay(m, first, [recipient], None)]
        if not resolved:
            return events
        delivered_at = first + rng.randint(20 * MINUTE, 4 * HOUR)
        return events + self._delivered(m, delivered_at, recipient, scenario)

    def _delivered(self, m: _Message, at: int, recipient: Recipient, scenario: str | None) -> list[Event]:
        return [self._delivery(m, at, [recipient])] + self._after_delivery(m, at, recipient, scenario)

    def _after_delivery(
        self, m: _Message, delivered_at: int, recipient: Recipient, scenario: str | None
    ) -> list[Event]:
        """What can follow a delivery: an out-of-office reply, a complaint, opens, clicks, an unsubscribe."""
        events = self._auto_reply(m, delivered_at, recipient, scenario)
        events += self._complaint_after(m, delivered_at, recipient, scenario)
        if m.legacy:
            return events  # identity notifications have no opens, clicks or subscriptions
        return events + self._engagement(m, delivered_at, scenario)

    def _auto_reply(
        self, m: _Message, delivered_at: int, recipient: Recipient, scenario: str | None
    ) -> list[Event]:
        """An out-of-office reply, which SES reports as a Transient/General bounce."""
        rng = self.rng
        if not (
            scenario in ("auto_reply", "legacy_auto_reply")
            or (scenario is None and rng.random() < P_AUTO_REPLY)
        ):
            return []
        at = delivered_at + rng.randint(3 * SECOND, 10 * MINUTE)
        code = rng.choice(AUTO_REPLY_CODES)
        status = "2.0.0" if code and code.startswith("smtp; 250") else "5.0.0"
        return [self._bounce(m, at, [recipient], "Transient", "General", status, code)]

    def _complaint_after(
        self, m: _Message, delivered_at: int, recipient: Recipient, scenario: str | None
    ) -> list[Event]:
        """A complaint ("" is one without a feedback type), forced by the scenario or by chance."""
        rng = self.rng
        complaint_kind = _FORCED_COMPLAINT.get(scenario or "")
        if complaint_kind is None and scenario is None and rng.random() < P_COMPLAINT:
            roll = rng.random()
            complaint_kind = "not-spam" if roll < 0.12 else "abuse" if roll < 0.70 else ""
        if complaint_kind is None:
            return []
        at = delivered_at + rng.randint(10 * MINUTE, 10 * HOUR)
        return [self._complaint(m, at, recipient, complaint_kind or None)]

    def _engagement(self, m: _Message, delivered_at: int, scenario: str | None) -> list[Event]:
        """Opens (sometimes two), then perhaps a click and, for a newsletter, an unsubscribe."""
        rng = self.rng
        if not (scenario in ("click", "unsubscribe") or (scenario is None and rng.random() < P_OPEN)):
            return []
        opened = delivered_at + int(rng.expovariate(1 / (50 * MINUTE))) + rng.randint(20 * SECOND, 2 * MINUTE)
        opened = min(opened, delivered_at + 10 * HOUR)
        agent = rng.choice(USER_AGENTS)
        ip = f"192.0.2.{rng.randint(1, 254)}"
        events = [_open(m.mail, opened, agent, ip)]
        if rng.random() < 0.2:  # opened again later
            events.append(_open(m.mail, opened + rng.randint(5 * MINUTE, 3 * HOUR), agent, ip))
        if scenario == "click" or (scenario is None and rng.random() < P_CLICK):
            events.append(self._click(m, opened, agent, ip))
        if m.campaign == "newsletter" and (
            scenario == "unsubscribe" or (scenario is None and rng.random() < P_UNSUBSCRIBE)
        ):
            at = opened + rng.randint(10 * SECOND, 10 * MINUTE)
            events.append(_new_event(m.mail, at, "Subscription", "subscription", _subscription(at, rng)))
        return events

    def _click(self, m: _Message, opened: int, agent: str, ip: str) -> Event:
        rng = self.rng
        clicked = opened + rng.randint(4 * SECOND, 8 * MINUTE)
        click = {
            "timestamp": iso_ms(clicked),
            "ipAddress": ip,
            "userAgent": agent,
            "link": rng.choice(LINKS),
        }
        if rng.random() < 0.7:
            click["linkTags"] = {"campaign": [m.campaign or "none"]}
        return _new_event(m.mail, clicked, "Click", "click", click)

    # --- event bodies -----------------------------------------------------------------------
    def _delivery(self, m: _Message, at: int, recipients: list[Recipient]) -> Event:
        rng = self.rng
        body = {
            "timestamp": iso_ms(at),
            "processingTimeMillis": max(1, at - m.t0_ms),
            "recipients": [r.reported for r in recipients],
            "smtpResponse": f"250 2.0.0 OK  {at // 1000} {self.uuid()[:12]} - gsmtp",
            "remoteMtaIp": rng.choice(REMOTE_MTA_IPS),
            "reportingMTA": rng.choice(REPORTING_MTAS),
        }
        return _new_event(m.mail, at, "Delivery", "delivery", body, m.legacy)

    def _bounce(
        self,
        m: _Message,
        at: int,
        recipients: list[Recipient],
        bounce_type: str,
        bounce_sub_type: str,
        status: str,
        code: str | None,
        *,
        suppressed: bool = False,
    ) -> Event:
        bounced = []
        for r in recipients:
            entry = {"emailAddress": r.reported, "action": "failed", "status": status}
            if code is not None:
                entry["diagnosticCode"] = code
            bounced.append(entry)
        body: dict[str, object] = {
            "bounceType": bounce_type,
            "bounceSubType": bounce_sub_type,
            "bouncedRecipients": bounced,
            "timestamp": iso_ms(at),
            "feedbackId": self.ses_id(at),
        }
        if suppressed:
            body["reportingMTA"] = "dns; amazonses.com"
        else:
            body["remoteMtaIp"] = self.rng.choice(REMOTE_MTA_IPS)
            body["reportingMTA"] = f"dsn; {self.rng.choice(REPORTING_MTAS)}"
        return _new_event(m.mail, at, "Bounce", "bounce", body, m.legacy)

    def _soft_bounce_event(self, m: _Message, at: int, recipient: Recipient, kind: tuple) -> Event:
        """One recipient's soft bounce of ``kind``, a SOFT_BOUNCES row."""
        bounce_type, bounce_sub_type, _, status, code = kind
        return self._bounce(m, at, [recipient], bounce_type, bounce_sub_type, status, code)

    def _complaint(self, m: _Message, at: int, recipient: Recipient, feedback_type: str | None) -> Event:
        body: dict[str, object] = {"complainedRecipients": [{"emailAddress": recipient.reported}]}
        agent = self.rng.choice(COMPLAINT_AGENTS)
        if agent is not None:
            body["userAgent"] = agent
        if feedback_type is not None:
            body["complaintFeedbackType"] = feedback_type
        body["complaintSubType"] = None
        body["arrivalDate"] = iso_ms(at - self.rng.randint(SECOND, 5 * MINUTE))
        body["timestamp"] = iso_ms(at)
        body["feedbackId"] = self.ses_id(at)
        return _new_event(m.mail, at, "Complaint", "complaint", body, m.legacy)

    def _delay(self, m: _Message, at: int, recipients: list[Recipient], delay_type: str | None) -> Event:
        """A DeliveryDelay: an event-publishing type, which identity notifications never carry."""
        rng = self.rng
        kind, status, code = next((d for d in DELAY_TYPES if d[0] == delay_type), None) or rng.choice(
            DELAY_TYPES
        )
        body = {
            "timestamp": iso_ms(at),
            "delayType": kind,
            "expirationTime": iso_ms(at + 14 * HOUR),
            "delayedRecipients": [
                {"emailAddress": r.reported, "status": status, "diagnosticCode": code} for r in recipients
            ],
            "reportingMTA": rng.choice(REPORTING_MTAS),
        }
        return _new_event(m.mail, at, "DeliveryDelay", "deliveryDelay", body)


_FORCED_OUTCOME = {
    "auto_reply": "delivered", "complaint_abuse": "delivered", "complaint_not_spam": "delivered",
    "complaint_no_type": "delivered", "click": "delivered", "unsubscribe": "delivered",
    "delay_then_delivered": "delay_then_delivered", "delay_unresolved": "delay_unresolved",
    "hard_hostile_script": "hard", "hard_hostile_braces": "hard", "soft_undetermined": "soft",
    "soft_after_delay": "soft", "legacy_delivery": "delivered", "legacy_hard": "hard",
    "legacy_complaint": "delivered", "legacy_auto_reply": "delivered",
}  # fmt: skip
_FORCED_COMPLAINT = {
    "complaint_abuse": "abuse", "complaint_not_spam": "not-spam", "complaint_no_type": "", "legacy_complaint": "abuse",
}  # fmt: skip


def _name_of(recipient: Recipient) -> str:
    local = recipient.address.split("@", 1)[0]
    first = next((name for name in FIRST_NAMES if local.startswith(name)), local)
    return DISPLAY.get(first, first.title())


def _event(event_type: str, mail: str, key: str, body: dict, identity: bool = False) -> str:
    """The SES JSON of one event: the type, the (pre-serialised) mail object, the type's object."""
    type_field = "notificationType" if identity else "eventType"
    return f'{{"{type_field}":"{event_type}","{key}":{_dumps(body)},"mail":{mail}}}'


def _new_event(mail: str, at: int, event_type: str, key: str, body: dict, identity: bool = False) -> Event:
    """An event of ``event_type`` whose own object is ``body`` under ``key``."""
    return Event(at, event_type, _event(event_type, mail, key, body, identity), identity)


def _open(mail: str, at: int, agent: str, ip: str) -> Event:
    return _new_event(
        mail, at, "Open", "open", {"timestamp": iso_ms(at), "userAgent": agent, "ipAddress": ip}
    )


def _subscription(at: int, rng: random.Random) -> dict:
    return {
        "contactList": "acme-newsletter",
        "timestamp": iso_ms(at),
        "source": rng.choice(("UnsubscribeHeader", "UnsubscribeLink")),
        "newTopicPreferences": {
            "unsubscribeAll": True,
            "topicSubscriptionStatus": [{"topicName": "weekly", "subscriptionStatus": "OptOut"}],
        },
        "oldTopicPreferences": {
            "unsubscribeAll": False,
            "topicSubscriptionStatus": [{"topicName": "weekly", "subscriptionStatus": "OptIn"}],
        },
    }
