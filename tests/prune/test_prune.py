"""Prune on marts built by dbt: it drops exactly the expired clean sends, keeps every bounce, complaint
and reject, and changes neither suppression_list nor deliverability_daily, now or after the next
transform."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bouncehouse import warehouse
from bouncehouse.config import Settings, load_settings
from bouncehouse.errors import ConfigError
from bouncehouse.prune import prune
from ses_events import Event, Message, load

pytestmark = pytest.mark.xdist_group("prune")

AS_OF = datetime(2026, 11, 22, 6, 0)
OLD = datetime(2026, 10, 1, 9, 0)  # well before the 30-day cutoff (2026-10-23 06:00)
RECENT = datetime(2026, 11, 18, 9, 0)
CUSTOMER = {"user_type": ["customer"]}

CLEAN_OLD = {*(f"old-delivered-{i}" for i in range(5)), "old-sent-only", "old-delivery-after-soft-bounces"}


def expected_pruned(settings: Settings) -> set[str]:
    """Every clean old send goes, delayed ones too (the contract: sent, delivered or delayed)."""
    return CLEAN_OLD | {"old-delayed"}


def scenario() -> list[Event]:
    events: list[Event] = []
    for i in range(5):
        m = Message(
            f"old-delivered-{i}",
            [f"d{i}@example.com", f"e{i}@example.com"],
            OLD + timedelta(days=i),
            tags=CUSTOMER,
        )
        events += [m.send(), m.delivery(OLD + timedelta(days=i, minutes=1))]
    m = Message("old-delayed", ["slow@example.com"], OLD)
    events += [m.send(), m.delay(OLD + timedelta(hours=1))]
    m = Message("old-sent-only", ["quiet@example.com"], OLD)
    events += [m.send()]

    # Kept, although old: each has a Bounce, Complaint or Reject event.
    m = Message("old-hard", ["hard@example.com"], OLD)
    events += [m.send(), m.bounce(OLD + timedelta(minutes=1), "hard@example.com")]
    m = Message("old-ooo", ["away@example.com"], OLD)
    events += [
        m.send(),
        m.delivery(OLD + timedelta(minutes=1)),
        m.bounce(OLD + timedelta(minutes=2), "away@example.com", bounce_type="Transient", sub_type="General"),
    ]
    m = Message("old-not-spam", ["fan@example.com"], OLD)
    events += [
        m.send(),
        m.delivery(OLD + timedelta(minutes=1)),
        m.complaint(OLD + timedelta(hours=2), "fan@example.com", feedback_type="not-spam"),
    ]
    m = Message("old-complaint", ["angry@example.com"], OLD)
    events += [
        m.send(),
        m.delivery(OLD + timedelta(minutes=1)),
        m.complaint(OLD + timedelta(hours=2), "angry@example.com"),
    ]
    m = Message("old-reject", ["virus@example.com"], OLD)
    events += [m.send(), m.reject()]
    m = Message("old-mixed", ["ok@example.com", "gone@example.com"], OLD)
    events += [
        m.send(),
        m.delivery(OLD + timedelta(minutes=1), "ok@example.com"),
        m.bounce(OLD + timedelta(minutes=1), "gone@example.com"),
    ]
    # Old send, but its last event (an open) is recent: kept.
    m = Message("old-opened-recently", ["reader@example.com"], OLD)
    events += [m.send(), m.delivery(OLD + timedelta(minutes=1)), m.open(RECENT)]

    # Three soft bounces in a week, then a delivery: the delivery (prunable) cleared the suppression,
    # and the suppression would have expired anyway (14 days after the last soft bounce).
    for n in range(3):
        m = Message(f"old-soft-{n}", ["flaky@example.com"], OLD + timedelta(days=n))
        events += [
            m.send(),
            m.bounce(
                OLD + timedelta(days=n, minutes=1),
                "flaky@example.com",
                bounce_type="Transient",
                sub_type="MailboxFull",
            ),
        ]
    m = Message("old-delivery-after-soft-bounces", ["flaky@example.com"], OLD + timedelta(days=5))
    events += [m.send(), m.delivery(OLD + timedelta(days=5, minutes=1))]

    # Recent: within the retention, kept whatever its status.
    for n in range(3):
        m = Message(f"recent-soft-{n}", ["full@example.com"], RECENT + timedelta(days=n))
        events += [
            m.send(),
            m.bounce(
                RECENT + timedelta(days=n, minutes=1),
                "full@example.com",
                bounce_type="Transient",
                sub_type="MailboxFull",
            ),
        ]
    m = Message("recent-delivered", ["new@example.com"], RECENT)
    events += [m.send(), m.delivery(RECENT + timedelta(minutes=1))]
    return events


def _settings(home: Path, **overrides: Any) -> Settings:
    values = {"warehouse": str(home / "warehouse.duckdb"), "as_of": AS_OF, "lock_timeout": 30, **overrides}
    return load_settings(values, env={}, home=home)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bouncehouse.transform import transform

    home = tmp_path_factory.mktemp("prune-build")
    settings = _settings(home)
    load(settings.warehouse, scenario())
    transform(settings)
    return settings.warehouse


@pytest.fixture
def settings(built: Path, tmp_path: Path) -> Settings:
    (tmp_path / "warehouse.duckdb").write_bytes(built.read_bytes())
    return _settings(tmp_path)


def _snapshot(settings: Settings) -> dict[str, Any]:
    with warehouse.session(settings.warehouse) as con:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return con.execute(sql).fetchall()

        return {
            "suppression_list": rows("select * from suppression_list order by all"),
            "deliverability_daily": rows(
                "select * exclude (day), day::date from deliverability_daily order by day"
            ),
            "kept_events": rows(
                "select event_id from raw.ses_events where event_type in ('Bounce', 'Complaint', 'Reject') order by 1"
            ),
            "status_messages": {r[0] for r in rows("select distinct message_id from message_status")},
            "raw_messages": {r[0] for r in rows("select distinct message_id from raw.ses_events")},
            "pruned": {r[0] for r in rows("select message_id from raw.pruned_messages")},
        }


def test_prune_drops_expired_clean_sends_and_changes_no_figure(settings: Settings) -> None:
    from bouncehouse.transform import transform

    before = _snapshot(settings)
    expected = expected_pruned(settings)
    delayed = "old-delayed" in expected
    assert expected <= before["status_messages"]
    assert before["suppression_list"], "the scenario must suppress someone"
    assert len(before["kept_events"]) >= 10

    counts = prune(settings)
    after = _snapshot(settings)

    assert counts["messages"] == len(expected)
    assert counts["recipients"] == 5 * 2 + 2 + delayed
    assert counts["events"] == 5 * 2 + 1 + 2 + 2 * delayed
    assert counts["bytes_before"] > 0 and counts["bytes_after"] > 0
    assert after["pruned"] == expected
    assert "old-delayed" in after["status_messages"] or delayed
    assert after["status_messages"] == before["status_messages"] - expected
    assert after["raw_messages"] == before["raw_messages"] - expected
    assert after["kept_events"] == before["kept_events"]
    assert after["suppression_list"] == before["suppression_list"]
    assert after["deliverability_daily"] == before["deliverability_daily"]

    # The next transform rebuilds the marts from what is left plus raw.pruned_sends_daily: still identical.
    transform(settings)
    rebuilt = _snapshot(settings)
    assert rebuilt["suppression_list"] == before["suppression_list"]
    assert rebuilt["deliverability_daily"] == before["deliverability_daily"]
    assert rebuilt["status_messages"] == after["status_messages"]
    assert rebuilt["kept_events"] == before["kept_events"]

    # Nothing left to prune.
    again = prune(settings)
    assert again["messages"] == 0 and again["events"] == 0


def test_prune_keeps_everything_within_a_longer_retention(settings: Settings) -> None:
    before = _snapshot(settings)
    counts = prune(settings.with_overrides(retention_days=365))
    assert counts["messages"] == 0
    assert _snapshot(settings)["raw_messages"] == before["raw_messages"]


def test_retention_shorter_than_soft_bounce_expiry_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="at least 14"):
        prune(settings.with_overrides(retention_days=13))


def test_cli_prune_prints_counts_last(settings: Settings) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bouncehouse",
            "prune",
            "--warehouse",
            str(settings.warehouse),
            "--as-of",
            "2026-11-22T06:00:00Z",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["messages"] == len(expected_pruned(settings))
    assert {"recipients", "events", "bytes_before", "bytes_after"} <= set(counts)
