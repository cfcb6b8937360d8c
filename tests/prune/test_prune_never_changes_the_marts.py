"""Prune against the marts' own rules, one hazard per test: whatever it removes, the next transform gives
the same suppression_list and deliverability_daily as before the prune."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bouncehouse.prune import prune
from bouncehouse.transform import transform
from dbt_events import Event, Message, load, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prune")]

AS_OF = datetime(2026, 11, 22, 6, 0)
LOADED = AS_OF - timedelta(hours=2)
DIGEST_TAGS = {"bouncehouse_message": ["digest"]}


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "bouncehouse.duckdb"


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def fetch(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


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
