"""Property: however the same events arrive (shuffled, split into batches, some delivered twice, with
incremental dbt runs in between), message_status and suppression_list come out the same as one full
build of them all. The events include feedback SES reports through both channels (event publishing and
identity notifications: two raw events, one real event) and identity notifications that name one
recipient of several. dbt runs are slow, so examples are few and small."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from bouncehouse.transform import transform
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ses_events import Event, Message, load, settings_for

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 2, 9, 0)
AS_OF = datetime(2026, 11, 12, 0, 0)
# Models and the seed only: the data and unit tests run in test_transform.py.
MODELS_ONLY = "+message_status,resource_type:model +suppression_list,resource_type:model resource_type:seed"


def at(days: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, minutes=minutes)


def scenario() -> list[Event]:
    """Events whose outcome depends on seeing all of them: precedence, auto-reply, a Reject naming
    nobody, soft bounces that suppress only together and a delivery that clears them."""
    m1 = Message("m1", ["Ann <ann@x.com>", "ben@x.com"], at())
    m2 = Message("m2", ["cat@x.com", "dan@x.com"], at())
    m3 = Message("m3", ["eve@x.com"], at())
    events = [
        m1.send(), m1.delivery(at(minutes=1), "ann@x.com", "ben@x.com"),
        m1.bounce(at(minutes=2), "ANN@x.com", bounce_type="Transient", sub_type="General"),
        m1.complaint(at(minutes=30), "ben@x.com"), m1.bounce(at(minutes=3), "ben@x.com"),
        m2.send(), m2.reject(at(minutes=0.1)), m2.delay(at(minutes=1), "dan@x.com"),
        m3.delivery(at(minutes=1), "eve@x.com"), m3.complaint(at(minutes=9), "eve@x.com", feedback_type="not-spam"),
    ]  # fmt: skip
    for n, day in enumerate((1, 3, 5)):
        m = Message(f"fay{n}", ["fay@x.com"], at(days=day))
        events += [m.send(), m.soft_bounce(at(days=day, minutes=4), "fay@x.com")]
    for n, day in enumerate((1, 2, 3)):
        m = Message(f"gus{n}", ["gus@x.com"], at(days=day))
        events += [m.soft_bounce(at(days=day, minutes=4), "gus@x.com")]
    cleared = Message("gus3", ["gus@x.com"], at(days=4))
    events += [cleared.delivery(at(days=4, minutes=1), "gus@x.com")]
    # Two real soft bounces, each reported through both channels: four raw events, never 3 in 7 days.
    for n, day in enumerate((1, 2)):
        published, notified = (
            Message(f"hal{n}", ["hal@x.com"], at(days=day), identity=i) for i in (False, True)
        )
        events += [published.send()]
        events += [m.soft_bounce(at(days=day, minutes=4), "hal@x.com") for m in (published, notified)]
    # Identity notifications only: the bounce names ivy; jon, in mail.destination only, is sent.
    ivy = Message("ivy0", ["ivy@x.com", "jon@x.com"], at(), identity=True)
    return events + [ivy.soft_bounce(at(minutes=2), "ivy@x.com")]


EVENTS = scenario()


def marts(path: Path) -> tuple[list[tuple], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        status = con.execute(
            "select message_id, recipient, final_status, status_at, bounce_type, complaint_feedback_type, "
            "is_auto_reply, delivered from message_status order by all"
        ).fetchall()
        suppression = con.execute("select * from suppression_list order by all").fetchall()
    finally:
        con.close()
    return status, suppression


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple], list[tuple]]:
    path = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    load(path, EVENTS, datetime(2026, 11, 11))
    transform(settings_for(path, AS_OF), select=MODELS_ONLY)
    result = marts(path)
    # The reference itself is what the contract says (so the property cannot pass vacuously).
    statuses = {(m, r): s for m, r, s, *_ in result[0]}
    assert statuses[("m1", "ann@x.com")] == "delivered" and statuses[("m1", "ben@x.com")] == "complained"
    assert statuses[("m2", "cat@x.com")] == statuses[("m2", "dan@x.com")] == "rejected"
    assert statuses[("m3", "eve@x.com")] == "delivered"
    assert statuses[("hal0", "hal@x.com")] == statuses[("hal1", "hal@x.com")] == "soft_bounced"
    assert statuses[("ivy0", "ivy@x.com")] == "soft_bounced" and statuses[("ivy0", "jon@x.com")] == "sent"
    assert [row[:2] for row in result[1]] == [("ben@x.com", "complaint"), ("fay@x.com", "soft_bounce")]
    return result


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(len(EVENTS))),
    cuts=st.lists(st.integers(1, len(EVENTS) - 1), max_size=2, unique=True),
    repeats=st.lists(st.integers(0, len(EVENTS) - 1), max_size=4),
)
def test_order_batches_and_repeats_never_change_the_marts(
    tmp_path_factory: pytest.TempPathFactory, expected, order, cuts, repeats
) -> None:
    path = tmp_path_factory.mktemp("shuffled") / "warehouse.duckdb"
    shuffled = [EVENTS[i] for i in order]
    bounds = [0, *sorted(cuts), len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds)]
    # A repeated event comes again in the last batch (SNS/Firehose are at-least-once).
    batches[-1] = batches[-1] + [EVENTS[i] for i in repeats]
    settings_ = settings_for(path, AS_OF)
    for number, batch in enumerate(batches):
        load(path, batch, datetime(2026, 11, 11) + timedelta(hours=number), source_key=f"batch/{number}")
        transform(settings_, select=MODELS_ONLY)  # an incremental run after every batch
    assert marts(path) == expected
