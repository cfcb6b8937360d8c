"""A landing folder and a warehouse per test, and a way to read the warehouse back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bouncehouse.config import Settings, load_settings


@dataclass
class Lake:
    landing: Path
    warehouse: Path

    def settings(self, source: str | None = None) -> Settings:
        return load_settings({"source": source or str(self.landing), "warehouse": str(self.warehouse)})

    def ingest(self, source: str | None = None, **kwargs: Any) -> dict[str, Any]:
        from bouncehouse.ingest import ingest

        return ingest(self.settings(source), **kwargs)

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params: Any = None) -> Any:
        return self.rows(sql, params)[0][0]

    def execute(self, sql: str, params: Any = None) -> None:
        from bouncehouse.warehouse import session

        with session(self.warehouse) as con:
            con.execute(sql, params or [])


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    landing = tmp_path / "landing"
    landing.mkdir()
    return Lake(landing=landing, warehouse=tmp_path / "warehouse" / "bouncehouse.duckdb")


@pytest.fixture
def lake_factory(tmp_path: Path) -> Callable[[str], Lake]:
    def make(name: str) -> Lake:
        landing = tmp_path / name / "landing"
        landing.mkdir(parents=True)
        return Lake(landing=landing, warehouse=tmp_path / name / "bouncehouse.duckdb")

    return make
