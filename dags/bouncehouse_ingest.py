"""
### bouncehouse_ingest

Loads every landing object that SNS + Kinesis Data Firehose wrote and that was not loaded before into
the DuckDB warehouse (`raw.ses_events`, `raw.ingested_objects`, `raw.rejected_records`).

- **Source**: `BOUNCEHOUSE_SOURCE`: a folder, a `file://` URI, or `s3://bucket/prefix`. S3 goes through
  the Amazon provider's connection `aws_default` (its `extra` may hold `endpoint_url` for MinIO).
- **Schedule**: every 15 minutes (`BOUNCEHOUSE_INGEST_SCHEDULE`, any cron or preset); no catchup: each
  run loads whatever is new, so missed runs are caught up by the next one.
- **Output**: the `load` task's outlet is the Asset `bouncehouse://raw/ses_events`, which triggers
  `bouncehouse_transform`. Its log line and XCom hold the counts (`objects_loaded`, `events_loaded`, ...).
- **Lake**: with `BOUNCEHOUSE_LAKE` (a folder or `s3://`, through `aws_default`), each batch is also written
  as day-partitioned Parquet after its commit, exactly once (see the README's "The raw lake").
- Writes DuckDB, so `load` runs in the one-slot pool `bouncehouse_duckdb`.
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
    dag_id="bouncehouse_ingest",
    schedule=DAG_SETTINGS.ingest_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.default_args(DAG_SETTINGS),
    tags=[*orchestration.TAGS, "ingest"],
    doc_md=__doc__,
)
def bouncehouse_ingest() -> None:
    @task(pool=orchestration.POOL, outlets=[orchestration.RAW_EVENTS_ASSET])
    def load() -> dict[str, Any]:
        """Load new objects; the S3 client comes from the `aws_default` connection."""
        from bouncehouse.ingest import ingest

        settings = orchestration.settings_for_run(SETTINGS, get_current_context())
        counts = ingest(settings, s3_client=orchestration.s3_client_for(settings))
        return orchestration.report("ingest", counts)

    load()


bouncehouse_ingest()
