"""Prune tests share the SES JSON builders of tests/digest (one copy of how SES events look)."""

from __future__ import annotations

import sys
from pathlib import Path

_DIGEST_TESTS = str(Path(__file__).resolve().parents[1] / "digest")
if _DIGEST_TESTS not in sys.path:
    sys.path.insert(0, _DIGEST_TESTS)
