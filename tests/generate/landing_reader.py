"""Reads a landing tree back with the standard library only, independently of the generator's code,
applying the contract's rules: gzip detected by content, records split by newlines or at `}{`,
event identity = SNS MessageId or the SES JSON itself, addresses normalised."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path

KEY_PATTERN = re.compile(
    r"^(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"bouncehouse-ses-1-(?P=y)-(?P=m)-(?P=d)-(?P=h)-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?P<ext>\.gz)?$"
)


def normalise(address: str) -> str:
    return parseaddr(address.strip())[1].strip().lower()


def split_records(body: bytes) -> tuple[str, list[bytes]]:
    """Compact JSON never holds a raw newline, so an object with one is newline-delimited;
    otherwise records are back to back and end where the top-level braces close."""
    if b"\n" in body:
        return "newline", [line for line in body.split(b"\n") if line.strip()]
    records, depth, in_string, escaped, begin = [], 0, False, False, 0
    for index, byte in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                records.append(body[begin : index + 1])
                begin = index + 1
    if body[begin:].strip():
        records.append(body[begin:])
    return "concatenated", records


@dataclass
class Event:
    event_id: str
    envelope: bool
    ses: dict
    key: str
    arrival_hour: datetime
    published: str | None = None  # the envelope's Timestamp (SNS publish time)

    @property
    def type(self) -> str:
        return self.ses.get("eventType") or self.ses.get("notificationType")

    @property
    def at(self) -> datetime:
        body_key = {"DeliveryDelay": "deliveryDelay", "Rendering Failure": "failure"}.get(
            self.type, self.type.lower()
        )
        stamp = (self.ses.get(body_key) or {}).get("timestamp") or self.ses.get("mail", {}).get("timestamp")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)


@dataclass
class Landing:
    files: dict[str, bytes] = field(default_factory=dict)  # relative key -> raw bytes
    shapes: Counter = field(default_factory=Counter)
    records: int = 0
    rejected: Counter = field(default_factory=Counter)
    copies: Counter = field(default_factory=Counter)  # event_id -> times seen
    keys: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # event_id -> objects
    events: dict[str, Event] = field(default_factory=dict)  # first copy of each distinct event
    bad_keys: list[str] = field(default_factory=list)

    def messages(self) -> dict[str, list[Event]]:
        by_message: dict[str, list[Event]] = defaultdict(list)
        for event in self.events.values():
            message_id = event.ses.get("mail", {}).get("messageId")
            if message_id:
                by_message[message_id].append(event)
        return by_message


def read_landing(root: Path) -> Landing:
    landing = Landing()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        landing.files[key] = raw
        match = KEY_PATTERN.match(key)
        if not match:
            landing.bad_keys.append(key)
            continue
        gzipped = raw[:2] == b"\x1f\x8b"
        body = gzip.decompress(raw) if gzipped else raw
        framing, records = split_records(body)
        fmt = ("gzip" if match["ext"] else "gzip_no_ext") if gzipped else "plain"
        landing.shapes[(fmt, framing)] += 1
        if match["ext"] and not gzipped:
            landing.bad_keys.append(key)
        arrival_hour = datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]))
        for record in records:
            landing.records += 1
            _read_record(landing, record, key, arrival_hour)
    return landing


def _read_record(landing: Landing, record: bytes, key: str, arrival_hour: datetime) -> None:
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        landing.rejected["invalid_utf8"] += 1
        return
    try:
        outer = json.loads(text)
    except ValueError:
        landing.rejected["not_json"] += 1
        return
    # Only a Notification carries an SES event; a SubscriptionConfirmation is JSON with no SES type.
    envelope = isinstance(outer, dict) and outer.get("Type") == "Notification" and "Message" in outer
    if envelope:
        try:
            ses = json.loads(outer["Message"])
        except ValueError:
            landing.rejected["message_not_json"] += 1
            return
        event_id = outer["MessageId"]
    else:
        ses = outer
        event_id = hashlib.md5(json.dumps(ses, separators=(",", ":")).encode()).hexdigest()
    if not isinstance(ses, dict) or not (
        ses.get("eventType") or ses.get("notificationType") or (ses.get("mail") or {}).get("messageId")
    ):
        landing.rejected["no_ses_type"] += 1
        return
    landing.copies[event_id] += 1
    landing.keys[event_id].append(key)
    published = outer.get("Timestamp") if envelope else None
    landing.events.setdefault(event_id, Event(event_id, envelope, ses, key, arrival_hour, published))
