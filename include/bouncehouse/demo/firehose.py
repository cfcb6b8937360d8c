"""What SNS and Kinesis Data Firehose do to SES events on their way to S3, for ``generate``.

SNS wraps most events in an envelope (and now and then delivers one twice); Firehose buffers records
by arrival time into objects under ``YYYY/MM/DD/HH/`` (UTC arrival hour), gzips some, separates
records with newlines or not at all, and after a partial failure writes a run of records again in
a later object. A few records are broken. The writer counts exactly what it puts on disk.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bouncehouse.demo.ses import ACCOUNT_ID, HOUR, MINUTE, REGION, SECOND, Event, iso_ms

log = logging.getLogger(__name__)

STREAM_NAME = "bouncehouse-ses"
EVENTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:bouncehouse-ses-events"
NOTIFICATIONS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:bouncehouse-ses-notifications"
SIGNING_CERT_URL = (
    f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
)
EVENT_SUBJECT = "Amazon SES Email Event Notification"

P_ENVELOPE = 0.8  # event publishing through SNS; the rest reaches Firehose bare
P_SNS_DUPLICATE = 0.002  # SNS is at-least-once: the same envelope again, in a later object
P_FIREHOSE_RETRY = 0.03  # objects whose tail is written again at the head of the next object
P_MALFORMED = 0.04  # objects holding one broken record
OBJECT_RECORDS = (300, 3000)  # Firehose buffer size, in records

FORMATS = ("gzip", "gzip_no_ext", "plain")
FORMAT_WEIGHTS = (0.55, 0.25, 0.2)
FRAMINGS = ("newline", "concatenated")
# The first objects cycle through every shape so that even a tiny tree holds them all.
FIRST_SHAPES = (
    ("gzip", "newline"), ("plain", "concatenated"), ("gzip_no_ext", "concatenated"),
    ("gzip", "concatenated"), ("plain", "newline"), ("gzip_no_ext", "newline"),
)  # fmt: skip
MALFORMED_KINDS = ("not_json", "invalid_utf8", "message_not_json", "no_ses_type")
DUPLICATE_KINDS = ("sns", "firehose_retry")


@dataclass(slots=True)
class EventMeta:
    event_seq: int
    message_seq: int | None
    recipients: int
    type: str
    envelope: bool
    identity: bool


@dataclass(slots=True)
class Record:
    arrival_ms: int
    order: int
    data: bytes
    meta: EventMeta | str  # str: the kind of malformed record
    sns_duplicate: bool = False


def arrival_lag_ms(rng: random.Random) -> int:
    """Event time to S3 arrival: mostly the Firehose buffer (minutes), sometimes much later."""
    roll = rng.random()
    if roll < 0.85:
        return rng.randint(15 * SECOND, 5 * MINUTE)
    if roll < 0.98:
        return rng.randint(5 * MINUTE, HOUR)
    return rng.randint(HOUR, 4 * HOUR)


@dataclass
class Tally:
    objects: int = 0
    records: int = 0
    bytes: int = 0
    events: int = 0
    messages: int = 0
    recipients: int = 0
    envelopes: int = 0
    bare: int = 0
    identity_notifications: int = 0
    events_by_type: Counter = field(default_factory=Counter)
    duplicates_by_kind: Counter = field(default_factory=lambda: Counter(dict.fromkeys(DUPLICATE_KINDS, 0)))
    malformed_by_kind: Counter = field(default_factory=lambda: Counter(dict.fromkeys(MALFORMED_KINDS, 0)))
    objects_by_format: Counter = field(default_factory=lambda: Counter(dict.fromkeys(FORMATS, 0)))
    objects_by_framing: Counter = field(default_factory=lambda: Counter(dict.fromkeys(FRAMINGS, 0)))
    seen_events: bytearray = field(default_factory=bytearray)
    seen_messages: bytearray = field(default_factory=bytearray)

    def count(self, record: Record, copy_kind: str | None) -> None:
        self.records += 1
        meta = record.meta
        if isinstance(meta, str):
            self.malformed_by_kind[meta] += 1
            return
        if _test_and_set(self.seen_events, meta.event_seq):
            self.duplicates_by_kind[copy_kind or "firehose_retry"] += 1
            return
        self.events += 1
        self.events_by_type[meta.type] += 1
        self.envelopes += meta.envelope
        self.bare += not meta.envelope
        self.identity_notifications += meta.identity
        if meta.message_seq is not None and not _test_and_set(self.seen_messages, meta.message_seq):
            self.messages += 1
            self.recipients += meta.recipients

    def as_dict(self) -> dict:
        return {
            "objects": self.objects,
            "records": self.records,
            "events": self.events,
            "messages": self.messages,
            "recipients": self.recipients,
            "bytes": self.bytes,
            "duplicates": sum(self.duplicates_by_kind.values()),
            "duplicates_by_kind": dict(self.duplicates_by_kind),
            "malformed": sum(self.malformed_by_kind.values()),
            "malformed_by_kind": dict(self.malformed_by_kind),
            "envelopes": self.envelopes,
            "bare": self.bare,
            "identity_notifications": self.identity_notifications,
            "events_by_type": dict(sorted(self.events_by_type.items())),
            "objects_by_format": dict(self.objects_by_format),
            "objects_by_framing": dict(self.objects_by_framing),
        }


def _test_and_set(bits: bytearray, index: int) -> bool:
    """True when ``index`` was already set; sets it. A bitmap keeps a million ids in 125 kB."""
    byte, bit = divmod(index, 8)
    if byte >= len(bits):
        bits.extend(bytes(byte - len(bits) + 4096))
    mask = 1 << bit
    was = bool(bits[byte] & mask)
    bits[byte] |= mask
    return was


class FirehoseWriter:
    """Wraps events as SNS would, then writes them as Firehose objects, one arrival hour at a time."""

    def __init__(self, out: Path, rng: random.Random, *, end_ms: int) -> None:
        self.out = out
        self.rng = rng
        self.end_ms = end_ms
        self.tally = Tally()
        self._order = 0
        self._carry: list[tuple[Record, str]] = []  # records to write again at the head of the next object
        self._shapes = list(FIRST_SHAPES)
        self._malformed_due = list(MALFORMED_KINDS)
        self._retry_due = True
        self._sns_duplicate_due = True
        self._unsubscribe_url = f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={EVENTS_TOPIC}:{self._uuid()}"
        self._setup_notice_due = True

    # --- SNS ------------------------------------------------------------------------------
    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _envelope(
        self, message: str, published_ms: int, *, identity: bool, kind: str = "Notification"
    ) -> str:
        signature = base64.b64encode(self.rng.getrandbits(2048).to_bytes(256, "big")).decode()
        topic = NOTIFICATIONS_TOPIC if identity else EVENTS_TOPIC
        subject = "" if identity else f'"Subject":"{EVENT_SUBJECT}",'
        return (
            f'{{"Type":"{kind}","MessageId":"{self._uuid()}","TopicArn":"{topic}",{subject}'
            f'"Message":{json.dumps(message, ensure_ascii=False)},"Timestamp":"{iso_ms(published_ms)}",'
            f'"SignatureVersion":"1","Signature":"{signature}","SigningCertURL":"{SIGNING_CERT_URL}",'
            f'"UnsubscribeURL":"{self._unsubscribe_url}"}}'
        )

    def wrap(
        self, event: Event, *, event_seq: int, message_seq: int | None, recipients: int
    ) -> Record | None:
        """The record Firehose receives for ``event``, or None when it arrives after the period ends."""
        rng = self.rng
        envelope = event.identity or rng.random() < P_ENVELOPE
        if envelope:
            published = event.at_ms + rng.randint(20, 1500)
            text = self._envelope(event.text, published, identity=event.identity)
        else:
            published = event.at_ms
            text = event.text
        arrival = published + arrival_lag_ms(rng)
        if arrival >= self.end_ms:
            return None  # not landed yet when the simulated period ends
        self._order += 1
        meta = EventMeta(event_seq, message_seq, recipients, event.type, envelope, event.identity)
        duplicate = envelope and (self._sns_duplicate_due or rng.random() < P_SNS_DUPLICATE)
        self._sns_duplicate_due = self._sns_duplicate_due and not duplicate
        return Record(arrival, self._order, text.encode(), meta, duplicate)

    def setup_notice(self, at_ms: int, event_seq: int) -> Record:
        """SES's own notice when feedback notifications are switched on: an SES type but no mail, and
        not feedback, so ingest sets it aside (ses_setup_notification)."""
        message = json.dumps(
            {
                "notificationType": "AmazonSnsSubscriptionSucceeded",
                "message": f"You have successfully subscribed your Amazon SNS topic '{NOTIFICATIONS_TOPIC}' to receive "
                "'Bounce' notifications from Amazon SES for identity 'legacy.acme.example'.",
            },
            separators=(",", ":"),
        )
        self._order += 1
        envelope = self._envelope(message, at_ms, identity=True).encode()
        return Record(at_ms, self._order, envelope, "ses_setup_notification")

    # --- broken records -----------------------------------------------------------------------
    def _malformed(self, kind: str, framing: str, at_ms: int) -> bytes:
        rng = self.rng
        if kind == "not_json":
            if framing == "newline":  # cut off mid-record
                whole = self._envelope('{"eventType":"Send","send":{}}', at_ms, identity=False)
                return whole[: rng.randint(40, len(whole) - 40)].encode()
            # Braces balanced, so the record boundary is clear, but the keys are not quoted.
            return (
                f'{{Type:"Notification",MessageId:"{self._uuid()}",Message:"truncated by producer"}}'.encode()
            )
        if kind == "invalid_utf8":  # a Latin-1 subject in an otherwise well-formed event
            body = (
                f'{{"eventType":"Send","send":{{}},"mail":{{"timestamp":"{iso_ms(at_ms)}",'
                f'"messageId":"0100{at_ms:012x}-{self._uuid()}-000000","source":"Acme Billing <billing@acme.example>",'
                '"destination":["rosa.berg@example.org"],"commonHeaders":{"subject":"Caf__ receipt"}}}'
            )
            return body.encode().replace(b"__", b"\xe9")
        if kind == "message_not_json":
            text = "Successfully validated SNS topic for Amazon SES event publishing."
            return self._envelope(text, at_ms, identity=False).encode()
        if rng.random() < 0.5:  # no_ses_type: an SNS subscription handshake
            token = f"{self.rng.getrandbits(512):0128x}"
            text = f"You have chosen to subscribe to the topic {EVENTS_TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message."  # fmt: skip
            envelope = self._envelope(text, at_ms, identity=False, kind="SubscriptionConfirmation")
            extra = f',"Token":"{token}","SubscribeURL":"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={EVENTS_TOPIC}&Token={token}"}}'  # fmt: skip
            return (envelope[:-1] + extra).encode()
        # ...or the demo record of Firehose's "test with demo data" button.
        return b'{"ticker_symbol":"QXZ","sector":"HEALTHCARE","change":-0.05,"price":84.51}'

    # --- objects ----------------------------------------------------------------------------
    def write_hour(self, records: list[Record]) -> None:
        """Write one arrival hour's records (any order) as consecutive Firehose objects."""
        records.sort(key=lambda r: (r.arrival_ms, r.order))
        start = 0
        while start < len(records):
            size = self.rng.randint(*OBJECT_RECORDS)
            self._write_object(records[start : start + size])
            start += size

    def _next_shape(self) -> tuple[str, str]:
        if self._shapes:
            return self._shapes.pop(0)
        fmt = self.rng.choices(FORMATS, FORMAT_WEIGHTS)[0]
        return fmt, self.rng.choice(FRAMINGS)

    def _write_object(self, chunk: list[Record]) -> None:
        rng = self.rng
        fmt, framing = self._next_shape()
        first_ms = chunk[0].arrival_ms
        carried = len(self._carry)
        entries: list[tuple[Record, str | None]] = [*self._carry, *((r, None) for r in chunk)]
        self._carry = []

        if self._malformed_due or rng.random() < P_MALFORMED:
            kind = self._malformed_due.pop(0) if self._malformed_due else rng.choice(MALFORMED_KINDS)
            self._order += 1
            broken = Record(first_ms, self._order, self._malformed(kind, framing, first_ms), kind)
            entries.insert(rng.randint(carried, len(entries)), (broken, None))

        # At-least-once delivery: SNS duplicates and a Firehose retry land in the next object.
        for record in chunk:
            if record.sns_duplicate:
                self._carry.append((record, "sns"))
        if len(entries) >= 2 and (self._retry_due or rng.random() < P_FIREHOSE_RETRY):
            self._retry_due = False
            run = rng.randint(1, min(len(entries), 100))
            begin = rng.randint(0, len(entries) - run)
            self._carry[:0] = [(record, "firehose_retry") for record, _ in entries[begin : begin + run]]

        separator = b"\n" if framing == "newline" else b""
        body = separator.join(record.data for record, _ in entries) + separator
        data = gzip.compress(body, compresslevel=3, mtime=0) if fmt != "plain" else body
        key = self._key(first_ms, gz=fmt == "gzip")
        path = self.out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

        tally = self.tally
        tally.objects += 1
        tally.bytes += len(data)
        tally.objects_by_format[fmt] += 1
        tally.objects_by_framing[framing] += 1
        for record, copy_kind in entries:
            tally.count(record, copy_kind)

    def _key(self, at_ms: int, *, gz: bool) -> str:
        stamp = iso_ms(at_ms)  # 2026-11-20T10:05:12.345Z
        day, clock = stamp[:10], stamp[11:19]
        yyyy, mm, dd = day.split("-")
        hh, mi, ss = clock.split(":")
        name = f"{STREAM_NAME}-1-{yyyy}-{mm}-{dd}-{hh}-{mi}-{ss}-{self._uuid()}" + (".gz" if gz else "")
        return f"{yyyy}/{mm}/{dd}/{hh}/{name}"
