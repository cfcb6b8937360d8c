"""Prune tests share the SES JSON builders of tests/digest and tests/dbt (one copy of how SES events look;
tests/dbt's also set loaded_at, so a test can load events late) and the Firehose object writer of
tests/ingest (for the tests that go through the real ingest)."""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("digest", "dbt", "ingest"):
    _tests = str(Path(__file__).resolve().parents[1] / _folder)
    if _tests not in sys.path:
        sys.path.insert(0, _tests)
