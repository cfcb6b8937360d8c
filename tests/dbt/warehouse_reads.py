"""Reading a warehouse file the way an analyst would: read-only, closed again at once (so the next
pipeline step can open it for writing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def fetch(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
