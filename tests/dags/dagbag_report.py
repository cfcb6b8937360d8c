"""Parse the DAG folder with Airflow's DagBag and print what the integrity tests check, as JSON.

Run as a script in a subprocess (see test_dag_integrity.py) so that Airflow's configuration in the
test process stays untouched.
"""

from __future__ import annotations

import json
import os
import sys


def task_report(task) -> dict:
    return {
        "task_id": task.task_id,
        "operator": type(task).__name__,
        "pool": task.pool,
        "owner": task.owner,
        "retries": task.retries,
        "retry_exponential_backoff": float(task.retry_exponential_backoff or 0),
        "has_failure_callback": bool(task.on_failure_callback),
        "outlets": [getattr(o, "uri", str(o)) for o in task.outlets],
        "upstream": sorted(task.upstream_task_ids),
        # Cosmos' dbt operators: the dbt command and node selection each task runs.
        "dbt_command": getattr(task, "base_cmd", None),
        "dbt_select": getattr(task, "select", None),
        "dbt_exclude": getattr(task, "exclude", None),
        "has_pre_and_post_execute_hooks": bool(task._pre_execute_hook and task._post_execute_hook),
    }


def dag_report(dag) -> dict:
    condition = getattr(dag.timetable, "asset_condition", None)
    assets = sorted(
        getattr(a, "uri", str(a)) for a in getattr(condition, "objects", [condition] if condition else [])
    )
    return {
        "dag_id": dag.dag_id,
        "tags": sorted(dag.tags),
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "doc_md": dag.doc_md or "",
        "timetable": type(dag.timetable).__name__,
        "timetable_summary": dag.schedule if isinstance(dag.schedule, str) else None,
        "schedule_assets": assets,
        "tasks": [task_report(t) for t in dag.tasks],
    }


def main() -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    report = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {dag_id: dag_report(dag) for dag_id, dag in bag.dags.items()},
    }
    sys.stdout.write("\n@@REPORT@@" + json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
