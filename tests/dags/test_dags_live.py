"""A live Airflow, as `make airflow` starts it: triggering ingest starts transform through the Asset.

`python -m bouncehouse.airflow_run --standalone` runs on a free loopback port with a new Airflow home;
the test triggers `bouncehouse_ingest` and waits for the scheduler to create the Asset-triggered
`bouncehouse_transform` run and run its first task, which it does only if the DAGs are unpaused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow, pytest.mark.timeout(900)]

READ_RUNS = """
import json
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
with create_session() as session:
    dags = {d.dag_id: d.is_paused for d in session.query(DagModel)}
    runs = [
        {"dag_id": r.dag_id, "run_type": getattr(r.run_type, "value", r.run_type),
         "state": getattr(r.state, "value", r.state),
         "tasks": {t.task_id: getattr(t.state, "value", t.state)
                   for t in session.query(TaskInstance).filter_by(run_id=r.run_id, dag_id=r.dag_id)}}
        for r in session.query(DagRun)
    ]
print("@@STATE@@" + json.dumps({"paused": dags, "runs": runs}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_state(env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", READ_RUNS], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if completed.returncode != 0 or "@@STATE@@" not in completed.stdout:
        return {"paused": {}, "runs": []}  # the database is still being migrated
    return json.loads(completed.stdout.split("@@STATE@@")[-1])


def wait_for(
    env: dict[str, str], what: str, check: Any, server: subprocess.Popen, log: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert server.poll() is None, f"airflow standalone exited: {log.read_text()[-3000:]}"
        state = airflow_state(env)
        if check(state):
            return state
        time.sleep(5)
    pytest.fail(f"waited 10 minutes for {what}; last state {state}; log {log.read_text()[-3000:]}")


def test_triggering_ingest_runs_transform_through_the_asset(tmp_path: Path) -> None:
    from bouncehouse.demo import generate

    landing = tmp_path / "landing"
    generate(landing, messages=100, start=datetime(2026, 11, 18, 6), days=1, seed=3)
    from bouncehouse.airflow_run import airflow_env

    port = free_port()
    caller = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOUNCEHOUSE_", "AWS_", "AIRFLOW_", "AIRFLOW__", "PYTEST_"))
    }
    env = airflow_env(
        {
            **caller,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "BOUNCEHOUSE_HOME": str(tmp_path),
            "BOUNCEHOUSE_SOURCE": str(landing),
            "AIRFLOW__API__PORT": str(port),
            # Only the trigger below starts ingest: no 29 February lies between the DAG's start_date
            # (2026-01-01) and now, so the scheduler has no run of its own to create.
            "BOUNCEHOUSE_INGEST_SCHEDULE": "0 0 29 2 *",
        },
        REPO_ROOT,
        fail_fast=False,
    )
    log = tmp_path / "standalone.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "bouncehouse.airflow_run", "--standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,  # its own process group: the scheduler's children stop with it
        )
    try:
        dag_ids = ("bouncehouse_ingest", "bouncehouse_transform")
        state = wait_for(
            env, "the DAGs to be parsed", lambda s: all(d in s["paused"] for d in dag_ids), server, log
        )
        assert not any(state["paused"][d] for d in dag_ids), f"paused: {state['paused']}"

        airflow = str(Path(sys.executable).with_name("airflow"))
        trigger = subprocess.run(
            [airflow, "dags", "trigger", "bouncehouse_ingest"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert trigger.returncode == 0, trigger.stderr[-2000:]

        def transform_started(s: dict[str, Any]) -> bool:
            return any(
                r["dag_id"] == "bouncehouse_transform"
                and r["run_type"] == "asset_triggered"
                and r["tasks"].get("prepare_warehouse") == "success"
                for r in s["runs"]
            )

        state = wait_for(env, "an Asset-triggered transform run", transform_started, server, log)
        ingest = [r for r in state["runs"] if r["dag_id"] == "bouncehouse_ingest"]
        assert [(r["run_type"], r["state"]) for r in ingest] == [("manual", "success")], ingest
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
