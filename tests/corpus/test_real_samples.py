"""Real public SES and SNS samples (tests/corpus/samples, sources in SOURCES.md there) through the real
pipeline: arranged as Firehose objects in a landing folder, then ``bouncehouse.ingest.ingest`` and
``bouncehouse.transform.transform``, once for the module. Every expected row below is written by hand
from the product contract, CONTRACT.md (its Input, Warehouse and Rules sections), with the rule beside
it; where the contract leaves a point open, the comment says so and which documented choice of the dbt
models' YAML the row follows.

The samples' quirks, and what the contract makes of them:

- The AWS event-publishing examples 01-09 all carry the same mail.messageId (``MSG_DOCS``), so they
  are nine events of one message: its recipients are recipient@example.com (every sample's
  destination) and sender@example.com (the Reject sample's destination).
- 01 (Bounce) and 02 (Complaint) share a feedbackId. The contract keys a bounce, and a complaint, by
  feedbackId + recipient: a bounce and a complaint are different feedback, so both count.
- 31 and 34 (mozilla fixtures) are one bounce hand-edited into two: same SNS MessageId, same
  feedbackId, same recipient, different type. 31 stays an envelope; 34 is loaded bare (its Message),
  so ses_events holds both (different JSON, no shared SNS MessageId), and downstream they are one
  bounce (same feedbackId + recipient), whose status is the highest of the two (hard).
- The identity samples 11-14 are multi-recipient messages whose events name only some recipients;
  the others are still recipients (mail.destination), with status ``sent``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("corpus")]

SAMPLES = Path(__file__).resolve().parent / "samples"
AS_OF = datetime(2022, 1, 25)  # a week after the latest SES sample (31/34: 2022-01-18)
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

# mail.messageId of each sample message (copied from the samples by hand).
MSG_DOCS = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"  # 01-09
MSG_SUBSCRIPTION = "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000"  # 10
MSG_BOUNCE_DSN = "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"  # 11
MSG_BOUNCE_NO_DSN = "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000"  # 12
MSG_COMPLAINT_FEEDBACK = "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"  # 13
MSG_COMPLAINT_NO_FEEDBACK = "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000"  # 14
MSG_DELIVERY = "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"  # 15
MSG_RELAY = "0100017e6dde5594-4912fac5-bd85-4358-98d4-7b8d8b89fc60-000000"  # 31, 34
MSG_SUPPRESSED = "000001438fa3405c-0320ffd1-faa9-4b29-9305-c53432279b7c-000000"  # 35
MSG_EXPIRED = "0102017628e5910e-f8d2fba5-c25f-4109-8571-246ca3c983b2-000000"  # 38
# The inbound (Received) samples' mail.messageId: never an SES feedback message.
MSG_INBOUND = ("d6iitobk75ur44p8kdnnp7g2n800", "objectkey123")  # 22 and 23; 32


# --- arranging the samples as Firehose objects ---------------------------------------------------


def sample_text(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def record(name: str) -> str:
    """A sample as one Firehose record: its JSON minified (content unchanged), as Firehose writes it."""
    return json.dumps(json.loads(sample_text(name)), separators=(",", ":"), ensure_ascii=False)


def in_envelope(name: str, sns_message_id: str, *, subject: str | None = None) -> str:
    """A bare sample in the SNS envelope SNS wraps it in (``Message`` = the JSON as a string)."""
    envelope: dict[str, Any] = {"Type": "Notification", "MessageId": sns_message_id, "TopicArn": TOPIC}
    if subject is not None:
        envelope["Subject"] = subject
    envelope |= {
        "Message": record(name),
        "Timestamp": "2022-01-20T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def message_of(name: str) -> str:
    """The SES JSON inside an envelope sample, as it would arrive with raw message delivery."""
    return json.loads(sample_text(name))["Message"]


EVENT_SUBJECT = "Amazon SES Email Event Notification"
# Key -> (records, framing, gzipped). The (1-based) position of each record in its object is what
# rejected_records names.
OBJECTS: dict[str, tuple[list[str], str, bool]] = {
    # Newline-separated, plain: event publishing through SNS, and SNS's own subscription messages.
    "2022/01/20/10/ses-feedback-1-2022-01-20-10-00-00-a": (
        [
            in_envelope("01_evt_bounce.json", "corpus-sns-01", subject=EVENT_SUBJECT),
            in_envelope("02_evt_complaint.json", "corpus-sns-02", subject=EVENT_SUBJECT),
            in_envelope("03_evt_delivery.json", "corpus-sns-03", subject=EVENT_SUBJECT),
            in_envelope("04_evt_send.json", "corpus-sns-04", subject=EVENT_SUBJECT),
            in_envelope("05_evt_reject.json", "corpus-sns-05", subject=EVENT_SUBJECT),
            record("24_sns_subscription_confirmation.json"),  # 6
            record("26_sns_unsubscribe_confirmation.json"),  # 7
        ],
        "newline",
        False,
    ),
    # gzip (no .gz in the name: detected by content), newline-separated: bare event publishing (SES
    # writing to Firehose directly), an S3 test event and an inbound notification through SNS.
    "2022/01/20/11/ses-feedback-1-2022-01-20-11-00-00-b": (
        [
            record("06_evt_open.json"),
            record("07_evt_click.json"),
            record("08_evt_rendering_failure.json"),
            record("09_evt_delivery_delay.json"),
            record("10_evt_subscription.json"),
            in_envelope("29_s3_test_event.json", "corpus-sns-29", subject="Amazon S3 Notification"),  # 6
            in_envelope(
                "22_recv_sns_action.json", "corpus-sns-22", subject="Amazon SES Email Receipt Notification"
            ),  # 7
        ],
        "newline",
        True,
    ),
    # Back to back (`}{`): bare identity notifications (raw message delivery), a bare inbound alert and
    # an S3 event through SNS.
    "2022/01/21/09/ses-feedback-1-2022-01-21-09-00-00-c": (
        [
            record("11_notif_bounce_with_dsn.json"),
            record("12_notif_bounce_no_dsn.json"),
            record("13_notif_complaint_with_feedback.json"),
            record("14_notif_complaint_no_feedback.json"),
            record("15_notif_delivery.json"),
            record("23_recv_s3_action_alert.json"),  # 6
            in_envelope(
                "30_s3_object_created_put.json", "corpus-sns-30", subject="Amazon S3 Notification"
            ),  # 7
        ],
        "concatenated",
        False,
    ),
    # SNS -> Firehose -> S3 exactly as the SNS guide shows it (three envelopes of plain-text Messages).
    "2022/01/21/10/sns-archive-2022-01-21-10-00-00-d": (
        sample_text("28_sns_firehose_s3_archived_batch.ndjson").splitlines(),
        "newline",
        False,
    ),
    # Newline-separated: captured envelopes, bare identity notifications, and two redeliveries.
    "2022/01/22/08/ses-feedback-1-2022-01-22-08-00-00-e": (
        [
            record("31_sns_envelope_bounce_onaccountsuppressionlist.json"),
            record("33_sns_subscription_confirmation_captured.json"),  # 2
            record("32_sns_envelope_received_s3_action.json"),  # 3
            record("39_sns_ses_event_destination_setup_notice.json"),  # 4
            record("25_sns_notification_generic.json"),  # 5
            record("27_sns_firehose_s3_archived_single.json"),  # 6
            # 34 bare: as an envelope it would be 31's SNS MessageId, one row with whichever loaded first.
            message_of("34_sns_envelope_bounce_FICTIONAL_subtype.json"),
            record("35_notif_bounce_suppressed_global.json"),
            in_envelope("38_notif_bounce_transient_general_expired.json", "corpus-sns-38"),
            # SNS delivering 01 again (same MessageId) and Firehose repeating 11 (same bare JSON).
            in_envelope("01_evt_bounce.json", "corpus-sns-01", subject=EVENT_SUBJECT),
            record("11_notif_bounce_with_dsn.json"),
        ],
        "newline",
        False,
    ),
}


def write_landing(root: Path) -> None:
    for key, (records, framing, gzipped) in OBJECTS.items():
        separator = "\n" if framing == "newline" else ""
        body = (separator.join(records) + separator).encode("utf-8")
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body, mtime=0) if gzipped else body)


# --- the warehouse, built once ---------------------------------------------------------------------


# Contract, Warehouse: checks find a relation by name, in any schema.
RELATIONS = re.compile(
    r"\bfrom (ses_events|rejected_records|message_status|suppression_list|deliverability_daily)\b"
)


@dataclass(frozen=True)
class Built:
    warehouse: Path
    ingest_counts: dict[str, Any]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` read-only, each ``from <relation>`` found in whichever schema holds it."""
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(
                RELATIONS.sub(lambda m: f"from {_schema_of(con, m[1])}.{m[1]}", sql)
            ).fetchall()
        finally:
            con.close()


def _schema_of(con: duckdb.DuckDBPyConnection, name: str) -> str:
    found = con.execute(
        "select table_schema from information_schema.tables where table_name = ? order by table_schema",
        [name],
    ).fetchall()
    assert len(found) == 1, f"one relation named {name}, found in {found}"
    return found[0][0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    from bouncehouse.config import load_settings
    from bouncehouse.ingest import ingest
    from bouncehouse.transform import transform

    home = tmp_path_factory.mktemp("corpus")
    write_landing(home / "landing")
    with pytest.MonkeyPatch.context() as env:  # module scope: the per-test env isolation is not active yet
        for name in list(os.environ):
            if name.startswith(("BOUNCEHOUSE_", "AWS_")):
                env.delenv(name)
        env.setenv("BOUNCEHOUSE_HOME", str(home))
        settings = load_settings(
            {"source": str(home / "landing"), "warehouse": str(home / "bouncehouse.duckdb"), "as_of": AS_OF},
            env={},
            home=home,
        )
        counts = ingest(settings)
        transform(settings)
        yield Built(warehouse=settings.warehouse, ingest_counts=counts)


# --- ingest: ses_events and rejected_records ----------------------------------------------------------

# (event_type, message_id) of every row of ses_events. Contract, Input: a record is an SNS envelope
# or bare SES JSON, eventType or notificationType; Warehouse: one row per distinct SES event.
EXPECTED_EVENTS = sorted(
    [
        ("Bounce", MSG_DOCS),  # 01 (SNS): eventType Bounce; its redelivery (same MessageId) is not a row
        ("Complaint", MSG_DOCS),  # 02 (SNS): eventType Complaint
        ("Delivery", MSG_DOCS),  # 03 (SNS): eventType Delivery
        ("Send", MSG_DOCS),  # 04 (SNS): eventType Send
        ("Reject", MSG_DOCS),  # 05 (SNS): eventType Reject
        ("Open", MSG_DOCS),  # 06 (bare, gzip): eventType Open
        ("Click", MSG_DOCS),  # 07 (bare, gzip): eventType Click
        ("Rendering Failure", MSG_DOCS),  # 08 (bare, gzip): eventType Rendering Failure
        ("DeliveryDelay", MSG_DOCS),  # 09 (bare, gzip): eventType DeliveryDelay
        ("Subscription", MSG_SUBSCRIPTION),  # 10 (bare, gzip): eventType Subscription
        ("Bounce", MSG_BOUNCE_DSN),  # 11 (bare, `}{`): notificationType Bounce; its repeat is not a row
        ("Bounce", MSG_BOUNCE_NO_DSN),  # 12 (bare, `}{`): notificationType Bounce
        ("Complaint", MSG_COMPLAINT_FEEDBACK),  # 13 (bare, `}{`): notificationType Complaint
        ("Complaint", MSG_COMPLAINT_NO_FEEDBACK),  # 14 (bare, `}{`): notificationType Complaint
        ("Delivery", MSG_DELIVERY),  # 15 (bare, `}{`): notificationType Delivery
        ("Bounce", MSG_RELAY),  # 31 (captured envelope): notificationType Bounce
        ("Bounce", MSG_RELAY),  # 34 (bare): a different JSON with no envelope, so a distinct row
        ("Bounce", MSG_SUPPRESSED),  # 35 (bare): notificationType Bounce
        ("Bounce", MSG_EXPIRED),  # 38 (SNS): notificationType Bounce
    ]
)


def test_ingest_reports_every_record_once(built: Built) -> None:
    # Contract, Commands: ingest's counts. 5 objects; 35 records: 19 events, 2 redeliveries, 14 set aside.
    counts = built.ingest_counts
    assert (counts["objects_loaded"], counts["objects_skipped"]) == (5, 0)
    assert (counts["events_loaded"], counts["duplicates"], counts["rejected"]) == (19, 2, 14)


def test_ses_events_hold_every_distinct_event_of_every_shape(built: Built) -> None:
    rows = built.rows("select event_type, message_id from ses_events order by all")
    assert rows == EXPECTED_EVENTS
    assert built.rows("select count(distinct event_id) from ses_events") == [(19,)]


def test_an_event_delivered_twice_is_one_row(built: Built) -> None:
    # Contract, Warehouse: the same SNS MessageId twice (01), or the same bare JSON twice (11), is one row.
    assert built.rows(
        f"select message_id, count(*) from ses_events where event_type = 'Bounce' "
        f"and message_id in ('{MSG_DOCS}', '{MSG_BOUNCE_DSN}') group by 1 order by 1"
    ) == sorted([(MSG_DOCS, 1), (MSG_BOUNCE_DSN, 1)])


def test_an_unknown_bounce_sub_type_is_kept(built: Built) -> None:
    # Contract, Input: unknown types and fields are kept, not fatal (34's made-up bounceSubType).
    assert built.rows(
        f"select payload ->> '$.bounce.bounceType', payload ->> '$.bounce.bounceSubType' from ses_events "
        f"where message_id = '{MSG_RELAY}' order by 1"
    ) == [("Permanent", "OnAccountSuppressionList"), ("Transient", "SRETeamEatenByDinosaurs")]


def test_inbound_received_notifications_are_not_feedback_events(built: Built) -> None:
    # Contract, Warehouse (rejected_records): a record that is not SES feedback is set aside, so the
    # inbound mail of 22, 23 and 32 is neither an event nor a message.
    inbound = ", ".join(f"'{m}'" for m in MSG_INBOUND)
    assert built.rows(f"select event_type, message_id from ses_events where message_id in ({inbound})") == []
    assert built.rows(f"select message_id from message_status where message_id in ({inbound})") == []


A, B, C, D, E = OBJECTS  # the object keys, in order
# (object, position) -> the prefix its rejected_records.error starts with. Contract, Warehouse: a record
# that cannot be read is set aside; an SNS record that is not SES feedback with a reason naming it.
EXPECTED_REJECTS = {
    (A, 6): "sns_subscription_confirmation:",  # 24: Type SubscriptionConfirmation
    (A, 7): "sns_unsubscribe_confirmation:",  # 26: Type UnsubscribeConfirmation
    (B, 6): "s3_notification:",  # 29 through SNS: S3's s3:TestEvent, not SES
    (B, 7): "ses_inbound_received:",  # 22 through SNS: notificationType Received (inbound mail)
    (C, 6): "ses_inbound_received:",  # 23 bare: notificationType Received
    (C, 7): "s3_notification:",  # 30 through SNS: S3's ObjectCreated:Put
    (D, 1): "message_not_json:",  # 28 line 1: Message "My 1st body" is not JSON
    (D, 2): "message_not_json:",  # 28 line 2: "My 2nd body"
    (D, 3): "message_not_json:",  # 28 line 3: "My 3rd body"
    (E, 2): "sns_subscription_confirmation:",  # 33: Type SubscriptionConfirmation (captured)
    (E, 3): "ses_inbound_received:",  # 32: an envelope around notificationType Received
    (E, 4): "ses_setup_notification:",  # 39: SES's plain-text "Successfully validated SNS topic ..."
    (E, 5): "message_not_json:",  # 25: Message "Hello world!" is not JSON
    (E, 6): "message_not_json:",  # 27: Message "My 1st body" is not JSON
}


def test_rejected_records_name_what_they_set_aside(built: Built) -> None:
    rows = built.rows("select source_key, position, error from rejected_records order by all")
    found = {(key, position): error for key, position, error in rows}
    assert sorted(found) == sorted(EXPECTED_REJECTS), "one row per record set aside, no other"
    wrong = {
        place: error
        for place, error in found.items()
        if not error.startswith(EXPECTED_REJECTS.get(place, "\0"))
    }
    assert wrong == {}, "each reason starts with the prefix naming what the record is"


# --- message_status -----------------------------------------------------------------------------------

# (message_id, recipient) -> (final_status, bounce_type, bounce_sub_type, is_auto_reply, opened, clicked).
# Rules: "Recipients of a message" (mail.destination of any event plus any address an event names),
# "Highest wins" (complained > hard_bounced > rejected > rendering_failed > soft_bounced > delivered >
# delayed > sent; Permanent is hard, Transient soft), "Auto-reply", "One real event counts once".
# Opened/clicked: the contract gives no per-recipient rule; SES's Open and Click do not say which
# recipient opened, and message_status documents them as "the message has an Open (Click) event".
EXPECTED_STATUS: dict[tuple[str, str], tuple[Any, ...]] = {
    # 01-09: 02's abuse complaint beats 01's Permanent bounce (highest wins); the bounce still explains
    # bounce_type (both count: a bounce and a complaint are different feedback, whatever their feedbackId).
    (MSG_DOCS, "recipient@example.com"): ("complained", "Permanent", "General", False, True, True),
    # 05's destination: a recipient. Reject (and 08's Rendering Failure) apply to every recipient;
    # rejected > rendering_failed; nothing names it.
    (MSG_DOCS, "sender@example.com"): ("rejected", None, None, False, True, True),
    # 10: a Subscription sets no status: sent.
    (MSG_SUBSCRIPTION, "recipient@example.com"): ("sent", None, None, False, False, False),
    # 11 (with DSN): jane's Permanent bounce is hard; mary and richard no event names: sent.
    (MSG_BOUNCE_DSN, "jane@example.com"): ("hard_bounced", "Permanent", "General", False, False, False),
    (MSG_BOUNCE_DSN, "mary@example.com"): ("sent", None, None, False, False, False),
    (MSG_BOUNCE_DSN, "richard@example.com"): ("sent", None, None, False, False, False),
    # 12 (no DSN): both bounced recipients hard; mary no event names: sent.
    (MSG_BOUNCE_NO_DSN, "jane@example.com"): ("hard_bounced", "Permanent", "General", False, False, False),
    (MSG_BOUNCE_NO_DSN, "mary@example.com"): ("sent", None, None, False, False, False),
    (MSG_BOUNCE_NO_DSN, "richard@example.com"): ("hard_bounced", "Permanent", "General", False, False, False),
    # 13 (feedback report, abuse): richard complained; jane and mary: sent.
    (MSG_COMPLAINT_FEEDBACK, "jane@example.com"): ("sent", None, None, False, False, False),
    (MSG_COMPLAINT_FEEDBACK, "mary@example.com"): ("sent", None, None, False, False, False),
    (MSG_COMPLAINT_FEEDBACK, "richard@example.com"): ("complained", None, None, False, False, False),
    # 14 (no feedback report: no complaintFeedbackType, so not not-spam): richard complained; others sent.
    (MSG_COMPLAINT_NO_FEEDBACK, "jane@example.com"): ("sent", None, None, False, False, False),
    (MSG_COMPLAINT_NO_FEEDBACK, "mary@example.com"): ("sent", None, None, False, False, False),
    (MSG_COMPLAINT_NO_FEEDBACK, "richard@example.com"): ("complained", None, None, False, False, False),
    # 15: identity Delivery.
    (MSG_DELIVERY, "jane@example.com"): ("delivered", None, None, False, False, False),
    # 31 + 34: one bounce (same feedbackId + recipient) reported as Permanent and as Transient; highest
    # wins whichever copy is seen first, so hard, explained by the Permanent one.
    (MSG_RELAY, "relayuser@test.com"): (
        "hard_bounced",
        "Permanent",
        "OnAccountSuppressionList",
        False,
        False,
        False,
    ),
    # 35: Permanent/Suppressed (global suppression list) is a Permanent bounce: hard.
    (MSG_SUPPRESSED, "hi@simulator.amazonses.com"): (
        "hard_bounced",
        "Permanent",
        "Suppressed",
        False,
        False,
        False,
    ),
    # 38: Transient/General with no Delivery of the message: not an auto-reply, a soft bounce.
    (MSG_EXPIRED, "chintu@mailinatorc.com"): ("soft_bounced", "Transient", "General", False, False, False),
}

STATUS_SQL = (
    "select message_id, recipient, final_status, bounce_type, bounce_sub_type, is_auto_reply, opened, clicked "
    "from message_status"
)


def statuses(built: Built, *message_ids: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    where = (
        " where message_id in ({})".format(", ".join(f"'{m}'" for m in message_ids)) if message_ids else ""
    )
    return {(m, r): tuple(rest) for m, r, *rest in built.rows(STATUS_SQL + where)}


def expected(*message_ids: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {key: row for key, row in EXPECTED_STATUS.items() if key[0] in message_ids}


def test_message_status_is_every_recipient_of_every_message(built: Built) -> None:
    assert statuses(built) == EXPECTED_STATUS


def test_recipients_no_event_names_have_status_sent(built: Built) -> None:
    # Rules: every recipient has a row, even one that no event names (its status is then sent).
    ids = (
        MSG_BOUNCE_DSN,
        MSG_BOUNCE_NO_DSN,
        MSG_COMPLAINT_FEEDBACK,
        MSG_COMPLAINT_NO_FEEDBACK,
        MSG_SUBSCRIPTION,
    )
    assert statuses(built, *ids) == expected(*ids)


def test_event_publishing_message_with_every_event_type(built: Built) -> None:
    # 01-09 on one message id: highest wins for the named recipient, Reject for every recipient.
    assert statuses(built, MSG_DOCS) == expected(MSG_DOCS)


def test_identity_notifications_bounce_complaint_delivery(built: Built) -> None:
    ids = (MSG_BOUNCE_DSN, MSG_BOUNCE_NO_DSN, MSG_COMPLAINT_FEEDBACK, MSG_COMPLAINT_NO_FEEDBACK, MSG_DELIVERY)
    assert statuses(built, *ids) == expected(*ids)


def test_suppression_list_bounce_sub_types_and_one_bounce_reported_twice(built: Built) -> None:
    ids = (MSG_RELAY, MSG_SUPPRESSED)
    assert statuses(built, *ids) == expected(*ids)


def test_a_transient_bounce_without_delivery_is_soft(built: Built) -> None:
    assert statuses(built, MSG_EXPIRED) == expected(MSG_EXPIRED)


def test_complaint_feedback_types(built: Built) -> None:
    # 02 and 13 carry complaintFeedbackType abuse; 14 has no feedback report (null).
    assert built.rows(
        "select message_id, recipient, complaint_feedback_type from message_status "
        "where final_status = 'complained' order by all"
    ) == sorted(
        [
            (MSG_DOCS, "recipient@example.com", "abuse"),
            (MSG_COMPLAINT_FEEDBACK, "richard@example.com", "abuse"),
            (MSG_COMPLAINT_NO_FEEDBACK, "richard@example.com", None),
        ]
    )


# --- suppression_list -----------------------------------------------------------------------------------

# email -> (reason, expires_at is null). Rules, Suppression: a hard bounce or a complaint suppresses
# permanently; strongest reason shown (complaint > hard_bounce > manual > soft_bounce); one soft bounce
# is fewer than 3 in 7 days; a Reject suppresses nothing.
EXPECTED_SUPPRESSIONS = {
    "recipient@example.com": ("complaint", True),  # 02 complaint (and 01 hard bounce): complaint is stronger
    "jane@example.com": ("hard_bounce", True),  # 11 and 12: Permanent bounces
    "richard@example.com": ("complaint", True),  # 13 and 14 complaints beat 12's hard bounce
    "relayuser@test.com": ("hard_bounce", True),  # 31: Permanent/OnAccountSuppressionList is a hard bounce
    "hi@simulator.amazonses.com": ("hard_bounce", True),  # 35: Permanent/Suppressed
    # Not listed: chintu@mailinatorc.com (one soft bounce), sender@example.com (rejected only),
    # mary@example.com (never bounced or complained).
}


def test_suppression_list(built: Built) -> None:
    rows = built.rows("select email, reason, expires_at is null from suppression_list")
    assert {email: (reason, permanent) for email, reason, permanent in rows} == EXPECTED_SUPPRESSIONS


# --- deliverability_daily -----------------------------------------------------------------------------------

# day -> (sent, delivered, hard_bounced, soft_bounced, complained, rejected). The contract says "per UTC
# day"; the model documents the day as the recipients' send day (UTC date of mail.timestamp), each
# recipient counted once by its final_status, so these are EXPECTED_STATUS grouped by send day.
EXPECTED_DAILY = {
    date(2014, 1, 14): (1, 0, 1, 0, 0, 0),  # 35: hi@simulator hard
    # 11, 12, 13, 14, 15 (all sent 2016-01-27): 3 + 3 + 3 + 3 + 1 recipients; jane(11), jane and
    # richard(12) hard; richard(13), richard(14) complained; jane(15) delivered; the other 5 sent.
    date(2016, 1, 27): (13, 1, 3, 0, 2, 0),
    # 01-09: the message's send time is its Send's mail.timestamp (04: 2016-10-14, the earliest of the
    # samples' mail.timestamps); recipient@ complained, sender@ rejected.
    date(2016, 10, 14): (2, 0, 0, 0, 1, 1),
    date(2020, 12, 3): (1, 0, 0, 1, 0, 0),  # 38: chintu soft
    date(2022, 1, 12): (1, 0, 0, 0, 0, 0),  # 10: sent only
    date(2022, 1, 18): (1, 0, 1, 0, 0, 0),  # 31 + 34: relayuser, one hard bounce counted once
}


def test_deliverability_daily_counts(built: Built) -> None:
    rows = built.rows(
        "select day::date, sent, delivered, hard_bounced, soft_bounced, complained, rejected "
        "from deliverability_daily"
    )
    assert {day: tuple(rest) for day, *rest in rows} == EXPECTED_DAILY


def bounce_rates(built: Built) -> dict[date, float]:
    return {day: rate for day, rate in built.rows("select day::date, bounce_rate from deliverability_daily")}


# Contract, Digest: the rates are judged against SES's limits, so they are SES's rates. SES's docs (corpus
# BOUNCE_RATE_NOTES.md): only hard bounces count; an OnAccountSuppressionList bounce does not (SES did not
# even try to send); a Suppressed (global suppression list) bounce does.


def test_bounce_rate_leaves_out_account_suppression_list_bounces(built: Built) -> None:
    assert bounce_rates(built)[date(2022, 1, 18)] == pytest.approx(0.0)  # 31: OnAccountSuppressionList only


def test_bounce_rate_counts_global_suppression_and_other_hard_bounces(built: Built) -> None:
    rates = bounce_rates(built)
    assert rates[date(2014, 1, 14)] == pytest.approx(1.0)  # 35: Suppressed, 1 hard of 1 sent
    assert rates[date(2016, 1, 27)] == pytest.approx(3 / 13)  # 11, 12: 3 hard of the day's 13 recipients
