"""Hand-made landing objects for the ingest tests: SES events, SNS envelopes and Firehose objects
in every shape (gzip or not, whatever the name; newline-separated or back to back)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

# eventType -> the key of its detail object (the one holding the event's own timestamp)
DETAIL_KEYS = {
    "Send": "send",
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "Rendering Failure": "failure",
    "DeliveryDelay": "deliveryDelay",
    "Open": "open",
    "Click": "click",
    "Subscription": "subscription",
}
TIMED = {"delivery", "bounce", "complaint", "deliveryDelay", "open", "click", "subscription"}


def ses_event(
    event_type: str = "Delivery",
    message_id: str = "m-1",
    *,
    sent_at: str = "2026-11-20T10:00:00.000Z",
    at: str = "2026-11-20T10:00:05.000Z",
    identity: bool = False,
    recipient: str = "rosa@example.org",
    **extra: Any,
) -> dict[str, Any]:
    """An SES event-publishing record (``eventType``) or identity notification (``notificationType``)."""
    detail_key = DETAIL_KEYS.get(event_type, event_type[:1].lower() + event_type[1:].replace(" ", ""))
    detail: dict[str, Any] = {"recipients": [recipient]} if detail_key != "send" else {}
    if detail_key in TIMED or detail_key not in DETAIL_KEYS.values():
        detail["timestamp"] = at
    event = {
        ("notificationType" if identity else "eventType"): event_type,
        "mail": {
            "timestamp": sent_at,
            "messageId": message_id,
            "source": "Acme <news@acme.example>",
            "destination": [recipient],
            "tags": {"campaign": ["spring"]},
        },
        detail_key: detail,
    }
    event.update(extra)
    return event


def envelope(message: dict[str, Any] | str, sns_id: str, *, kind: str = "Notification") -> dict[str, Any]:
    """The SNS envelope around an SES JSON (``Message`` is the JSON as a string)."""
    text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    return {
        "Type": kind,
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Message": text,
        "Timestamp": "2026-11-20T10:00:06.000Z",
        "SignatureVersion": "1",
    }


def encode(record: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode()
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def object_bytes(records: list[Any], *, gzipped: bool = False, framing: str = "newline") -> bytes:
    separator = b"\n" if framing == "newline" else b""
    body = separator.join(encode(r) for r in records) + separator
    return gzip.compress(body, mtime=0) if gzipped else body


def write_object(
    root: Path, key: str, records: list[Any], *, gzipped: bool = False, framing: str = "newline"
) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(object_bytes(records, gzipped=gzipped, framing=framing))
    return path


def bare_event_id(event: dict[str, Any]) -> str:
    """event_id of an event without an envelope: md5 of its minified JSON (as DuckDB's json() writes it)."""
    return hashlib.md5(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def record_offsets(records: list[Any], *, framing: str = "newline") -> list[int]:
    """Where each record starts in the (uncompressed) object that object_bytes writes."""
    separator = 1 if framing == "newline" else 0
    offsets, at = [], 0
    for record in records:
        offsets.append(at)
        at += len(encode(record)) + separator
    return offsets
