"""The whole-job tests reuse the Firehose object writer of tests/ingest (one copy of how landing objects
look); the SES JSON builders come from tests/support (see tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_path = str(Path(__file__).resolve().parents[1] / "ingest")
if _path not in sys.path:
    sys.path.insert(0, _path)
