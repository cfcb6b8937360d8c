"""Prune keeps the lake consistent with the warehouse: the events it removes leave the lake's ses_events
(file by file, rewritten from what DuckDB keeps), its pruned_* rows arrive, an address whose latest
delivery a later prune raises moves to that prune's file, and a crash in the middle of the export is
finished by the next run without a file twice."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from bouncehouse import lake
from bouncehouse.prune import prune
from bouncehouse.transform import transform
from conftest import Case, assert_lake_matches

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prune")]

# 30 days' retention: each as-of prunes the clean sends of one generated stretch (conftest FIRST, SECOND).
FIRST_PRUNE = datetime(2026, 11, 5)
SECOND_PRUNE = datetime(2026, 11, 16)


def build_and_prune(case: Case, as_of: datetime) -> dict:
    settings = case.settings(as_of=as_of.isoformat())
    transform(settings, select="+message_status")
    return prune(settings)


def lake_count(case: Case, table: str, where: str = "true") -> int:
    glob = f"{case.lake}/{table}/*/*.parquet"
    return (
        duckdb.connect()
        .execute(f"select count(*) from read_parquet('{glob}', hive_partitioning = true) where {where}")
        .fetchone()[0]
    )


def test_prune_rewrites_the_lake_from_the_warehouse(
    case: Case, generated, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.add(generated["first"])
    case.ingest()
    loaded = assert_lake_matches(case)["ses_events"]

    first = build_and_prune(case, FIRST_PRUNE)
    assert first["events"] > 1000
    rows = assert_lake_matches(case)
    assert rows["ses_events"] == loaded - first["events"]  # no pruned event left beside its pruned_* row
    assert rows["pruned_recipients"] == first["recipients"]
    assert rows["pruned_deliveries"] == first["pruned_deliveries"] > 0
    assert first["lake"]["pruned_sends_daily"]["rows"] == rows["pruned_sends_daily"] > 0

    # The second stretch shares addresses with the first: its prune raises their latest delivery, so
    # their rows move from the first prune's file to the second's. A crash after two files stops it.
    case.add(generated["second"])
    case.ingest()
    real_put = lake.LocalLake.put
    puts: list[str] = []

    def put_then_crash(self, file, key):
        real_put(self, file, key)
        puts.append(key)
        if len(puts) == 2:
            raise RuntimeError("killed after an upload")

    with monkeypatch.context() as patched:
        patched.setattr(lake.LocalLake, "put", put_then_crash)
        with pytest.raises(RuntimeError, match="killed"):
            build_and_prune(case, SECOND_PRUNE)
    assert case.pending() > 0

    again = prune(case.settings(as_of=SECOND_PRUNE.isoformat()))
    assert again["messages"] == 0  # nothing more to prune: the run only finished the export
    rows = assert_lake_matches(case)
    moved = case.rows(
        "select count(*) from raw.pruned_deliveries where pruned_at = (select max(pruned_at) from raw.pruned_deliveries)"
        " and email in (select recipient from raw.pruned_recipients where pruned_at < (select max(pruned_at) from raw.pruned_recipients))"
    )[0][0]
    assert moved > 0
    assert lake_count(case, "pruned_deliveries") == rows["pruned_deliveries"]
    distinct = (
        duckdb.connect()
        .execute(
            f"select count(distinct email) from read_parquet('{case.lake}/pruned_deliveries/*/*.parquet')"
        )
        .fetchone()[0]
    )
    assert (
        distinct == rows["pruned_deliveries"]
    )  # each address once, in the file of the prune that last raised it
