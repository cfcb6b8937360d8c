"""The whole-job tests reuse the SES JSON builders of tests/dbt and the Firehose object writer of
tests/ingest (one copy of how SES events and landing objects look)."""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("dbt", "ingest"):
    _path = str(Path(__file__).resolve().parents[1] / _folder)
    if _path not in sys.path:
        sys.path.insert(0, _path)
