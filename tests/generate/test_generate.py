"""The generator: deterministic bytes, Firehose layout, every input shape, realistic proportions, and
returned counts that match what is on disk (read back independently, see landing_reader)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bouncehouse.demo import generate
from bouncehouse.errors import ConfigError
from landing_reader import KEY_PATTERN, Event, normalise, read_landing

EVENT_TYPES = {
    "Send", "Delivery", "Bounce", "Complaint", "Reject", "Rendering Failure",
    "DeliveryDelay", "Open", "Click", "Subscription",
}  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _recipient_outcomes(messages: dict[str, list[Event]]) -> dict[tuple[str, str], Counter]:
    """(message id, recipient) -> what happened to it: delivered, hard, soft, auto_reply, complaint..."""
    outcomes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for message_id, events in messages.items():
        for event in events:
            for written in event.ses["mail"]["destination"]:
                outcomes[(message_id, normalise(written))]["recipient"] = 1
        delivered = {
            normalise(r) for e in events if e.type == "Delivery" for r in e.ses["delivery"]["recipients"]
        }
        for event in events:
            body = event.ses.get(event.type[0].lower() + event.type[1:].replace(" ", ""), {})
            if event.type == "Delivery":
                for r in body["recipients"]:
                    outcomes[(message_id, normalise(r))]["delivered"] += 1
            elif event.type == "Bounce":
                for entry in body["bouncedRecipients"]:
                    address = normalise(entry["emailAddress"])
                    if body["bounceType"] == "Permanent":
                        kind = "hard"
                    elif (
                        body["bounceType"] == "Transient"
                        and body["bounceSubType"] == "General"
                        and address in delivered
                    ):
                        kind = "auto_reply"
                    else:
                        kind = "soft"
                    outcomes[(message_id, address)][kind] += 1
            elif event.type == "Complaint":
                kind = "not_spam" if body.get("complaintFeedbackType") == "not-spam" else "complaint"
                for entry in body["complainedRecipients"]:
                    outcomes[(message_id, normalise(entry["emailAddress"]))][kind] += 1
            elif event.type == "DeliveryDelay":
                for entry in body["delayedRecipients"]:
                    outcomes[(message_id, normalise(entry["emailAddress"]))]["delayed"] += 1
            elif event.type in ("Open", "Click"):
                for written in event.ses["mail"]["destination"]:
                    outcomes[(message_id, normalise(written))][event.type.lower()] += 1
    return outcomes


# --- determinism ------------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    args = {"messages": 300, "start": datetime(2026, 3, 1, 6), "days": 2}
    first = generate(tmp_path / "a", seed=5, **args)
    second = generate(tmp_path / "b", seed=5, **args)
    other = generate(tmp_path / "c", seed=6, **args)

    files_a, files_b, files_c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert files_a and files_a == files_b
    volatile = {"out", "seconds"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }
    assert set(files_c) != set(files_a)
    assert sorted(files_c.values()) != sorted(files_a.values())
    assert other["records"] > 0


# --- layout -----------------------------------------------------------------------------------


def test_keys_follow_the_firehose_layout_and_nothing_else_is_written(tree) -> None:
    keys = list(tree.landing.files)
    assert keys and not tree.landing.bad_keys, tree.landing.bad_keys[:5]
    assert all(KEY_PATTERN.match(k) for k in keys)
    start = tree.result["start"]
    end = tree.result["end"]
    hours = {k[:13] for k in keys}
    assert min(hours) >= datetime.fromisoformat(start).strftime("%Y/%m/%d/%H")
    assert max(hours) < datetime.fromisoformat(end).strftime("%Y/%m/%d/%H")


def test_events_land_after_their_event_time_and_out_of_order(tree) -> None:
    late = 0
    for event in tree.landing.events.values():
        if event.type == "AmazonSnsSubscriptionSucceeded":
            continue
        event_hour = event.at.replace(minute=0, second=0, microsecond=0)
        assert event.arrival_hour >= event_hour, (event.key, event.type, event.at)
        late += event.arrival_hour > event_hour
    # Some events arrive in a later hour prefix than the one they happened in.
    assert late > 100


def test_hour_prefixes_are_utc_clock_hours_when_start_is_not_on_the_hour(tmp_path: Path) -> None:
    result = generate(
        tmp_path / "odd", messages=500, start=datetime(2026, 11, 20, 10, 37, 12), days=1, seed=4
    )
    landing = read_landing(tmp_path / "odd")
    assert result["start"] == "2026-11-20T10:37:12"
    assert min(landing.files)[:13] == "2026/11/20/10" and max(landing.files)[:13] == "2026/11/21/10"
    checked = 0
    for event in landing.events.values():
        if event.published:
            published = datetime.fromisoformat(event.published.replace("Z", "+00:00")).replace(tzinfo=None)
            # Published before arrival, and the first copy arrived within its prefix's clock hour.
            assert published < event.arrival_hour + timedelta(hours=1), (event.key, event.published)
            checked += 1
    assert checked > 500


def test_objects_hold_hundreds_to_thousands_of_records(tmp_path: Path) -> None:
    result = generate(tmp_path / "big", messages=6000, start=datetime(2026, 5, 4), days=1, seed=3)
    landing = read_landing(tmp_path / "big")
    sizes = Counter(event.key for event in landing.events.values())
    assert max(sizes.values()) <= 3200
    assert sum(1 for n in sizes.values() if n >= 300) >= len(sizes) // 2
    assert result["objects"] == len(landing.files)


# --- counts -----------------------------------------------------------------------------------


def test_returned_counts_match_what_is_on_disk(tree) -> None:
    result, landing = tree.result, tree.landing
    assert result["objects"] == len(landing.files)
    assert result["bytes"] == sum(len(b) for b in landing.files.values())
    assert result["records"] == landing.records
    assert result["events"] == len(landing.events)
    assert result["duplicates"] == sum(n - 1 for n in landing.copies.values())
    assert result["duplicates"] == sum(result["duplicates_by_kind"].values())
    assert result["malformed_by_kind"] == dict(landing.rejected)
    assert result["malformed"] == sum(landing.rejected.values())
    assert result["records"] == result["events"] + result["duplicates"] + result["malformed"]
    assert result["events_by_type"] == dict(Counter(e.type for e in landing.events.values()))
    assert result["envelopes"] == sum(e.envelope for e in landing.events.values())

    messages = landing.messages()
    assert result["messages"] == len(messages)
    recipients = {
        (message_id, normalise(written))
        for message_id, events in messages.items()
        for event in events
        for written in event.ses["mail"]["destination"]
    }
    assert result["recipients"] == len(recipients)
    # Nearly every simulated message has landed (the rest would arrive after the period ends).
    assert 0.98 * result["messages_simulated"] <= result["messages"] <= result["messages_simulated"]


# --- input shapes -----------------------------------------------------------------------------


def test_every_input_shape_is_present(tree) -> None:
    result, landing = tree.result, tree.landing
    for fmt in ("gzip", "gzip_no_ext", "plain"):
        for framing in ("newline", "concatenated"):
            assert landing.shapes[(fmt, framing)] >= 1, (fmt, framing)

    events = list(landing.events.values())
    assert any(e.envelope for e in events) and any(not e.envelope for e in events)
    published = {e.ses["eventType"] for e in events if "eventType" in e.ses}
    assert published == EVENT_TYPES
    identity = {e.ses["notificationType"] for e in events if "notificationType" in e.ses and "mail" in e.ses}
    assert identity == {"Bounce", "Complaint", "Delivery"}

    assert all(
        landing.rejected[kind] >= 1
        for kind in ("not_json", "invalid_utf8", "message_not_json", "no_ses_type")
    )
    assert result["duplicates_by_kind"]["sns"] >= 1 and result["duplicates_by_kind"]["firehose_retry"] >= 1
    # A duplicate is the same envelope (same MessageId) or the same bare event again, in another object.
    envelope_ids = [i for i, n in landing.copies.items() if n > 1 and landing.events[i].envelope]
    bare_ids = [i for i, n in landing.copies.items() if n > 1 and not landing.events[i].envelope]
    assert envelope_ids and bare_ids
    assert all(len(set(landing.keys[i])) > 1 for i in envelope_ids + bare_ids)


def test_identity_notifications_have_their_own_layout(tree) -> None:
    notifications = [
        e for e in tree.landing.events.values() if "notificationType" in e.ses and "mail" in e.ses
    ]
    assert notifications
    for event in notifications:
        mail = event.ses["mail"]
        assert "tags" not in mail  # SES publishes tags only through configuration sets
        assert {"timestamp", "messageId", "source", "sourceArn", "sourceIp", "callerIdentity",
                "sendingAccountId", "destination", "headersTruncated", "headers", "commonHeaders"} <= set(mail)  # fmt: skip
        assert event.envelope  # identity notifications only ever travel through SNS
    by_type = {e.type: e.ses for e in notifications}
    assert {"timestamp", "processingTimeMillis", "recipients", "smtpResponse", "reportingMTA"} <= set(
        by_type["Delivery"]["delivery"]
    )
    assert {"complainedRecipients", "timestamp", "feedbackId"} <= set(by_type["Complaint"]["complaint"])


def test_event_publishing_fields_follow_ses(tree) -> None:
    by_type: dict[str, dict] = {}
    for event in tree.landing.events.values():
        if "eventType" in event.ses:
            by_type.setdefault(event.type, event.ses)
    mail = by_type["Send"]["mail"]
    assert {"timestamp", "messageId", "source", "sourceArn", "sendingAccountId", "destination",
            "headersTruncated", "headers", "commonHeaders", "tags"} <= set(mail)  # fmt: skip
    assert by_type["Send"]["send"] == {}
    bounce = by_type["Bounce"]["bounce"]
    assert {
        "bounceType",
        "bounceSubType",
        "bouncedRecipients",
        "timestamp",
        "feedbackId",
        "reportingMTA",
    } <= set(bounce)
    assert {"emailAddress", "action", "status"} <= set(bounce["bouncedRecipients"][0])
    assert {"timestamp", "processingTimeMillis", "recipients", "smtpResponse", "reportingMTA"} <= set(
        by_type["Delivery"]["delivery"]
    )
    assert set(by_type["Reject"]["reject"]) == {"reason"}
    assert set(by_type["Rendering Failure"]["failure"]) == {"errorMessage", "templateName"}
    assert {"timestamp", "ipAddress", "userAgent"} <= set(by_type["Open"]["open"])
    assert {"timestamp", "ipAddress", "userAgent", "link"} <= set(by_type["Click"]["click"])
    delay = by_type["DeliveryDelay"]["deliveryDelay"]
    assert {"timestamp", "delayType", "expirationTime", "delayedRecipients"} <= set(delay)
    assert {"contactList", "timestamp", "newTopicPreferences"} <= set(by_type["Subscription"]["subscription"])
    complaint = by_type["Complaint"]["complaint"]
    assert {"complainedRecipients", "timestamp", "feedbackId", "arrivalDate"} <= set(complaint)


# --- realism ----------------------------------------------------------------------------------


def test_outcome_proportions_are_realistic(tree) -> None:
    messages = tree.landing.messages()
    sizes = {message_id: len(events[0].ses["mail"]["destination"]) for message_id, events in messages.items()}
    outcomes = _recipient_outcomes(messages)
    regular = {k: v for k, v in outcomes.items() if not k[1].startswith("full.mailbox")}
    total = len(regular)
    assert total > 4000

    def share(predicate) -> float:
        return sum(1 for o in regular.values() if predicate(o)) / total

    assert 0.008 <= share(lambda o: o["hard"]) <= 0.025
    assert 0.004 <= share(lambda o: o["soft"] and not o["delivered"]) <= 0.02
    assert 0.003 <= share(lambda o: o["auto_reply"]) <= 0.025
    assert all(o["delivered"] for o in regular.values() if o["auto_reply"])
    complaints = sum(1 for o in regular.values() if o["complaint"])
    not_spam = sum(1 for o in regular.values() if o["not_spam"])
    assert 1 <= complaints <= 0.005 * total and 1 <= not_spam < complaints
    delivered = [o for o in regular.values() if o["delivered"]]
    assert 0.93 <= len(delivered) / total <= 0.99
    # Opens and clicks name no recipient: measure them on single-recipient messages.
    single = [o for (message_id, _), o in regular.items() if o["delivered"] and sizes[message_id] == 1]
    opened = sum(1 for o in single if o["open"]) / len(single)
    clicked = sum(1 for o in single if o["click"]) / len(single)
    assert 0.18 <= opened <= 0.32 and 0.04 <= clicked < 0.5 * opened
    delayed = [o for o in regular.values() if o["delayed"]]
    assert any(o["delivered"] for o in delayed) and any(not o["delivered"] and not o["soft"] for o in delayed)


def test_messages_have_one_to_three_recipients_written_in_many_ways(tree) -> None:
    messages = tree.landing.messages()
    sizes = Counter(len(events[0].ses["mail"]["destination"]) for events in messages.values())
    assert set(sizes) == {1, 2, 3}
    assert 0.15 <= (sizes[2] + sizes[3]) / sum(sizes.values()) <= 0.35
    written = [w for events in messages.values() for w in events[0].ses["mail"]["destination"]]
    assert any("<" in w and ">" in w for w in written)
    assert any(w != w.strip() for w in written)
    assert any(normalise(w) != w.strip() and "<" not in w for w in written)  # mixed case, bare
    assert all("@" in normalise(w) and normalise(w) == normalise(w).lower() for w in written)


def test_message_tags(tree) -> None:
    events = [e for e in tree.landing.events.values() if "eventType" in e.ses]
    tags_by_message = {e.ses["mail"]["messageId"]: e.ses["mail"]["tags"] for e in events}
    user_types = Counter(t.get("user_type", ["<none>"])[0] for t in tags_by_message.values())
    assert set(user_types) == {"customer", "trial", "partner", "<none>"}
    assert user_types["customer"] > user_types["trial"] > user_types["partner"] > user_types["<none>"] > 0
    campaigns = {t["campaign"][0] for t in tags_by_message.values()}
    assert campaigns == {"welcome", "newsletter", "receipt", "password_reset"}
    for tags in tags_by_message.values():
        assert {"ses:configuration-set", "ses:from-domain", "ses:caller-identity", "ses:source-ip"} <= set(
            tags
        )
        assert all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in tags.values())


def test_some_addresses_soft_bounce_three_times_within_a_week(tree) -> None:
    soft: dict[str, list[datetime]] = defaultdict(list)
    deliveries: dict[str, list[datetime]] = defaultdict(list)
    for events in tree.landing.messages().values():
        delivered = {
            normalise(r) for e in events if e.type == "Delivery" for r in e.ses["delivery"]["recipients"]
        }
        for event in events:
            if event.type == "Delivery":
                for r in event.ses["delivery"]["recipients"]:
                    deliveries[normalise(r)].append(event.at)
            elif event.type == "Bounce" and event.ses["bounce"]["bounceType"] != "Permanent":
                for entry in event.ses["bounce"]["bouncedRecipients"]:
                    if normalise(entry["emailAddress"]) not in delivered:
                        soft[normalise(entry["emailAddress"])].append(event.at)
    suppressed, recovered = [], []
    for address, times in soft.items():
        times.sort()
        if any(times[i + 2] - times[i] <= timedelta(days=7) for i in range(len(times) - 2)):
            later = [d for d in deliveries[address] if d > times[-1]]
            (recovered if later else suppressed).append(address)
    assert len(suppressed) >= 2 and len(recovered) >= 1


def test_hostile_strings_are_carried_intact(tree) -> None:
    codes = [
        entry.get("diagnosticCode", "")
        for e in tree.landing.events.values()
        if e.type == "Bounce"
        for entry in e.ses["bounce"]["bouncedRecipients"]
    ]
    assert any("<script>alert(1)</script>" in c for c in codes)
    assert any("}{" in c for c in codes)


def test_sends_are_spread_over_every_day(tree) -> None:
    days = Counter(events[0].ses["mail"]["timestamp"][:10] for events in tree.landing.messages().values())
    assert sorted(days) == ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"]
    assert min(days.values()) > 0.15 * sum(days.values())


# --- arguments and the CLI --------------------------------------------------------------------


def test_default_start_is_days_before_now_on_the_hour(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    result = generate(tmp_path / "now", messages=40, start=None, days=1, seed=1)
    after = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    start = datetime.fromisoformat(result["start"])
    assert start in (before - timedelta(days=1), after - timedelta(days=1))
    assert result["messages"] >= 1


@pytest.mark.parametrize("bad", [{"messages": 0, "days": 1}, {"messages": 10, "days": 0}])
def test_bad_arguments_raise_config_error(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ConfigError):
        generate(tmp_path / "x", start=datetime(2026, 1, 1), seed=1, **bad)


def test_cli_writes_the_tree_and_prints_its_counts(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    completed = subprocess.run(
        [sys.executable, "-m", "bouncehouse", "-q", "generate", "--out", str(out), "--messages", "60",
         "--start", "2026-11-20T00:00:00Z", "--days", "1", "--seed", "2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    counts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert counts["objects"] == sum(1 for p in out.rglob("*") if p.is_file()) > 0
    assert counts["start"] == "2026-11-20T00:00:00"
    assert counts == {**generate(tmp_path / "again", messages=60, start=datetime(2026, 11, 20), days=1, seed=2),
                      "out": str(out), "seconds": counts["seconds"]}  # fmt: skip
