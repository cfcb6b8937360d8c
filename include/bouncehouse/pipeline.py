"""The whole job in order: ingest, transform, digest, prune (what ``python -m bouncehouse run`` does)."""

from __future__ import annotations

import logging
from typing import Any

from bouncehouse.config import Settings

log = logging.getLogger(__name__)


def run_all(settings: Settings) -> dict[str, Any]:
    """Each step's counts under its name, with ingest's contract counts also at the top level."""
    from bouncehouse.digest import send_digests
    from bouncehouse.ingest import CONTRACT_COUNTS, ingest
    from bouncehouse.prune import prune
    from bouncehouse.transform import transform

    results: dict[str, Any] = {}
    for name, step in (
        ("ingest", ingest),
        ("transform", transform),
        ("digest", send_digests),
        ("prune", prune),
    ):
        log.info("run: %s", name)
        results[name] = step(settings)
    return {**{key: results["ingest"][key] for key in CONTRACT_COUNTS}, **results}
