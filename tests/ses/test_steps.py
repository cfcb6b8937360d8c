"""The DAG's steps outside Airflow: when the sync may start, what it does when SES is off, and the
settings' one-line errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import duckdb
import pytest
from bouncehouse.config import load_settings
from bouncehouse.errors import ConfigError
from bouncehouse.ses import steps
from bouncehouse.ses.pacing import utcnow
from bouncehouse.warehouse import publish_snapshot

HOLD_LOCK = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"
)


def test_the_sync_waits_for_a_transform_newer_than_the_last_load(settings: Any) -> None:
    assert not steps.transform_caught_up(settings), "no snapshot: no transform has finished here"
    publish_snapshot(settings.warehouse)
    assert steps.transform_caught_up(settings)
    holder = subprocess.Popen(  # another process writing, as the transform does
        [sys.executable, "-c", HOLD_LOCK, str(settings.warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert not steps.transform_caught_up(settings), "a writer holds the warehouse"
    finally:
        holder.terminate()
        holder.wait(timeout=30)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(
            "insert into raw.ingested_objects (key, size, records, events_loaded, duplicates, rejected, loaded_at)"
            " values ('late/object', 1, 0, 0, 0, 0, ?)",
            [utcnow() + timedelta(minutes=1)],
        )
    assert not steps.transform_caught_up(settings), "an object loaded after the last transform"


def test_with_ses_off_the_sync_and_figures_say_why_and_touch_nothing(settings: Any) -> None:
    assert not settings.ses_sync
    for result in (steps.sync_step(settings), steps.figures_step(settings)):
        assert result == {"skipped": steps.SKIPPED} and "BOUNCEHOUSE_SES_SYNC" in result["skipped"]
    assert "raised" in steps.alerts_step(settings), "alerts need no AWS"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("BOUNCEHOUSE_SES_SYNC", "maybe", "BOUNCEHOUSE_SES_SYNC must be true or false"),
        (
            "BOUNCEHOUSE_SES_LIFT_POLICY",
            "some",
            "BOUNCEHOUSE_SES_LIFT_POLICY must be one of ours, all, never",
        ),
        ("BOUNCEHOUSE_ALERT_SHARE", "-1", "BOUNCEHOUSE_ALERT_SHARE must be greater than 0"),
        ("BOUNCEHOUSE_ALERT_MIN_SENDS", "lots", "BOUNCEHOUSE_ALERT_MIN_SENDS must be a whole number"),
    ],
)
def test_bad_ses_settings_are_one_clear_error(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(env={name: value})
    assert load_settings(env={"BOUNCEHOUSE_SES_SYNC": "true"}).ses_sync is True
