"""
### bouncehouse_ses_sync

SES in the loop, after each transform:

1. `wait_for_transform`: this DAG is scheduled on the same Asset as `bouncehouse_transform`
   (`bouncehouse://raw/ses_events`, emitted by each ingest load), so both start together; this sensor
   (reschedule mode: it frees its worker and pool slot between pokes) waits until that transform has
   finished: its last step publishes the analysts' snapshot, which is then newer than the newest loaded
   object. The transform DAG stays untouched and no second Asset is needed.
2. `sync_suppressions`: two-way sync of `suppression_list` with the SES account-level suppression list
   (SESv2), every change audited in `ops.ses_sync_log`; a killed run resumes; a second run changes nothing.
3. `pull_ses_figures`: once per UTC day, CloudWatch `Reputation.BounceRate` / `Reputation.ComplaintRate`,
   `GetSendStatistics` and `GetSendQuota` into raw tables (the digest shows them beside our rates).
4. `alerts` (runs whatever happened before it): a 7-day rate (ours or SES's) at `BOUNCEHOUSE_ALERT_SHARE`
   of SES's review level, or no object landed for `BOUNCEHOUSE_ALERT_STALE_HOURS`: logged at ERROR and
   emailed to `BOUNCEHOUSE_ALERT_EMAIL` (connection `smtp_default`), once per alert and UTC day.

5. `watcher` (the usual Airflow pattern): runs only when a task failed, and fails, so the run is marked
   failed even though `alerts` ran after the failure.

- Steps 2 and 3 talk to AWS only when `BOUNCEHOUSE_SES_SYNC=true` (through `aws_default`, or
  `BOUNCEHOUSE_SES_ENDPOINT_URL`); otherwise they log that they are skipped and why. Step 4 needs no AWS.
- **"Now"**: `BOUNCEHOUSE_AS_OF` if set, else the time the run was due.
- Every task reads or writes DuckDB: they run in the one-slot pool `bouncehouse_duckdb`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task
from bouncehouse import orchestration
from bouncehouse.ses import steps

SETTINGS = orchestration.dag_settings()


def _settings() -> Any:
    return orchestration.settings_for_run(SETTINGS, get_current_context())


@dag(
    dag_id="bouncehouse_ses_sync",
    schedule=[orchestration.RAW_EVENTS_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.default_args(),
    tags=[*orchestration.TAGS, "suppression", "alerts"],
    doc_md=__doc__,
)
def bouncehouse_ses_sync() -> None:
    @task.sensor(pool=orchestration.POOL, poke_interval=60, timeout=3600, mode="reschedule")
    def wait_for_transform() -> bool:
        """True once the transform started by the same ingest load has built the marts."""
        return steps.transform_caught_up(SETTINGS)

    @task(pool=orchestration.POOL)
    def sync_suppressions() -> dict[str, Any]:
        """Pull SES's suppression list, then push our differences (audited in ops.ses_sync_log)."""
        return orchestration.report("ses_sync", steps.sync_step(_settings()))

    @task(pool=orchestration.POOL)
    def pull_ses_figures() -> dict[str, Any]:
        """SES's reputation metrics, send statistics and quota, once per UTC day."""
        return orchestration.report("ses_figures", steps.figures_step(_settings()))

    @task(pool=orchestration.POOL, trigger_rule="all_done")
    def alerts() -> dict[str, Any]:
        """Rates near SES's review level and a quiet landing, told once per day."""
        return orchestration.report("alerts", steps.alerts_step(_settings()))

    @task(pool=orchestration.POOL, trigger_rule="one_failed")
    def watcher() -> None:
        """Fails the run when any task failed: `alerts` runs whatever happened, so without this a
        failed sync would leave only green leaves and the run would count as a success."""
        raise RuntimeError("a task of bouncehouse_ses_sync failed: see its log")

    wait, sync, figures, told = wait_for_transform(), sync_suppressions(), pull_ses_figures(), alerts()
    wait >> sync >> figures >> told
    [wait, sync, figures, told] >> watcher()


bouncehouse_ses_sync()
