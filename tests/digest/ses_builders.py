"""Hand-made SES event-publishing JSON, loaded into raw.ses_events the way ingest stores it, so the
digest and prune tests can build the real marts with ``bouncehouse.transform.transform``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

SOURCE = "app@example.com"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class Message:
    """One SES message: ``mail`` block shared by all its events; methods return event dicts."""

    def __init__(
        self,
        message_id: str,
        recipients: Sequence[str],
        sent_at: datetime,
        *,
        tags: Mapping[str, Sequence[str]] | None = None,
        subject: str | None = "Hello",
    ) -> None:
        self.message_id = message_id
        self.recipients = list(recipients)
        self.sent_at = sent_at
        all_tags = {"ses:configuration-set": ["tracking"], "ses:source-ip": ["192.0.2.1"]}
        all_tags.update({k: list(v) for k, v in (tags or {}).items()})
        headers: dict[str, Any] = {"from": [SOURCE], "to": self.recipients, "messageId": message_id}
        if subject is not None:
            headers["subject"] = subject
        self.mail = {
            "timestamp": _iso(sent_at),
            "source": SOURCE,
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": self.recipients,
            "headersTruncated": False,
            "commonHeaders": headers,
            "tags": all_tags,
        }

    def send(self) -> dict[str, Any]:
        return {"eventType": "Send", "mail": self.mail, "send": {}}

    def delivery(self, at: datetime, recipients: Sequence[str] | None = None) -> dict[str, Any]:
        return {
            "eventType": "Delivery",
            "mail": self.mail,
            "delivery": {
                "timestamp": _iso(at),
                "processingTimeMillis": 812,
                "recipients": list(recipients or self.recipients),
                "smtpResponse": "250 2.0.0 OK",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        }

    def bounce(
        self,
        at: datetime,
        recipient: str,
        *,
        bounce_type: str = "Permanent",
        sub_type: str = "General",
        diagnostic: str | None = "smtp; 550 5.1.1 user unknown",
    ) -> dict[str, Any]:
        bounced: dict[str, Any] = {"emailAddress": recipient, "action": "failed", "status": "5.1.1"}
        if diagnostic is not None:
            bounced["diagnosticCode"] = diagnostic
        return {
            "eventType": "Bounce",
            "mail": self.mail,
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": sub_type,
                "bouncedRecipients": [bounced],
                "timestamp": _iso(at),
                "feedbackId": f"fb-{self.message_id}-{recipient}-b",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            },
        }

    def complaint(
        self, at: datetime, recipient: str, *, feedback_type: str | None = "abuse"
    ) -> dict[str, Any]:
        complaint: dict[str, Any] = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": _iso(at),
            "feedbackId": f"fb-{self.message_id}-{recipient}-c",
            "userAgent": "Mozilla/5.0",
            "arrivalDate": _iso(at),
        }
        if feedback_type is not None:
            complaint["complaintFeedbackType"] = feedback_type
        return {"eventType": "Complaint", "mail": self.mail, "complaint": complaint}

    def reject(self) -> dict[str, Any]:
        return {"eventType": "Reject", "mail": self.mail, "reject": {"reason": "Bad content"}}

    def open(self, at: datetime) -> dict[str, Any]:
        return {
            "eventType": "Open",
            "mail": self.mail,
            "open": {"timestamp": _iso(at), "userAgent": "Mozilla/5.0", "ipAddress": "198.51.100.7"},
        }

    def delay(self, at: datetime) -> dict[str, Any]:
        return {
            "eventType": "DeliveryDelay",
            "mail": self.mail,
            "deliveryDelay": {
                "timestamp": _iso(at),
                "delayType": "MailboxFull",
                "expirationTime": _iso(at),
                "delayedRecipients": [{"emailAddress": r, "status": "4.2.2"} for r in self.recipients],
            },
        }


def _event_at(event: Mapping[str, Any]) -> str:
    for key in ("bounce", "complaint", "delivery", "deliveryDelay", "open"):
        if key in event:
            return event[key]["timestamp"]
    return event["mail"]["timestamp"]


def load_events(
    warehouse_path: Path, events: Iterable[Mapping[str, Any]], *, source_key: str = "test/events"
) -> int:
    """Insert events as ingest stores bare SES JSON (event_id = md5 of the minified JSON)."""
    from bouncehouse import warehouse

    rows = []
    for position, event in enumerate(events, start=1):
        text = json.dumps(event, separators=(",", ":"))
        at = datetime.strptime(_event_at(event), "%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append(
            (
                hashlib.md5(text.encode()).hexdigest(),
                event["eventType"],
                event["mail"]["messageId"],
                at,
                source_key,
                text,
                position,
            )
        )
    with warehouse.session(warehouse_path, lock_timeout=30) as con:
        con.executemany(
            """
            insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload, loaded_at, source_position)
            values (?, ?, ?, ?, ?, ?::json, now()::timestamp, ?)
            """,
            rows,
        )
    return len(rows)
