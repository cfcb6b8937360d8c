"""`make run`'s driver: which environment Airflow gets, and when demo data is generated (contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bouncehouse.airflow_run import DAG_ORDER, airflow_env, ensure_demo_data, standalone_env
from bouncehouse.config import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_dags_run_in_the_contract_order() -> None:
    # bouncehouse_ses_sync: after each transform (SES in the loop), before the digest that shows its figures.
    assert DAG_ORDER == (
        "bouncehouse_ingest",
        "bouncehouse_transform",
        "bouncehouse_ses_sync",
        "bouncehouse_digest",
        "bouncehouse_prune",
    )


def test_airflow_env_is_project_local_and_keeps_what_the_caller_set(tmp_path: Path) -> None:
    env = airflow_env({"PATH": "/usr/bin", "BOUNCEHOUSE_SOURCE": "s3://b/p/"}, tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path / ".airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["BOUNCEHOUSE_SOURCE"] == "s3://b/p/", "BOUNCEHOUSE_* reach the DAGs unchanged"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["BOUNCEHOUSE_RETRIES"] == "0"
    # dbt's partial-parse cache belongs to this Airflow home, not to /tmp/cosmos shared by every checkout.
    assert env["AIRFLOW__COSMOS__CACHE_DIR"] == str(tmp_path / ".airflow" / "cosmos")

    mine = airflow_env({"AIRFLOW_HOME": "/srv/airflow", "BOUNCEHOUSE_RETRIES": "3"}, tmp_path)
    assert mine["AIRFLOW_HOME"] == "/srv/airflow" and mine["BOUNCEHOUSE_RETRIES"] == "3"
    assert "BOUNCEHOUSE_RETRIES" not in airflow_env({}, tmp_path, fail_fast=False)


def test_demo_data_when_the_default_source_is_empty(tmp_path: Path) -> None:
    settings = load_settings(env={"BOUNCEHOUSE_HOME": str(tmp_path)})
    assert settings.source_is_default
    written = ensure_demo_data(settings)
    assert written is not None and written["messages"] > 2000, "a few thousand messages, as the contract asks"
    files = [p for p in (tmp_path / "data" / "landing").rglob("*") if p.is_file()]
    assert len(files) == written["objects"]
    # Once the source holds something, nothing more is generated.
    assert ensure_demo_data(settings) is None
    assert len([p for p in (tmp_path / "data" / "landing").rglob("*") if p.is_file()]) == len(files)


def test_no_demo_data_for_a_source_the_user_chose(tmp_path: Path) -> None:
    chosen = tmp_path / "my-landing"
    settings = load_settings(env={"BOUNCEHOUSE_HOME": str(tmp_path), "BOUNCEHOUSE_SOURCE": str(chosen)})
    assert ensure_demo_data(settings) is None
    assert not chosen.exists()
    # Even when the chosen path is the default one, spelled out.
    spelled = load_settings(env={"BOUNCEHOUSE_HOME": str(tmp_path), "BOUNCEHOUSE_SOURCE": "data/landing"})
    assert ensure_demo_data(spelled) is None
    assert not (tmp_path / "data" / "landing").exists()


def test_make_airflow_unpauses_the_dags_so_ingest_triggers_transform(tmp_path: Path) -> None:
    """Airflow pauses new DAGs by default: the Asset would then never start transform after an ingest."""
    env = standalone_env({"PATH": "/usr/bin:/bin", "BOUNCEHOUSE_HOME": str(REPO_ROOT)})
    env["AIRFLOW_HOME"] = str(tmp_path / ".airflow")
    airflow = Path(sys.executable).with_name("airflow")
    read = subprocess.run(
        [str(airflow), "config", "get-value", "core", "dags_are_paused_at_creation"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "False"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    kept = standalone_env({"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"})
    assert kept["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True", "what the operator set wins"


READ_PAUSED = """
import json
from airflow.models.dag import DagModel
from airflow.utils.session import create_session
with create_session() as session:
    print("@@PAUSED@@" + json.dumps({d.dag_id: d.is_paused for d in session.query(DagModel)}))
"""


def airflow_step(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=300, check=False, cwd=REPO_ROOT
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def paused_dags(env: dict[str, str]) -> dict[str, bool]:
    out = airflow_step(env, sys.executable, "-c", READ_PAUSED)
    states = json.loads(out.split("@@PAUSED@@")[-1])
    return {dag_id: states[dag_id] for dag_id in DAG_ORDER}


@pytest.mark.slow
@pytest.mark.xdist_group("airflow")
def test_make_airflow_unpauses_the_dags_an_older_airflow_home_holds_paused(
    airflow_home: Any, tmp_path: Path
) -> None:
    """A metadata database from before the DAGs started unpaused keeps them paused, so the Asset would
    never start transform after an ingest: `make airflow`'s start-up step unpauses them."""
    older = airflow_home.env(
        {"BOUNCEHOUSE_HOME": str(tmp_path), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"},
        fail_fast=False,
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    airflow_step(older, airflow, "dags", "reserialize")
    airflow_step(older, airflow, "dags", "pause", "--treat-dag-id-as-regex", "--yes", "^bouncehouse_")
    assert set(paused_dags(older).values()) == {True}

    start_up = [
        sys.executable,
        "-c",
        "from bouncehouse.airflow_run import prepare_standalone; prepare_standalone()",
    ]
    # The operator who asks for paused DAGs keeps them paused.
    airflow_step(older, *start_up)
    assert set(paused_dags(older).values()) == {True}

    now = {k: v for k, v in older.items() if k != "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"}
    airflow_step(now, *start_up)
    assert paused_dags(now) == dict.fromkeys(DAG_ORDER, False)
