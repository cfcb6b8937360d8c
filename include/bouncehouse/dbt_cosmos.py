"""The dbt project as astronomer-cosmos renders it in the transform DAG: its project, profile, execution
and render configs, built from the settings, so the DAG file only names the task group.

dbt runs with the same project, profile and target (``dbt/profiles.yml``, ``bouncehouse``/``dev``) as
``python -m bouncehouse transform``; the profile reads the warehouse path from ``BOUNCEHOUSE_WAREHOUSE``.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

from bouncehouse import orchestration
from bouncehouse.config import Settings, dbt_project_dir

# dbt profile and target in dbt/profiles.yml (the same ones `python -m bouncehouse transform` uses).
DBT_PROFILE = "bouncehouse"
DBT_TARGET = "dev"
# dbt runs in the task's own interpreter (dbtRunner, no subprocess); the path of the venv's `dbt` only
# satisfies Cosmos' check when the venv is not on PATH.
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt under Cosmos: the profile reads the warehouse path from it.

    dbt unit tests check the models' logic on fixed fixtures, not the data: they run in CI (`make test`,
    `python -m bouncehouse transform`), and dbt advises against running them in production. Under Cosmos
    they would also run after their model was built, which incremental models' unit tests do not expect.
    """
    return {
        "BOUNCEHOUSE_WAREHOUSE": str(Path(settings.warehouse).resolve()),
        "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
    }


def freeze_heap(context: Any) -> None:
    """Before a dbt task: move every object alive now out of the garbage collector's reach.

    Cosmos ends each in-process dbt command with a full ``gc.collect()`` (to release dbt's adapter
    semaphores), which walks every object Airflow, dbt and the parsed DAGs hold: about 0.5 s per task here.
    Frozen, they are skipped, so that collection walks only what the dbt command allocated."""
    gc.freeze()


def unfreeze_heap(context: Any, result: Any = None) -> None:
    """After a dbt task: hand the frozen objects back to the collector (``airflow dags test`` runs every
    task in one process)."""
    gc.unfreeze()


def task_group_configs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``DbtTaskGroup``: every dbt seed and model as one task in the one-slot DuckDB
    pool, listed with ``dbt ls`` (cached by Cosmos), with dbt's ``as_of`` var for the run.

    Each task is ``dbt build --select <node>``: the model, then its data tests, in one dbt invocation. A
    failing test still fails its model's task (red in the UI, retried alone), and the run pays dbt's start-up
    (project load, manifest writes) once per model instead of twice."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    project = dbt_project_dir()
    return {
        "project_config": ProjectConfig(dbt_project_path=project, env_vars=dbt_env(settings)),
        "profile_config": ProfileConfig(
            profile_name=DBT_PROFILE, target_name=DBT_TARGET, profiles_yml_filepath=project / "profiles.yml"
        ),
        "execution_config": ExecutionConfig(
            dbt_executable_path=DBT_EXECUTABLE, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_LS,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_behavior=TestBehavior.BUILD,
            emit_datasets=False,
            dbt_deps=False,
        ),
        "operator_args": {
            "pool": orchestration.POOL,
            "vars": {"as_of": orchestration.dbt_as_of(settings)},
            "install_deps": False,
            "emit_datasets": False,
            "pre_execute": freeze_heap,
            "post_execute": unfreeze_heap,
        },
    }
