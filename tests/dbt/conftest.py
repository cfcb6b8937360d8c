"""Fixtures for the dbt tests: a warehouse path per test and Settings pointing at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt"


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "bouncehouse.duckdb"


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the dbt project (for tests that edit the manual_suppressions seed)."""
    target = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT, target, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    monkeypatch.setenv("BOUNCEHOUSE_DBT_PROJECT_DIR", str(target))
    return target
