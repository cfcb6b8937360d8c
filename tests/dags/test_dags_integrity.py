"""DAG integrity: every DAG file imports, and every DAG carries the settings operators rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow]

EXPECTED_DAG_IDS = {
    "bouncehouse_ingest",
    "bouncehouse_transform",
    "bouncehouse_digest",
    "bouncehouse_prune",
    "bouncehouse_ses_sync",
}
POOL = "bouncehouse_duckdb"
RAW_EVENTS_URI = "bouncehouse://raw/ses_events"
MARTS = ("message_status", "suppression_list", "deliverability_daily")


def parse_dag_folder(airflow_home: Any, tmp_path: Path, extra: dict[str, str] | None = None) -> dict:
    # fail_fast=False: the DAGs' own retry defaults, not the ones `make run` uses for `dags test`.
    env = airflow_home.env({"BOUNCEHOUSE_HOME": str(tmp_path), **(extra or {})}, fail_fast=False)
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("dagbag_report.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.split("@@REPORT@@")[-1])


@pytest.fixture(scope="module")
def report(airflow_home: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse_dag_folder(airflow_home, tmp_path_factory.mktemp("dagbag"))


@pytest.fixture(scope="module")
def dags(report: dict[str, Any]) -> dict[str, Any]:
    return report["dags"]


def test_every_dag_file_imports_without_error(report: dict[str, Any]) -> None:
    assert report["import_errors"] == {}


def test_the_contract_dag_ids_and_only_them(dags: dict[str, Any]) -> None:
    assert set(dags) == EXPECTED_DAG_IDS
    dag_files = {p.stem for p in (REPO_ROOT / "dags").glob("*.py")}
    assert dag_files == EXPECTED_DAG_IDS, "dags/ holds DAG files only, one per DAG"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_level_settings(dags: dict[str, Any], dag_id: str) -> None:
    dag = dags[dag_id]
    assert "bouncehouse" in dag["tags"] and len(dag["tags"]) >= 2
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False
    assert f"### {dag_id}" in dag["doc_md"], "the module docstring is the DAG's doc_md"
    assert dag["tasks"], "a DAG with no task"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_every_task_has_owner_retries_backoff_and_alert(dags: dict[str, Any], dag_id: str) -> None:
    for task in dags[dag_id]["tasks"]:
        assert task["owner"] == "bouncehouse", task
        assert task["retries"] >= 1, task
        assert task["retry_exponential_backoff"] > 1, task
        assert task["has_failure_callback"], task


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_every_warehouse_writer_runs_in_the_one_slot_pool(dags: dict[str, Any], dag_id: str) -> None:
    # Every task of these DAGs opens the DuckDB file for writing (load, dbt, snapshot, digest log, prune).
    offenders = [t["task_id"] for t in dags[dag_id]["tasks"] if t["pool"] != POOL]
    assert offenders == []


def test_schedules(dags: dict[str, Any]) -> None:
    assert dags["bouncehouse_ingest"]["timetable_summary"] == "*/15 * * * *"
    assert dags["bouncehouse_digest"]["timetable_summary"] == "0 2 * * *"  # after the day's late events land
    assert dags["bouncehouse_prune"]["timetable_summary"] == "@daily"
    assert dags["bouncehouse_transform"]["schedule_assets"] == [RAW_EVENTS_URI]
    # After each transform: started by the same Asset, its first task waits for that transform.
    assert dags["bouncehouse_ses_sync"]["schedule_assets"] == [RAW_EVENTS_URI]


def test_ingest_load_task_emits_the_asset_transform_waits_for(dags: dict[str, Any]) -> None:
    load = {t["task_id"]: t for t in dags["bouncehouse_ingest"]["tasks"]}["load"]
    assert load["outlets"] == [RAW_EVENTS_URI]


def dbt_model_names() -> set[str]:
    return {p.stem for p in (REPO_ROOT / "dbt" / "models").rglob("*.sql")}


def test_transform_renders_every_dbt_model_with_its_tests_as_one_task(dags: dict[str, Any]) -> None:
    """One task per model, `dbt build --select <model>`: the model, then its data tests, so a failing test
    still turns its model's task red (and a retry rebuilds and retests that model alone)."""
    tasks = {t["task_id"]: t for t in dags["bouncehouse_transform"]["tasks"]}
    models = dbt_model_names()
    assert set(MARTS) <= models, "the dbt project must define the contract's marts"
    for model in models:
        task = tasks.get(f"dbt_build.{model}_model_build")
        assert task, f"dbt model {model} is not a task: {sorted(tasks)}"
        assert task["operator"] == "DbtBuildLocalOperator"
        assert task["dbt_command"] == ["build"], "dbt build runs the model's data tests after it"
        assert task["dbt_select"].endswith(f".{model}") and task["dbt_select"].startswith("fqn:")
        assert not task["dbt_exclude"], "nothing may exclude the model's data tests"
        assert task["has_pre_and_post_execute_hooks"], "the heap freeze around each dbt command"
    seeds = {p.stem for p in (REPO_ROOT / "dbt" / "seeds").glob("*.csv")}
    for seed in seeds:
        assert f"dbt_build.{seed}_seed_build" in tasks, f"dbt seed {seed} is not a task"
    dbt_tasks = [tid for tid in tasks if tid.startswith("dbt_build.")]
    assert len(dbt_tasks) == len(models) + len(seeds), "one task per model or seed, no separate test tasks"


def test_transform_publishes_the_snapshot_after_every_dbt_task(dags: dict[str, Any]) -> None:
    tasks = {t["task_id"]: t for t in dags["bouncehouse_transform"]["tasks"]}
    publish = tasks["publish_snapshot"]
    assert publish["upstream"], "publish_snapshot must wait for dbt"
    assert all(u.startswith("dbt_build.") for u in publish["upstream"])
    # Nothing in the dbt group is left downstream-free except through publish_snapshot.
    downstream_of_something = {u for t in tasks.values() for u in t["upstream"]}
    leaves = [tid for tid in tasks if tid not in downstream_of_something and tid != "publish_snapshot"]
    assert leaves == []
    # ...and every dbt task that starts the graph waits for the raw schema to exist.
    roots = [tid for tid, t in tasks.items() if tid.startswith("dbt_build.") and not t["upstream"]]
    assert roots == []
    assert tasks["prepare_warehouse"]["upstream"] == []


def test_schedules_and_catchup_follow_the_environment(airflow_home: Any, tmp_path: Path) -> None:
    report = parse_dag_folder(
        airflow_home,
        tmp_path,
        {
            "BOUNCEHOUSE_INGEST_SCHEDULE": "*/5 * * * *",
            "BOUNCEHOUSE_DIGEST_SCHEDULE": "0 6 * * *",
            "BOUNCEHOUSE_DIGEST_CATCHUP": "true",
            "BOUNCEHOUSE_PRUNE_CATCHUP": "true",
            "BOUNCEHOUSE_RETRIES": "5",
        },
    )
    dags = report["dags"]
    assert report["import_errors"] == {}
    assert dags["bouncehouse_ingest"]["timetable_summary"] == "*/5 * * * *"
    assert dags["bouncehouse_digest"]["timetable_summary"] == "0 6 * * *"
    assert dags["bouncehouse_digest"]["catchup"] is True
    assert dags["bouncehouse_prune"]["catchup"] is True
    assert dags["bouncehouse_ingest"]["catchup"] is False
    assert {t["retries"] for d in dags.values() for t in d["tasks"]} == {5}


def test_bad_configuration_is_an_import_error_with_one_clear_line(airflow_home: Any, tmp_path: Path) -> None:
    report = parse_dag_folder(airflow_home, tmp_path, {"BOUNCEHOUSE_DIGEST_TRANSPORT": "pigeon"})
    errors = report["import_errors"]
    assert errors, "a bad BOUNCEHOUSE_DIGEST_TRANSPORT must not parse silently"
    assert all("BOUNCEHOUSE_DIGEST_TRANSPORT must be one of" in e for e in errors.values())
