"""
### bouncehouse_prune

Drops sends whose final status is `sent`, `delivered` or `delayed` and whose last event is older than
the retention (`BOUNCEHOUSE_RETENTION_DAYS`, default 30). Never drops a bounce, complaint or reject,
never changes `suppression_list`, never changes a `deliverability_daily` figure (pruned sends are kept
as daily counts in `raw.pruned_sends_daily`).

- **"Now"**: `BOUNCEHOUSE_AS_OF` if set, else the run's logical date (its data interval end).
- **Schedule**: `@daily` (`BOUNCEHOUSE_PRUNE_SCHEDULE`); catchup off unless
  `BOUNCEHOUSE_PRUNE_CATCHUP=true`. Backfill with
  `airflow backfill create --dag-id bouncehouse_prune --from-date 2026-11-01 --to-date 2026-11-07`.
- **Lake**: with `BOUNCEHOUSE_LAKE`, the lake's files the pruned events were in are rewritten from the
  warehouse and the `pruned_*` rows written there too, after the commit.
- Deletes from the warehouse, so `prune` runs in the one-slot pool `bouncehouse_duckdb`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task
from bouncehouse import orchestration
from bouncehouse.config import load_dag_settings

SETTINGS = orchestration.dag_settings()
DAG_SETTINGS = load_dag_settings()


@dag(
    dag_id="bouncehouse_prune",
    schedule=DAG_SETTINGS.prune_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=DAG_SETTINGS.prune_catchup,
    max_active_runs=1,
    default_args=orchestration.default_args(DAG_SETTINGS),
    tags=[*orchestration.TAGS, "prune"],
    doc_md=__doc__,
)
def bouncehouse_prune() -> None:
    @task(pool=orchestration.POOL)
    def prune() -> dict[str, Any]:
        """Drop expired sends and reclaim space."""
        from bouncehouse.prune import prune as prune_warehouse

        settings = orchestration.settings_for_run(SETTINGS, get_current_context())
        counts = prune_warehouse(settings, s3_client=orchestration.s3_client_for(settings))
        return orchestration.report("prune", counts)

    prune()


bouncehouse_prune()
