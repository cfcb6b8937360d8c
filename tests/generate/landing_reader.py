"""Reads a landing tree back with the standard library only, independently of the generator's code,
applying the contract's rules: gzip detected by content, records split by newlines or at `}{`
(a back-to-back record that is not JSON ends where the next record starts),
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


_BLANK = re.compile(r"[ \t\r\n]*")
RECORD_KEYS = ("Type", "eventType", "notificationType", "mail")


def split_records(body: bytes) -> tuple[str, list[bytes]]:
    """Compact JSON never holds a raw newline, so an object with one is newline-delimited;
    otherwise records are back to back and end where the top-level braces close. A back-to-back
    record that is not JSON (cut off, so its braces never close, or close in the wrong place when it
    was cut inside a string) ends where the next record starts: the first later `{` where an object
    with a record's key (Type, eventType, notificationType, mail) decodes; at the latest where its
    braces close, when another `{` or the end follows."""
    if b"\n" in body:
        return "newline", [line for line in body.split(b"\n") if line.strip()]
    # Latin-1 maps each byte to one character: indexes are byte offsets, and JSON's structure (all
    # ASCII) parses the same as in UTF-8, whatever bytes the strings hold.
    text = body.decode("latin-1")
    records, begin = [], _BLANK.match(text).end()
    while begin < len(text):
        end = _braces_close(body, begin)
        try:
            json.loads(text[begin:end])
        except (ValueError, RecursionError):
            # It ends at the first record start inside it, else where its braces close if a record
            # may start there, else at the next record start.
            after = _BLANK.match(text, end).end()
            closes = text[end - 1] == "}" and (after == len(text) or text[after] == "{")
            end = _next_record_start(text, begin + 1, end if closes else len(text))
        records.append(body[begin:end])
        begin = _BLANK.match(text, end).end()
    return "concatenated", records


def _braces_close(body: bytes, begin: int) -> int:
    """Just after the `}` that brings the braces opened from `begin` back to depth 0, else the end."""
    depth, in_string, escaped = 0, False, False
    for index in range(begin, len(body)):
        byte = body[index]
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
                return index + 1
    return len(body)


def _next_record_start(text: str, after: int, limit: int) -> int:
    decoder = json.JSONDecoder()
    at = text.find("{", after, limit)
    while at != -1:
        try:
            value, _ = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and any(key in value for key in RECORD_KEYS):
            return at
        at = text.find("{", at + 1, limit)
    return limit


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
        # The minified SES JSON as UTF-8 (not \u-escaped), as ingest hashes it.
        event_id = hashlib.md5(
            json.dumps(ses, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
    if isinstance(ses, dict) and ses.get("notificationType") == "AmazonSnsSubscriptionSucceeded":
        landing.rejected["ses_setup_notification"] += 1  # SES's setup notice: not feedback
        return
    if not isinstance(ses, dict) or not (
        ses.get("eventType") or ses.get("notificationType") or (ses.get("mail") or {}).get("messageId")
    ):
        landing.rejected["no_ses_type"] += 1
        return
    landing.copies[event_id] += 1
    landing.keys[event_id].append(key)
    published = outer.get("Timestamp") if envelope else None
    landing.events.setdefault(event_id, Event(event_id, envelope, ses, key, arrival_hour, published))
