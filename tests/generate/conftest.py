"""One generated landing tree per worker, read back once with the standard library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from landing_reader import Landing, read_landing

TREE_ARGS: dict[str, Any] = {"messages": 4000, "start": datetime(2026, 11, 16), "days": 4, "seed": 11}


@dataclass
class Tree:
    root: Path
    result: dict[str, Any]
    landing: Landing


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    from bouncehouse.demo import generate

    root = tmp_path_factory.mktemp("generated") / "landing"
    result = generate(root, **TREE_ARGS)
    return Tree(root=root, result=result, landing=read_landing(root))
