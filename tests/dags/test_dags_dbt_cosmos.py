"""The transform DAG's Cosmos settings that are not visible in the rendered DAG."""

from __future__ import annotations

import gc

from bouncehouse.dbt_cosmos import freeze_heap, unfreeze_heap


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_heap_freeze_around_a_dbt_task_still_collects_what_the_task_leaves() -> None:
    """Cosmos' gc.collect() after each dbt command must still free the command's own garbage (dbt's
    adapter semaphores), while skipping the objects that were alive before the task."""
    gc.collect()
    freeze_heap({})
    try:
        assert gc.get_freeze_count() > 1000, "the objects alive before the task are frozen"
        for _ in range(10):
            Cycle()
        assert gc.collect() >= 10, "garbage made during the task is still collected"
    finally:
        unfreeze_heap({}, None)
    assert gc.get_freeze_count() == 0, "after the task the collector sees everything again"
