"""
### bouncehouse_transform

Builds the dbt project in `dbt/` on the DuckDB warehouse: staging views, then the marts
`message_status`, `suppression_list` and `deliverability_daily`. astronomer-cosmos renders every dbt
seed, model and its tests as Airflow tasks (`dbt_build` task group), so a failing model or test shows
as its own red task and can be retried alone. `prepare_warehouse` first creates the raw schema dbt
reads (so the DAG also builds before any ingest); then `publish_snapshot` copies the warehouse to
`<warehouse>.snapshot.duckdb`, the file analysts open.

- **Schedule**: on the Asset `bouncehouse://raw/ses_events`, i.e. after each `bouncehouse_ingest` load;
  no catchup.
- **"Now"** (dbt var `as_of`, used for suppression expiry): `BOUNCEHOUSE_AS_OF` if set, else the time
  the run was due.
- **Parsing**: Cosmos lists the project with `dbt ls` and caches the result in an Airflow Variable keyed
  by the project's checksum, so the DAG processor pays for `dbt ls` only when the project changes.
- Every dbt task and `publish_snapshot` write DuckDB: they run in the one-slot pool `bouncehouse_duckdb`.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task
from bouncehouse import orchestration
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

SETTINGS = orchestration.dag_settings()
DBT_PROJECT_DIR = Path(
    os.environ.get("BOUNCEHOUSE_DBT_PROJECT_DIR") or Path(__file__).resolve().parents[1] / "dbt"
)
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")
DBT_ENV = orchestration.dbt_env(SETTINGS)
DBT_VARS = {"as_of": orchestration.dbt_as_of(SETTINGS)}


@dag(
    dag_id="bouncehouse_transform",
    schedule=[orchestration.RAW_EVENTS_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.default_args(),
    tags=[*orchestration.TAGS, "dbt", "transform"],
    doc_md=__doc__,
)
def bouncehouse_transform() -> None:
    dbt_build = DbtTaskGroup(
        group_id="dbt_build",
        project_config=ProjectConfig(dbt_project_path=DBT_PROJECT_DIR, env_vars=DBT_ENV),
        profile_config=ProfileConfig(
            profile_name=orchestration.DBT_PROFILE,
            target_name=orchestration.DBT_TARGET,
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        # dbt runs in the task's own interpreter (dbtRunner, no subprocess); the path of the venv's `dbt`
        # only satisfies Cosmos' check when the venv is not on PATH.
        execution_config=ExecutionConfig(
            dbt_executable_path=DBT_EXECUTABLE, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_behavior=TestBehavior.AFTER_EACH,
            emit_datasets=False,
            dbt_deps=False,
        ),
        operator_args={
            "pool": orchestration.POOL,
            "vars": DBT_VARS,
            "install_deps": False,
            "emit_datasets": False,
        },
    )

    @task(pool=orchestration.POOL)
    def prepare_warehouse() -> dict[str, str]:
        """Create the raw schema dbt reads as sources, so a transform before any ingest still builds."""
        from bouncehouse.warehouse import session

        with session(SETTINGS.warehouse, lock_timeout=SETTINGS.lock_timeout):
            pass
        return orchestration.report("prepare_warehouse", {"warehouse": str(SETTINGS.warehouse)})

    @task(pool=orchestration.POOL)
    def publish_snapshot() -> dict[str, str]:
        """Copy the warehouse to the read-only snapshot analysts open."""
        from bouncehouse.warehouse import publish_snapshot as publish

        target = publish(SETTINGS.warehouse, lock_timeout=SETTINGS.lock_timeout)
        return orchestration.report("publish_snapshot", {"snapshot": str(target)})

    prepare_warehouse() >> dbt_build >> publish_snapshot()


bouncehouse_transform()
