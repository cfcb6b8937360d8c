"""Prune against the marts' own rules, one hazard per test: whatever it removes, the next transform gives
the same suppression_list and deliverability_daily as before the prune."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bouncehouse.prune import prune
from bouncehouse.transform import transform
from ses_events import Event, Message, load, settings_for
from warehouse_reads import fetch

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prune")]

AS_OF = datetime(2026, 11, 22, 6, 0)
LOADED = AS_OF - timedelta(hours=2)
DIGEST_TAGS = {"bouncehouse_message": ["digest"]}


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "bouncehouse.duckdb"


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def marts(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "suppression_list": fetch(path, "select * from suppression_list order by all"),
        "deliverability_daily": fetch(
            path, "select * exclude (day), day::date from deliverability_daily order by day"
        ),
    }


def pruned(path: Path) -> set[str]:
    return {m for (m,) in fetch(path, "select message_id from raw.pruned_messages")}


def build(path: Path, events: Iterable[Event]) -> dict[str, list[tuple[Any, ...]]]:
    load(path, events, LOADED)
    transform(settings_for(path, AS_OF))
    return marts(path)


def test_a_pruned_digest_email_never_counts_as_a_tracked_send(warehouse_path: Path) -> None:
    """The digest's own email is pruned like any clean send, but it was never in deliverability_daily,
    so raw.pruned_sends_daily must not add it back."""
    digest = Message("digest-old", ["admin@ex.com"], days_ago(40), tags=DIGEST_TAGS)
    tracked = Message("tracked-old", ["cust@ex.com"], days_ago(40))
    before = build(
        warehouse_path,
        [
            digest.send(),
            digest.delivery(days_ago(40) + timedelta(minutes=1), "admin@ex.com"),
            tracked.send(),
            tracked.delivery(days_ago(40) + timedelta(minutes=1), "cust@ex.com"),
        ],
    )
    assert [row[:2] for row in before["deliverability_daily"]] == [(1, 1)]

    counts = prune(settings_for(warehouse_path, AS_OF))

    assert pruned(warehouse_path) == {"digest-old", "tracked-old"} and counts["messages"] == 2
    assert fetch(warehouse_path, "select sum(sent), sum(delivered) from raw.pruned_sends_daily") == [(1, 1)]
    assert marts(warehouse_path) == before
    transform(settings_for(warehouse_path, AS_OF))
    assert marts(warehouse_path) == before


def test_a_pruned_delivery_still_clears_soft_bounces(warehouse_path: Path) -> None:
    """Three soft bounces (40-38 days ago), then a delivery (35 days ago, on a message of its own, clean and
    prunable) that cleared them, then one more soft bounce (5 days ago, so the expiry is still ahead).
    Not suppressed before the prune; the pruned delivery must still count as one after it."""
    events = []
    for n, age in enumerate((40, 39, 38)):
        m = Message(f"soft-{n}", ["sa@x.com"], days_ago(age))
        events += [m.send(), m.soft_bounce(days_ago(age) + timedelta(minutes=1), "sa@x.com")]
    delivered = Message("a_del", ["sa@x.com"], days_ago(35))
    events += [delivered.send(), delivered.delivery(days_ago(35) + timedelta(minutes=1), "sa@x.com")]
    recent = Message("soft-recent", ["sa@x.com"], days_ago(5))
    events += [recent.send(), recent.soft_bounce(days_ago(5) + timedelta(minutes=1), "sa@x.com")]
    # A second address whose only delivery is older: the one pruned latest per address is what counts.
    for n, age in enumerate((34, 33, 32)):
        m = Message(f"sb-soft-{n}", ["sb@x.com"], days_ago(age))
        events += [m.send(), m.soft_bounce(days_ago(age) + timedelta(minutes=1), "sb@x.com")]
    early = Message("b_del", ["sb@x.com"], days_ago(36))
    events += [early.send(), early.delivery(days_ago(36) + timedelta(minutes=1), "sb@x.com")]
    # A later delivery to sa, pruned by a later run: its row in raw.pruned_deliveries moves forward.
    later = Message("c_del", ["sa@x.com"], days_ago(31))
    events += [later.send(), later.delivery(days_ago(31) + timedelta(minutes=1), "sa@x.com")]
    before = build(warehouse_path, events)
    assert [row[0] for row in before["suppression_list"]] == [], "the delivery cleared sa; sb's expired"

    prune(settings_for(warehouse_path, AS_OF - timedelta(days=2)))  # cutoff 32 days ago: c_del stays

    assert pruned(warehouse_path) == {"a_del", "b_del"}
    assert marts(warehouse_path) == before
    transform(settings_for(warehouse_path, AS_OF))
    assert marts(warehouse_path) == before
    # What prune kept of the deliveries it removed: the latest per address.
    assert fetch(warehouse_path, "select email, last_delivered_at from raw.pruned_deliveries order by 1") == [
        ("sa@x.com", days_ago(35) + timedelta(minutes=1)),
        ("sb@x.com", days_ago(36) + timedelta(minutes=1)),
    ]

    prune(settings_for(warehouse_path, AS_OF))

    assert pruned(warehouse_path) == {"a_del", "b_del", "c_del"}
    transform(settings_for(warehouse_path, AS_OF))
    assert marts(warehouse_path) == before
    assert fetch(warehouse_path, "select email, last_delivered_at from raw.pruned_deliveries order by 1") == [
        ("sa@x.com", days_ago(31) + timedelta(minutes=1)),
        ("sb@x.com", days_ago(36) + timedelta(minutes=1)),
    ]


def test_prune_waits_for_the_transform_after_a_late_event(warehouse_path: Path) -> None:
    """A message message_status has seen with a Send only; a late Delivery (old timestamp) naming r1 and r2
    is loaded after that transform. Prune before the next transform must leave the message alone (it
    would record 1 sent / 0 delivered and lose r2); after the transform it prunes it with the right
    figures."""
    old = Message("old1", ["r1@x.com"], days_ago(40))
    before_late = build(warehouse_path, [old.send()])
    assert [row[:2] for row in before_late["deliverability_daily"]] == [(1, 0)]
    late = old.delivery(days_ago(40) + timedelta(minutes=1), "r1@x.com", "r2@x.com")
    load(warehouse_path, [late], LOADED + timedelta(hours=1))

    stale = prune(settings_for(warehouse_path, AS_OF))

    assert stale["messages"] == 0 and stale["waiting"] == 1 and pruned(warehouse_path) == set()
    assert fetch(warehouse_path, "select count(*) from raw.pruned_sends_daily") == [(0,)]
    assert fetch(warehouse_path, "select count(*) from raw.ses_events where message_id = 'old1'") == [(2,)]

    transform(settings_for(warehouse_path, AS_OF))
    before = marts(warehouse_path)
    assert [row[:2] for row in before["deliverability_daily"]] == [(2, 2)]
    fresh = prune(settings_for(warehouse_path, AS_OF))
    assert fresh["messages"] == 1 and fresh["recipients"] == 2 and pruned(warehouse_path) == {"old1"}
    assert fetch(warehouse_path, "select sent, delivered from raw.pruned_sends_daily") == [(2, 2)]
    transform(settings_for(warehouse_path, AS_OF))
    assert marts(warehouse_path) == before


def test_an_event_about_no_recipient_does_not_keep_a_message_forever(warehouse_path: Path) -> None:
    """An event of a type SES may add later bears on no recipient, so no message_status row records its
    loaded_at. Loaded last for its message, it must hold the message back only until a transform has
    run after it (message_status's watermark passed it), not forever."""
    old = Message("old2", ["q@x.com"], days_ago(40))
    build(warehouse_path, [old.send(), old.delivery(days_ago(40) + timedelta(minutes=1), "q@x.com")])
    unknown = Event("FutureType", "old2", days_ago(40), {"eventType": "FutureType", "mail": old.mail})
    other = Message("recent", ["r@x.com"], days_ago(1))
    load(warehouse_path, [unknown, other.send()], LOADED + timedelta(hours=1))
    assert prune(settings_for(warehouse_path, AS_OF))["waiting"] == 1

    transform(settings_for(warehouse_path, AS_OF))
    counts = prune(settings_for(warehouse_path, AS_OF))

    assert counts["messages"] == 1 and counts["waiting"] == 0 and pruned(warehouse_path) == {"old2"}
