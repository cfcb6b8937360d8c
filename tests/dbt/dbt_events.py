"""Hand-made SES JSON, stored in raw.ses_events the way ingest stores it (event_id, event_type, message_id,
event_at, payload, loaded_at), so the dbt tests control exactly which events exist and when they load."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bouncehouse import warehouse
from bouncehouse.config import Settings

SOURCE = "Acme <app@acme.example>"


def iso(at: datetime) -> str:
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
    """An SES message: the ``mail`` object every event of it carries, and builders for its events."""

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
        self.sent_at = sent_at
        self.identity = identity  # identity notifications: notificationType, no tags
        self.mail: dict[str, Any] = {
            "timestamp": iso(sent_at),
            "source": SOURCE,
            "messageId": message_id,
            "destination": list(destination),
            "commonHeaders": {"from": [SOURCE], "to": list(destination)},
        }
        if subject is not None:
            self.mail["commonHeaders"]["subject"] = subject
        if not identity:
            self.mail["tags"] = {
                "ses:configuration-set": ["tracking"],
                **{k: list(v) for k, v in (tags or {}).items()},
            }

    def _event(self, event_type: str, at: datetime, key: str | None, body: dict[str, Any]) -> Event:
        type_field = "notificationType" if self.identity else "eventType"
        payload: dict[str, Any] = {type_field: event_type, "mail": self.mail}
        if key is not None:
            payload[key] = body
        return Event(event_type, self.message_id, at, payload)

    def send(self) -> Event:
        return self._event("Send", self.sent_at, "send", {})

    def delivery(self, at: datetime, *recipients: str) -> Event:
        body = {"timestamp": iso(at), "recipients": list(recipients), "smtpResponse": "250 2.0.0 OK"}
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
            "feedbackId": f"fb-{self.message_id}-{iso(at)}",
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
        }
        if feedback_type is not None:
            body["complaintFeedbackType"] = feedback_type
        return self._event("Complaint", at, "complaint", body)

    def reject(self, at: datetime) -> Event:
        return self._event("Reject", at, "reject", {"reason": "Bad content"})

    def rendering_failure(self, at: datetime) -> Event:
        body = {"templateName": "welcome_v3", "errorMessage": "Attribute 'name' is not present"}
        return self._event("Rendering Failure", at, "failure", body)

    def delay(self, at: datetime, *recipients: str) -> Event:
        body = {
            "timestamp": iso(at),
            "delayType": "MailboxFull",
            "delayedRecipients": [{"emailAddress": r, "status": "4.2.2"} for r in recipients],
        }
        return self._event("DeliveryDelay", at, "deliveryDelay", body)

    def open(self, at: datetime) -> Event:
        return self._event("Open", at, "open", {"timestamp": iso(at), "ipAddress": "192.0.2.1"})

    def click(self, at: datetime) -> Event:
        return self._event("Click", at, "click", {"timestamp": iso(at), "link": "https://acme.example/"})


def load(path: Path, events: Iterable[Event], loaded_at: datetime, *, source_key: str = "test/batch") -> int:
    """Insert events into raw.ses_events as one load, skipping event_ids already there (as ingest does)."""
    rows = [
        (e.event_id, e.event_type, e.message_id, e.event_at, f"{source_key}", e.text, loaded_at)
        for e in events
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
                "insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload, loaded_at) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                fresh,
            )
    return len(fresh)


def settings_for(path: Path, as_of: datetime) -> Settings:
    return Settings(warehouse=path, as_of=as_of, lock_timeout=30)
