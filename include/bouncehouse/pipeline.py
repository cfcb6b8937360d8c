"""The whole job in order: ingest, transform, digest, prune (what ``python -m bouncehouse run`` does)."""

from __future__ import annotations

import logging
from typing import Any

from bouncehouse.config import Settings

log = logging.getLogger(__name__)


def run_all(settings: Settings) -> dict[str, Any]:
    """Each step's counts under its name, with ingest's contract counts also at the top level."""
    from bouncehouse.digest import send_digests
    from bouncehouse.errors import DigestDeliveryError
    from bouncehouse.ingest import CONTRACT_COUNTS, ingest
    from bouncehouse.prune import prune
    from bouncehouse.transform import transform

    results: dict[str, Any] = {}
    digest_error: DigestDeliveryError | None = None
    for name, step in (
        ("ingest", ingest),
        ("transform", transform),
        ("digest", send_digests),
        ("prune", prune),
    ):
        log.info("run: %s", name)
        try:
            results[name] = step(settings)
        except DigestDeliveryError as exc:
            # The other routes went out and prune does not depend on the digest: finish, then fail.
            results[name], digest_error = dict(exc.counts), exc
    summary = {**{key: results["ingest"][key] for key in CONTRACT_COUNTS}, **results}
    if digest_error is not None:
        raise DigestDeliveryError(str(digest_error), counts=summary, problems=digest_error.problems)
    return summary
