"""SNS, S3 and SES messages that are valid but are not SES sending feedback: each is set aside in
``raw.rejected_records`` with a reason that names what it is (contract: "an SNS record that is not SES
feedback, such as a SubscriptionConfirmation, is set aside with a reason naming it"), and nothing it
links to is ever fetched. The messages are real public samples (samples/SOURCES.md)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import duckdb
import pytest
from bouncehouse.ingest.read import ROWS_DDL, read_fast, read_per_record
from bouncehouse.ingest.stage import StagedObject
from landing_builder import encode, envelope, object_bytes, record_offsets, ses_event, write_object

SAMPLES = Path(__file__).parent / "samples"
HOUR = "2026/11/20/10"

# The reasons an operator reads: a stable prefix, then what the record is.
SUBSCRIPTION = (
    "sns_subscription_confirmation: an SNS SubscriptionConfirmation, not SES feedback "
    "(its SubscribeURL is never fetched)"
)
UNSUBSCRIBE = (
    "sns_unsubscribe_confirmation: an SNS UnsubscribeConfirmation, not SES feedback "
    "(its SubscribeURL is never fetched)"
)
S3 = "s3_notification: an S3 event notification (or S3's test event), not SES feedback"
SES_SETUP = "ses_setup_notification: SES confirming it can publish to this SNS topic, not SES feedback"
SES_INBOUND = (
    "ses_inbound_received: an SES inbound receipt notification (an email SES received), not sending feedback"
)


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def s3_via_sns(name: str, sns_id: str) -> dict:
    """A bare S3 message as S3 publishes it to a topic: the JSON as the envelope's Message."""
    return envelope(sample(name), sns_id)


# (record, why it is set aside) in the order they sit in the object.
NOT_FEEDBACK = [
    (sample("24_sns_subscription_confirmation.json"), SUBSCRIPTION),
    (sample("33_sns_subscription_confirmation_captured.json"), SUBSCRIPTION),
    (sample("26_sns_unsubscribe_confirmation.json"), UNSUBSCRIBE),
    (s3_via_sns("29_s3_test_event.json", "sns-s3-test"), S3),
    (s3_via_sns("30_s3_object_created_put.json", "sns-s3-put"), S3),
    (sample("39_sns_ses_event_destination_setup_notice.json"), SES_SETUP),
    (sample("sns_envelope_ses_subscription_succeeded.json"), SES_SETUP),
    (sample("22_recv_sns_action.json"), SES_INBOUND),  # bare, as raw message delivery writes it
    (sample("32_sns_envelope_received_s3_action.json"), SES_INBOUND),
]
FEEDBACK = [
    envelope(ses_event("Send", "m-1"), "sns-send-1"),
    sample("31_sns_envelope_bounce_onaccountsuppressionlist.json"),  # a real Bounce: it loads
]
BROKEN = b'{"eventType":"Delivery","mail":{"messageId":"m-1"'  # cut off: forces the per-record path


def object_records() -> list:
    """Feedback first and last, the records to set aside between them."""
    return [FEEDBACK[0], *(record for record, _ in NOT_FEEDBACK), FEEDBACK[1]]


def expected_rejected(key: str, records: list) -> list[tuple]:
    """The rows the contract asks for: where each record to set aside sits, why, and its start."""
    offsets = record_offsets(records)
    reasons = {id(record): reason for record, reason in NOT_FEEDBACK}
    return [
        (key, position, offsets[position - 1], reasons[id(record)], encode(record).decode()[:200])
        for position, record in enumerate(records, start=1)
        if id(record) in reasons
    ]


def test_not_feedback_is_set_aside_by_name_on_both_paths(lake):
    """One object DuckDB can read whole (nothing in it is broken; its set-aside records are then located
    record by record for their byte offsets), one with a cut-off record that only the record-by-record
    path can split: the same records, the same reasons, exact counts."""
    records = object_records()
    write_object(lake.landing, f"{HOUR}/clean", records)
    write_object(lake.landing, f"{HOUR}/with-broken", [*records, BROKEN])

    counts = lake.ingest()

    assert {k: counts[k] for k in ("objects_loaded", "events_loaded", "duplicates", "rejected")} == {
        "objects_loaded": 2,
        "events_loaded": 2,  # the Send and the Bounce, once: the second object's copies are duplicates
        "duplicates": 2,
        "rejected": 2 * len(NOT_FEEDBACK) + 1,
    }
    rejected = lake.rows(
        "select source_key, position, byte_offset, error, excerpt from raw.rejected_records "
        "order by source_key, position"
    )
    clean = expected_rejected(f"{HOUR}/clean", records)
    with_broken = expected_rejected(f"{HOUR}/with-broken", records)
    assert rejected[: len(clean)] == clean
    assert rejected[len(clean) : -1] == with_broken
    broken_row = rejected[-1]
    assert broken_row[:3] == (f"{HOUR}/with-broken", len(records) + 1, len(object_bytes(records)))
    assert broken_row[3].startswith("not_json: ")

    loaded = lake.rows("select event_id, event_type, source_key from raw.ses_events order by event_type")
    bounce_id = FEEDBACK[1]["MessageId"]
    assert loaded == [(bounce_id, "Bounce", f"{HOUR}/clean"), ("sns-send-1", "Send", f"{HOUR}/clean")]
    ledger = lake.rows("select key, records, events_loaded, rejected from raw.ingested_objects order by key")
    assert ledger == [
        (f"{HOUR}/clean", len(records), 2, len(NOT_FEEDBACK)),
        (f"{HOUR}/with-broken", len(records) + 1, 0, len(NOT_FEEDBACK) + 1),
    ]


@pytest.mark.parametrize("reader", ["whole", "record_by_record"])
def test_each_reader_names_the_records_alike(tmp_path, reader):
    """Below ingest: DuckDB's whole-object read and the Python split classify each record the same."""
    records = object_records()
    path = tmp_path / "obj"
    path.write_bytes(object_bytes(records))
    staged = StagedObject(
        obj=0, key="obj", path=path, size=path.stat().st_size, etag=None, checksum=None,
        last_modified=None, compression="none", framing="newline", times_loaded=1,
    )  # fmt: skip
    con = duckdb.connect()
    con.execute(ROWS_DDL)
    if reader == "whole":
        assert read_fast(con, [staged]) == set()  # DuckDB read all of it
    else:
        read_per_record(con, staged)

    reasons = {id(record): reason for record, reason in NOT_FEEDBACK}
    assert con.execute("select ord, reject from ingest_rows order by ord").fetchall() == [
        (position, reasons.get(id(record))) for position, record in enumerate(records, start=1)
    ]


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_subscribe_url_is_never_fetched(lake):
    """A SubscriptionConfirmation whose SubscribeURL points at a live server: the server hears nothing."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/?Action=ConfirmSubscription&Token=t"
        confirmation = {
            **envelope("subscribe?", "sns-sub", kind="SubscriptionConfirmation"),
            "SubscribeURL": url,
        }
        write_object(lake.landing, f"{HOUR}/sub", [confirmation, envelope(ses_event("Send", "m-1"), "sns-1")])

        counts = lake.ingest()
    finally:
        server.shutdown()
        server.server_close()
    assert (counts["events_loaded"], counts["rejected"]) == (1, 1)
    assert lake.rows("select error from raw.rejected_records") == [(SUBSCRIPTION,)]
    assert _CountingHandler.hits == []
