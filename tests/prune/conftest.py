"""Prune tests share tests/dbt's read-only fetch helper (warehouse_reads) and the Firehose object writer
of tests/ingest (for the tests that go through the real ingest); the SES JSON builders come from
tests/support (see tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("dbt", "ingest"):
    _tests = str(Path(__file__).resolve().parents[1] / _folder)
    if _tests not in sys.path:
        sys.path.insert(0, _tests)
