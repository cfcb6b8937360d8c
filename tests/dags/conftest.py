"""Fixtures for the DAG tests: one Airflow home per xdist worker, shared by every test in this folder.

Airflow reads its configuration once per process, so everything that needs Airflow's metadata
database (parsing with Cosmos' cache, `airflow dags test`) runs in subprocesses with an explicit
environment; this worker's own process never points Airflow anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AirflowHome:
    path: Path

    @property
    def warehouse(self) -> Path:
        """One warehouse path for every Airflow subprocess of this worker. Cosmos keys its `dbt ls`
        cache on the dbt environment (which holds this path), so a shared path means one `dbt ls` per
        worker instead of one per test; tests that need an empty warehouse delete it first."""
        return self.path / "warehouse" / "bouncehouse.duckdb"

    def env(self, extra: Mapping[str, str] | None = None, *, fail_fast: bool = True) -> dict[str, str]:
        """A clean environment for an Airflow subprocess: no BOUNCEHOUSE_*/AWS_* from the caller."""
        from bouncehouse.airflow_run import airflow_env

        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BOUNCEHOUSE_", "AWS_", "AIRFLOW_", "AIRFLOW__", "PYTEST_"))
        }
        base["AIRFLOW_HOME"] = str(self.path)
        base["BOUNCEHOUSE_WAREHOUSE"] = str(self.warehouse)
        env = airflow_env(base, REPO_ROOT, fail_fast=fail_fast)
        env.update(extra or {})
        return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow home with the DuckDB pool, created once per worker (as `make run` does)."""
    home = AirflowHome(tmp_path_factory.mktemp("airflow_home"))
    env = home.env({"BOUNCEHOUSE_HOME": str(tmp_path_factory.mktemp("airflow_home_bouncehouse"))})
    code = "from bouncehouse.airflow_run import airflow_env, prepare_airflow; prepare_airflow(airflow_env())"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return home
