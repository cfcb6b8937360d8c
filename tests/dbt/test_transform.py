"""transform() end to end: real `dbt build` on hand-made SES events in raw.ses_events, checking exact
statuses, the suppression list and the daily figures for the contract's cases."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bouncehouse import warehouse
from bouncehouse.errors import TransformError
from bouncehouse.transform import transform
from ses_events import Message, load, settings_for
from warehouse_reads import fetch

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 2, 9, 0)
LOADED = datetime(2026, 11, 5, 0, 0)
AS_OF = datetime(2026, 11, 10, 0, 0)
# Only as_of changes between these runs: rebuilding suppression_list (and its tests) is enough.
ONLY_SUPPRESSION = "suppression_list"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def contract_events() -> list:
    """One message per rule of the contract (each comment names the rule)."""
    events = []
    # Precedence and addresses: a display name, upper case and spaces in mail.destination.
    m1 = Message(
        "m1", [" Bob <BOB@Ex.com>", "CAROL@ex.com ", "dave@ex.com"], T0, tags={"user_type": ["customer"]}
    )
    events += [
        m1.send(),
        m1.delivery(minutes(1), "bob@ex.com", "carol@ex.com", "dave@ex.com"),
        m1.complaint(minutes(90), "Bob@Ex.com"),  # complained beats delivered
        m1.soft_bounce(minutes(2), "carol@ex.com"),  # soft_bounced beats delivered
        m1.delay(minutes(1), "dave@ex.com"),  # delivered beats delayed
    ]
    # Reject applies to every recipient of the message, including one only an event names.
    m2 = Message("m2", ["erin@ex.com", "frank@ex.com"], T0, tags={"user_type": ["trial"]})
    events += [m2.send(), m2.reject(minutes(0.1)), m2.delivery(minutes(1), "grace@ex.com")]
    # Rendering Failure applies to every recipient.
    m3 = Message("m3", ["heidi@ex.com", "ivan@ex.com"], T0)
    events += [m3.send(), m3.rendering_failure(minutes(0.1))]
    # Auto-reply: Transient/General bounce + Delivery for the same recipient: delivered, never a soft bounce.
    m4 = Message("m4", ["judy@ex.com"], T0)
    events += [
        m4.send(),
        m4.delivery(minutes(1), "judy@ex.com"),
        m4.soft_bounce(minutes(3), "judy@ex.com", sub_type="General"),
    ]
    # Not-spam complaint is not a complaint.
    m5 = Message("m5", ["mallory@ex.com"], T0)
    events += [
        m5.send(),
        m5.delivery(minutes(1), "mallory@ex.com"),
        m5.complaint(minutes(60), "mallory@ex.com", feedback_type="not-spam"),
    ]
    # Identity notifications (notificationType, no tags): a hard bounce.
    m6 = Message("m6", ["Niaj <NIAJ@ex.com>"], T0, identity=True)
    events += [m6.bounce(minutes(1), "niaj@ex.com")]
    # The digest's own email: in message_status (is_digest), never a tracked send in deliverability_daily,
    # but its hard bounce suppresses the admin address like any other.
    m7 = Message("m7", ["admin@ex.com"], T0, tags={"bouncehouse_message": ["digest"]})
    events += [m7.send(), m7.bounce(minutes(1), "admin@ex.com")]
    # Soft-bounce suppression: olivia 3 soft bounces within 7 days (written differently each time);
    # peggy 3 spread over 8 days; rupert 3 within 7 days, then a delivery after the third.
    for n, day in enumerate((0, 3, 7)):
        m = Message(
            f"olivia{n}",
            [("Olivia <OLIVIA@ex.com>", "olivia@ex.com", " Olivia@EX.com ")[n]],
            T0 + timedelta(days=day),
        )
        events += [m.send(), m.soft_bounce(T0 + timedelta(days=day, minutes=5), "olivia@ex.com")]
    for n, day in enumerate((0, 4, 8)):
        m = Message(f"peggy{n}", ["peggy@ex.com"], T0 + timedelta(days=day))
        events += [m.send(), m.soft_bounce(T0 + timedelta(days=day, minutes=5), "peggy@ex.com")]
    for n, day in enumerate((0, 1, 2)):
        m = Message(f"rupert{n}", ["rupert@ex.com"], T0 + timedelta(days=day))
        events += [m.send(), m.soft_bounce(T0 + timedelta(days=day, minutes=5), "rupert@ex.com")]
    m8 = Message("rupert3", ["rupert@ex.com"], T0 + timedelta(days=3))
    events += [m8.send(), m8.delivery(T0 + timedelta(days=3, minutes=1), "rupert@ex.com")]
    return events


def statuses(path: Path) -> dict[tuple[str, str], str]:
    return {
        (m, r): s for m, r, s in fetch(path, "select message_id, recipient, final_status from message_status")
    }


def test_contract_rules_end_to_end(warehouse_path: Path) -> None:
    load(warehouse_path, contract_events(), LOADED)
    with warehouse.session(warehouse_path) as con:  # what prune left behind: added back per day
        con.execute(
            "insert into raw.pruned_sends_daily (day, sent, delivered, pruned_at) values ('2026-11-02', 10, 9, '2026-11-09')"
        )

    counts = transform(settings_for(warehouse_path, AS_OF))

    assert counts["tests_failed"] == 0 and counts["tests_passed"] > 40 and counts["models"] >= 16
    status = statuses(warehouse_path)
    assert {k: v for k, v in status.items() if k[0] in ("m1", "m2", "m3", "m4", "m5", "m6")} == {
        ("m1", "bob@ex.com"): "complained",
        ("m1", "carol@ex.com"): "soft_bounced",
        ("m1", "dave@ex.com"): "delivered",
        ("m2", "erin@ex.com"): "rejected",
        ("m2", "frank@ex.com"): "rejected",
        ("m2", "grace@ex.com"): "rejected",
        ("m3", "heidi@ex.com"): "rendering_failed",
        ("m3", "ivan@ex.com"): "rendering_failed",
        ("m4", "judy@ex.com"): "delivered",
        ("m5", "mallory@ex.com"): "delivered",
        ("m6", "niaj@ex.com"): "hard_bounced",
    }
    assert fetch(
        warehouse_path, "select message_id, recipient, final_status from message_status where is_digest"
    ) == [("m7", "admin@ex.com", "hard_bounced")], "the digest's own message is kept apart, flagged is_digest"
    judy = fetch(
        warehouse_path,
        "select is_auto_reply, bounce_type, delivered from message_status where message_id = 'm4'",
    )
    assert judy == [(True, "Transient", True)]
    bob = fetch(
        warehouse_path,
        "select status_at, complaint_feedback_type, tags->>'$.user_type[0]', source_address, subject "
        "from message_status where message_id = 'm1' and recipient = 'bob@ex.com'",
    )
    assert bob == [(minutes(90), "abuse", "customer", "Acme <app@acme.example>", "Hello")]

    suppressed = {
        row[0]: row[1:]
        for row in fetch(
            warehouse_path,
            "select email, reason, suppressed_at, expires_at, last_message_id from suppression_list",
        )
    }
    assert suppressed == {
        "admin@ex.com": ("hard_bounce", minutes(1), None, "m7"),
        "bob@ex.com": ("complaint", minutes(90), None, "m1"),
        "niaj@ex.com": ("hard_bounce", minutes(1), None, "m6"),
        "olivia@ex.com": (
            "soft_bounce",
            T0 + timedelta(days=7, minutes=5),
            T0 + timedelta(days=21, minutes=5),
            "olivia2",
        ),
    }

    daily = fetch(
        warehouse_path,
        "select day, sent, delivered, hard_bounced, soft_bounced, complained, rejected, rendering_failed, delayed, "
        "bounce_rate, complaint_rate from deliverability_daily where day = '2026-11-02'",
    )
    # Nov 2 sends: m1 (3), m2 (3), m3 (2), m4, m5, m6, olivia0, peggy0, rupert0 = 14 recipients, + 10 pruned
    # (m7, the digest's own email, is not a tracked send);
    # delivered: dave, judy (auto-reply), mallory (not-spam) + 9 pruned.
    day, sent, delivered, hard, soft, complained, rejected, failed, delayed, bounce_rate, complaint_rate = (
        daily[0]
    )
    assert (sent, delivered, hard, soft, complained, rejected, failed, delayed) == (
        24,
        3 + 9,
        1,
        4,
        1,
        3,
        2,
        0,
    )
    assert bounce_rate == pytest.approx(1 / 24) and complaint_rate == pytest.approx(1 / 24)

    # Analysts' snapshot: published beside the warehouse, readable read-only, same figures.
    snapshot = warehouse.snapshot_path(warehouse_path)
    assert counts["snapshot"] == str(snapshot.resolve())
    assert statuses(snapshot) == status


def test_a_null_message_id_never_empties_the_suppression_list(warehouse_path: Path) -> None:
    """A digest-tagged event whose mail has no messageId (null message_id) must not switch off every
    automatic suppression (a null in a `not in (...)` list makes the whole test unknown)."""
    from ses_events import Event

    events = contract_events()
    orphan = Message("orphan", ["admin@ex.com"], T0, tags={"bouncehouse_message": ["digest"]})
    send = orphan.send()
    payload = {**send.payload, "mail": {k: v for k, v in orphan.mail.items() if k != "messageId"}}
    events.append(Event("Send", None, T0, payload))  # type: ignore[arg-type]
    load(warehouse_path, events, LOADED)

    counts = transform(settings_for(warehouse_path, AS_OF))

    assert counts["tests_failed"] == 0
    assert fetch(warehouse_path, "select count(*) from raw.ses_events where message_id is null") == [(1,)]
    suppressed = {
        row[0]: row[1] for row in fetch(warehouse_path, "select email, reason from suppression_list")
    }
    assert {
        "bob@ex.com": "complaint",
        "niaj@ex.com": "hard_bounce",
        "olivia@ex.com": "soft_bounce",
    }.items() <= suppressed.items()


DIGEST_TAGS = {"bouncehouse_message": ["digest"]}


def daily(path: Path) -> list[tuple]:
    # The contract's figures (the extension columns rate_hard_bounced, sends_source, sends_known aside).
    return fetch(
        path,
        "select * exclude (day, rate_hard_bounced, sends_source, sends_known), day::date "
        "from deliverability_daily order by day",
    )


def test_digest_messages_are_flagged_whatever_the_arrival_order(warehouse_path: Path) -> None:
    """An identity notification (no tags) about a digest email arrives before the tagged Send: the
    message is flagged is_digest once the Send arrives (no stale untagged row stays behind), never counts
    in deliverability_daily, and the admins' hard bounce and complaint suppress them."""
    tracked = Message("t1", ["cust@ex.com"], T0, tags={"user_type": ["customer"]})
    identity = Message("d1", ["ops@ex.com"], T0, identity=True)
    tagged = Message("d1", ["ops@ex.com"], T0, tags=DIGEST_TAGS)
    complained = Message("d2", ["boss@ex.com"], T0, tags=DIGEST_TAGS)
    settings = settings_for(warehouse_path, AS_OF)

    load(
        warehouse_path,
        [
            tracked.send(),
            tracked.delivery(minutes(1), "cust@ex.com"),
            identity.bounce(minutes(2), "ops@ex.com"),
        ],
        LOADED,
    )
    transform(settings)
    suppressed = {e: r for e, r in fetch(warehouse_path, "select email, reason from suppression_list")}
    assert suppressed == {"ops@ex.com": "hard_bounce"}

    load(
        warehouse_path,
        [
            tagged.send(),
            complained.send(),
            complained.delivery(minutes(1), "boss@ex.com"),
            complained.complaint(minutes(30), "boss@ex.com"),
        ],
        LOADED + timedelta(hours=1),
    )
    counts = transform(settings)
    assert counts["tests_failed"] == 0
    flagged = fetch(
        warehouse_path,
        "select message_id, recipient, final_status, is_digest from message_status order by all",
    )
    assert flagged == [
        ("d1", "ops@ex.com", "hard_bounced", True),
        ("d2", "boss@ex.com", "complained", True),
        ("t1", "cust@ex.com", "delivered", False),
    ]
    # Only t1 is a tracked send: 1 sent, 1 delivered, no bounce, no complaint.
    assert daily(warehouse_path) == [(1, 1, 0, 0, 0, 0, 0, 0, 0.0, 0.0, T0.date())]
    suppressed = {e: r for e, r in fetch(warehouse_path, "select email, reason from suppression_list")}
    assert suppressed == {"ops@ex.com": "hard_bounce", "boss@ex.com": "complaint"}

    # The incremental runs gave what one full build gives.
    incremental = (flagged, daily(warehouse_path))
    transform(settings, full_refresh=True)
    assert (
        fetch(
            warehouse_path,
            "select message_id, recipient, final_status, is_digest from message_status order by all",
        ),
        daily(warehouse_path),
    ) == incremental


def test_message_status_built_before_is_digest_is_backfilled(warehouse_path: Path) -> None:
    """A warehouse whose message_status predates is_digest (digest messages left out, no column): the
    next incremental run adds the column and recomputes every message, as a full build would."""
    settings = settings_for(warehouse_path, AS_OF)
    load(warehouse_path, contract_events(), LOADED)
    # A later load moves the watermark past the contract events: an incremental run leaves them alone.
    later = Message("m8", ["later@ex.com"], T0)
    load(warehouse_path, [later.send()], LOADED + timedelta(hours=1))
    transform(settings)
    columns = ", ".join(
        name for (name,) in fetch(warehouse_path, "select name from pragma_table_info('message_status')")
    )
    full = fetch(warehouse_path, f"select {columns} from message_status order by all")
    with warehouse.session(warehouse_path) as con:
        con.execute("delete from main.message_status where is_digest")
        con.execute("alter table main.message_status drop column is_digest")

    late = Message("m9", ["late@ex.com"], T0)
    load(warehouse_path, [late.send()], LOADED + timedelta(hours=2))
    counts = transform(settings)

    assert counts["tests_failed"] == 0
    rows = fetch(
        warehouse_path, f"select {columns} from message_status where message_id <> 'm9' order by all"
    )
    assert rows == full
    assert fetch(warehouse_path, "select is_digest from message_status where message_id = 'm9'") == [(False,)]


def test_incremental_run_matches_full_refresh_and_as_of_expires(warehouse_path: Path) -> None:
    events = contract_events()
    late = [e for e in events if e.message_id in ("m1", "olivia2")]
    load(warehouse_path, [e for e in events if e not in late], LOADED)
    settings = settings_for(warehouse_path, AS_OF)
    transform(settings)
    assert statuses(warehouse_path)[("m2", "erin@ex.com")] == "rejected"
    assert "olivia@ex.com" not in {r[0] for r in fetch(warehouse_path, "select email from suppression_list")}

    # The late events arrive: an incremental run picks them up...
    load(warehouse_path, late, LOADED + timedelta(hours=1))
    transform(settings)
    incremental = statuses(warehouse_path)
    suppression = fetch(warehouse_path, "select * from suppression_list order by email")
    assert incremental[("m1", "bob@ex.com")] == "complained"
    assert "olivia@ex.com" in {r[0] for r in suppression}
    # ...and gives exactly what a full rebuild gives.
    transform(settings, full_refresh=True)
    assert statuses(warehouse_path) == incremental
    assert fetch(warehouse_path, "select * from suppression_list order by email") == suppression

    # "Now" moves: olivia's soft-bounce suppression ends 14 days after her last soft bounce, not before.
    last_soft = T0 + timedelta(days=7, minutes=5)
    transform(
        settings_for(warehouse_path, last_soft + timedelta(days=14) - timedelta(seconds=1)),
        select=ONLY_SUPPRESSION,
    )
    assert "olivia@ex.com" in {r[0] for r in fetch(warehouse_path, "select email from suppression_list")}
    transform(settings_for(warehouse_path, last_soft + timedelta(days=14)), select=ONLY_SUPPRESSION)
    assert "olivia@ex.com" not in {r[0] for r in fetch(warehouse_path, "select email from suppression_list")}
    # Only events at or before as_of count: before olivia's third bounce she is not suppressed.
    transform(settings_for(warehouse_path, last_soft - timedelta(seconds=1)), select=ONLY_SUPPRESSION)
    assert "olivia@ex.com" not in {r[0] for r in fetch(warehouse_path, "select email from suppression_list")}


def test_manual_seed_adds_and_lifts_and_failures_name_the_node(
    warehouse_path: Path, project_copy: Path
) -> None:
    load(warehouse_path, contract_events(), LOADED)
    seed = project_copy / "seeds" / "manual_suppressions.csv"
    seed.write_text(
        "email,action,note,added_at\n"
        "Victor <VICTOR@ex.com>,suppress,asked by phone,2026-11-03 10:00:00\n"
        "niaj@ex.com,lift,address fixed,2026-11-04 10:00:00\n"
    )
    transform(settings_for(warehouse_path, AS_OF))
    suppressed = {
        row[0]: row[1:]
        for row in fetch(warehouse_path, "select email, reason, expires_at from suppression_list")
    }
    assert suppressed["victor@ex.com"] == ("manual", None)
    assert "niaj@ex.com" not in suppressed  # lift beats the hard bounce
    assert suppressed["bob@ex.com"] == ("complaint", None)

    seed.write_text("email,action,note,added_at\nwalter@ex.com,block,typo,2026-11-03 10:00:00\n")
    with pytest.raises(TransformError) as failure:
        transform(settings_for(warehouse_path, AS_OF))
    message = str(failure.value)
    assert "\n" not in message
    assert "accepted_values_manual_suppressions_action" in message, message


def test_generated_landing_tree_through_ingest(tmp_path: Path, warehouse_path: Path) -> None:
    """The generator's Firehose tree, loaded by the real ingest, builds with every dbt test passing and
    gives the statuses and suppressions the contract's rules predict from the raw events."""
    import json

    from bouncehouse.config import Settings
    from bouncehouse.demo import generate
    from bouncehouse.ingest import ingest

    landing = tmp_path / "landing"
    generate(landing, messages=400, start=datetime(2026, 11, 1), days=3, seed=7)
    settings = Settings(
        source=str(landing), warehouse=warehouse_path, as_of=datetime(2026, 11, 4, 6), lock_timeout=30
    )
    ingest(settings)
    counts = transform(settings)
    assert counts["tests_failed"] == 0

    found = {s for (s,) in fetch(warehouse_path, "select distinct final_status from message_status")}
    assert {
        "delivered",
        "hard_bounced",
        "soft_bounced",
        "complained",
        "rejected",
        "rendering_failed",
        "delayed",
    } <= found
    assert fetch(
        warehouse_path,
        "select count(*) from message_status where is_auto_reply and final_status <> 'delivered'",
    ) == [(0,)]
    assert fetch(
        warehouse_path,
        "select count(*) from message_status where recipient <> lower(trim(recipient)) or recipient like '%<%'",
    ) == [(0,)]
    raw_messages = fetch(
        warehouse_path, "select count(distinct message_id) from raw.ses_events where message_id is not null"
    )
    assert fetch(warehouse_path, "select count(distinct message_id) from message_status") == raw_messages

    # The mailboxes that stay full: suppressed exactly when no delivery followed their last soft bounce.
    last: dict[str, dict[str, datetime]] = {}
    for event_type, event_at, payload in fetch(
        warehouse_path,
        "select event_type, event_at, payload from raw.ses_events where payload::varchar like '%full.mailbox%'",
    ):
        body = json.loads(payload)
        names = [r["emailAddress"] for r in body.get("bounce", {}).get("bouncedRecipients", [])]
        names += body.get("delivery", {}).get("recipients", [])
        for name in names:
            seen = last.setdefault(name.lower(), {})
            seen[event_type] = max(seen.get(event_type, event_at), event_at)
    expected = {
        a
        for a, seen in last.items()
        if "Bounce" in seen and seen.get("Delivery", datetime.min) < seen["Bounce"]
    }
    suppressed = {
        e for (e,) in fetch(warehouse_path, "select email from suppression_list where reason = 'soft_bounce'")
    }
    assert expected and {a for a in suppressed if a.startswith("full.mailbox")} == expected


def _unit_tests_defined(project: Path) -> set[str]:
    import yaml

    names: set[str] = set()
    for schema_file in (project / "models").rglob("*.yml"):
        names |= {
            test["name"] for test in (yaml.safe_load(schema_file.read_text()) or {}).get("unit_tests", [])
        }
    return names


def test_unit_tests_run_on_request_and_stay_out_of_the_hourly_build(
    warehouse_path: Path, project_copy: Path
) -> None:
    """dbt's unit tests (the models' SQL on fixed fixtures) run with with_unit_tests (here first, on a fresh
    warehouse), and a failing one fails the build naming it; the hourly build runs the models and their
    data tests only, and a new as_of every hour leaves dbt's partial parse valid (no full re-parse)."""
    load(warehouse_path, contract_events(), LOADED)
    unit_tests = _unit_tests_defined(project_copy)
    assert len(unit_tests) >= 25

    checked = transform(settings_for(warehouse_path, AS_OF), with_unit_tests=True)
    assert checked["tests_failed"] == 0 and checked["unit_tests"] == len(unit_tests)

    (dbt_log,) = (project_copy / "logs").glob("*/dbt.log")
    logged_before = dbt_log.stat().st_size
    hourly = transform(settings_for(warehouse_path, AS_OF + timedelta(hours=1)))
    assert hourly["tests_failed"] == 0 and hourly["unit_tests"] == 0
    assert hourly["tests_passed"] == checked["tests_passed"] - len(unit_tests)
    with dbt_log.open("rb") as log:
        log.seek(logged_before)
        hourly_log = log.read().decode()
    assert "Partial parsing enabled" in hourly_log and "Unable to do partial parsing" not in hourly_log

    schema_file = project_copy / "models" / "intermediate" / "_intermediate__models.yml"
    text = schema_file.read_text()
    wrong = "{event_id: b2, message_id: m2, event_class: soft_bounce, message_key: m2}"
    schema_file.write_text(
        text.replace("{event_id: b2, message_id: m2, event_class: auto_reply, message_key: m2}", wrong)
    )
    with pytest.raises(TransformError) as failure:
        transform(settings_for(warehouse_path, AS_OF), with_unit_tests=True)
    assert "classified_incremental_reclassifies_only_touched_messages" in str(failure.value)
    assert transform(settings_for(warehouse_path, AS_OF))["tests_failed"] == 0
