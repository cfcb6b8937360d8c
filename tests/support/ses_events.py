"""Hand-made SES JSON for the tests, and a loader that stores it in raw.ses_events the way ingest stores
bare SES JSON (event_id = md5 of the minified JSON, event_at = the event's own time, source_position), so
a test controls exactly which events exist and when they load, then builds the real marts with
``bouncehouse.transform.transform``.

One ``Message`` builds every event kind: event publishing (``eventType``, with tags) or, with
``identity=True``, identity notifications (``notificationType``, no tags), as SES sends them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bouncehouse import warehouse
from bouncehouse.config import Settings

SOURCE = "Acme <app@acme.example>"
SENDING_ACCOUNT = "123456789012"
REPORTING_MTA = "a8-70.smtp-out.amazonses.com"


def iso(at: datetime) -> str:
    """SES's timestamp format: UTC, milliseconds, ``Z``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """One SES event: its type (eventType or notificationType), message, own time and JSON."""

    event_type: str
    message_id: str
    event_at: datetime
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"))

    @property
    def event_id(self) -> str:
        return hashlib.md5(self.text.encode()).hexdigest()


class Message:
    """An SES message: the ``mail`` object every event of it carries, and builders for its events.

    Builders that name recipients (delivery, delay) default to every address in ``destination``."""

    def __init__(
        self,
        message_id: str,
        destination: Sequence[str],
        sent_at: datetime,
        *,
        tags: Mapping[str, Sequence[str]] | None = None,
        subject: str | None = "Hello",
        identity: bool = False,
    ) -> None:
        self.message_id = message_id
        self.destination = list(destination)
        self.sent_at = sent_at
        self.identity = identity  # identity notifications: notificationType, no tags
        headers: dict[str, Any] = {"from": [SOURCE], "to": list(destination), "messageId": message_id}
        if subject is not None:
            headers["subject"] = subject
        self.mail: dict[str, Any] = {
            "timestamp": iso(sent_at),
            "source": SOURCE,
            "sendingAccountId": SENDING_ACCOUNT,
            "messageId": message_id,
            "destination": list(destination),
            "headersTruncated": False,
            "commonHeaders": headers,
        }
        if not identity:
            self.mail["tags"] = {
                "ses:configuration-set": ["tracking"],
                "ses:source-ip": ["192.0.2.1"],
                **{k: list(v) for k, v in (tags or {}).items()},
            }

    def _event(self, event_type: str, at: datetime, key: str, body: dict[str, Any]) -> Event:
        type_field = "notificationType" if self.identity else "eventType"
        payload: dict[str, Any] = {type_field: event_type, "mail": self.mail, key: body}
        return Event(event_type, self.message_id, at, payload)

    def _named(self, recipients: Sequence[str]) -> list[str]:
        return list(recipients) if recipients else list(self.destination)

    def send(self) -> Event:
        return self._event("Send", self.sent_at, "send", {})

    def delivery(self, at: datetime, *recipients: str) -> Event:
        body = {
            "timestamp": iso(at),
            "processingTimeMillis": 812,
            "recipients": self._named(recipients),
            "smtpResponse": "250 2.0.0 OK",
            "reportingMTA": REPORTING_MTA,
        }
        return self._event("Delivery", at, "delivery", body)

    def bounce(
        self,
        at: datetime,
        *recipients: str,
        bounce_type: str = "Permanent",
        sub_type: str = "General",
        diagnostic: str | None = "smtp; 550 5.1.1 user unknown",
    ) -> Event:
        bounced = [
            {
                "emailAddress": r,
                "action": "failed",
                "status": "5.1.1",
                **({"diagnosticCode": diagnostic} if diagnostic else {}),
            }
            for r in recipients
        ]
        body = {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": bounced,
            "timestamp": iso(at),
            # One feedbackId per message and time: the same bounce built as an event-publishing record
            # and as an identity notification carries the same id, as SES's two channels do.
            "feedbackId": f"fb-{self.message_id}-{iso(at)}",
            "reportingMTA": f"dsn; {REPORTING_MTA}",
        }
        return self._event("Bounce", at, "bounce", body)

    def soft_bounce(self, at: datetime, *recipients: str, sub_type: str = "MailboxFull") -> Event:
        return self.bounce(
            at,
            *recipients,
            bounce_type="Transient",
            sub_type=sub_type,
            diagnostic="smtp; 452 4.2.2 over quota",
        )

    def complaint(self, at: datetime, *recipients: str, feedback_type: str | None = "abuse") -> Event:
        body: dict[str, Any] = {
            "complainedRecipients": [{"emailAddress": r} for r in recipients],
            "timestamp": iso(at),
            "feedbackId": f"fc-{self.message_id}-{iso(at)}",
            "userAgent": "Mozilla/5.0",
            "arrivalDate": iso(at),
        }
        if feedback_type is not None:
            body["complaintFeedbackType"] = feedback_type
        return self._event("Complaint", at, "complaint", body)

    def reject(self, at: datetime | None = None) -> Event:
        """A Reject has no time of its own in its JSON (ingest takes the send time); ``at`` sets event_at."""
        return self._event("Reject", at or self.sent_at, "reject", {"reason": "Bad content"})

    def rendering_failure(self, at: datetime | None = None) -> Event:
        body = {"templateName": "welcome_v3", "errorMessage": "Attribute 'name' is not present"}
        return self._event("Rendering Failure", at or self.sent_at, "failure", body)

    def delay(self, at: datetime, *recipients: str) -> Event:
        body = {
            "timestamp": iso(at),
            "delayType": "MailboxFull",
            "expirationTime": iso(at),
            "delayedRecipients": [{"emailAddress": r, "status": "4.2.2"} for r in self._named(recipients)],
        }
        return self._event("DeliveryDelay", at, "deliveryDelay", body)

    def open(self, at: datetime) -> Event:
        body = {"timestamp": iso(at), "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}
        return self._event("Open", at, "open", body)

    def click(self, at: datetime) -> Event:
        body = {"timestamp": iso(at), "ipAddress": "192.0.2.1", "link": "https://acme.example/"}
        return self._event("Click", at, "click", body)

    def subscription(self, at: datetime, *, unsubscribe_all: bool = True) -> Event:
        body = {
            "contactList": "customers",
            "timestamp": iso(at),
            "source": "UnsubscribeHeader",
            "newTopicPreferences": {"unsubscribeAll": unsubscribe_all, "topicSubscriptionStatus": []},
            "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": []},
        }
        return self._event("Subscription", at, "subscription", body)


def load(
    path: Path,
    events: Iterable[Event],
    loaded_at: datetime | None = None,
    *,
    source_key: str = "test/batch",
) -> int:
    """Insert events into raw.ses_events as one load (at ``loaded_at``, default now), skipping event_ids
    already there, as ingest does. Returns how many rows were inserted."""
    loaded_at = loaded_at or datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (e.event_id, e.event_type, e.message_id, e.event_at, source_key, e.text, loaded_at, position)
        for position, e in enumerate(events, start=1)
    ]
    with warehouse.session(path, lock_timeout=30) as con:
        existing = {r[0] for r in con.execute("select event_id from raw.ses_events").fetchall()}
        fresh = []
        for row in rows:
            if row[0] not in existing:
                existing.add(row[0])
                fresh.append(row)
        if fresh:
            con.executemany(
                "insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload, "
                "loaded_at, source_position) values (?, ?, ?, ?, ?, ?, ?, ?)",
                fresh,
            )
    return len(fresh)


def settings_for(path: Path, as_of: datetime) -> Settings:
    return Settings(warehouse=path, as_of=as_of, lock_timeout=30)
