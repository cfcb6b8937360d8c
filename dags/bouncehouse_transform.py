"""
### bouncehouse_transform

Builds the dbt project in `dbt/` on the DuckDB warehouse: staging views, then the marts
`message_status`, `suppression_list` and `deliverability_daily`. astronomer-cosmos renders every dbt
seed and model as one Airflow task (`dbt_build` task group) that runs `dbt build --select <model>`: the
model, then its data tests. A failing model or test turns that model's task red, and it can be retried
alone. `prepare_warehouse` first creates the raw schema dbt
reads (so the DAG also builds before any ingest); then `publish_snapshot` copies the warehouse to
`<warehouse>.snapshot.duckdb`, the file analysts open.

- **Schedule**: on the Asset `bouncehouse://raw/ses_events`, i.e. after each `bouncehouse_ingest` load;
  no catchup.
- **"Now"** (dbt var `as_of`, used for suppression expiry): `BOUNCEHOUSE_AS_OF` if set, else the time
  the run was due.
- **Parsing**: Cosmos lists the project with `dbt ls` and caches the result in an Airflow Variable keyed
  by the project's checksum, so the DAG processor pays for `dbt ls` only when the project changes
  (`make run` and `make airflow` list it once, with no import timeout, when they create a new home).
- **Speed**: every dbt task runs in the task's own interpreter (dbtRunner) and reuses dbt's partial-parse
  file through Cosmos' cache (kept in the Airflow home); dbt unit tests are left to CI.
- Every dbt task and `publish_snapshot` write DuckDB: they run in the one-slot pool `bouncehouse_duckdb`.
- **`BOUNCEHOUSE_ENGINE=spark`**: one task, `dbt_build_on_spark`, runs the whole `dbt build` on Spark
  from the lake (`BOUNCEHOUSE_LAKE`) in its own process, one SparkSession for every model and test (a
  task per model would start Spark and register the lake each time), then copies Spark's models into
  the warehouse; its log lists every dbt node with its status and time, its return value the counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task
from bouncehouse import dbt_cosmos, orchestration
from bouncehouse.config import load_dag_settings
from cosmos import DbtTaskGroup

SETTINGS = orchestration.dag_settings()
DAG_SETTINGS = load_dag_settings()


@dag(
    dag_id="bouncehouse_transform",
    schedule=[orchestration.RAW_EVENTS_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.default_args(DAG_SETTINGS),
    tags=[*orchestration.TAGS, "dbt", "transform"],
    doc_md=__doc__,
)
def bouncehouse_transform() -> None:
    @task(pool=orchestration.POOL)
    def dbt_build_on_spark(**context: Any) -> dict[str, Any]:
        """``dbt build`` of the whole project on Spark from the lake, then its models into the warehouse."""
        from bouncehouse.transform import transform

        counts = transform(orchestration.settings_for_run(SETTINGS, context))
        return orchestration.report("dbt_build_on_spark", counts)

    if SETTINGS.engine == "spark":
        dbt_build = dbt_build_on_spark()
    else:
        dbt_build = DbtTaskGroup(group_id="dbt_build", **dbt_cosmos.task_group_configs(SETTINGS))

    @task(pool=orchestration.POOL)
    def prepare_warehouse() -> dict[str, str]:
        """Create the raw schema dbt reads as sources, so a transform before any ingest still builds."""
        from bouncehouse import warehouse

        path = warehouse.prepare(SETTINGS)
        return orchestration.report("prepare_warehouse", {"warehouse": str(path)})

    @task(pool=orchestration.POOL)
    def publish_snapshot() -> dict[str, str]:
        """Copy the warehouse to the read-only snapshot analysts open."""
        from bouncehouse import warehouse

        target = warehouse.publish(SETTINGS)
        return orchestration.report("publish_snapshot", {"snapshot": str(target)})

    prepare_warehouse() >> dbt_build >> publish_snapshot()


bouncehouse_transform()
