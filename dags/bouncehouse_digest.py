"""
### bouncehouse_digest

Emails each admin route (`BOUNCEHOUSE_ROUTES`) its daily digest: the bounced and complained recipients
of the UTC day before the run's "now", the day's counts, and the 7-day bounce and complaint rates against
SES's limits. At most one email per route and day, however often a day is re-run (`ops.digest_log`).

- **"Now"**: `BOUNCEHOUSE_AS_OF` if set, else the run's logical date: the run due on day D reports on
  day D-1 (so a backfill or a re-run of one date always reports on the same day).
- **Transport**: `BOUNCEHOUSE_DIGEST_TRANSPORT`: `outbox` (`.eml` files in `BOUNCEHOUSE_OUTBOX`),
  `smtp` (the `smtp_default` connection) or `ses` (the SES API through `aws_default`).
- **Schedule**: 02:00 UTC (`BOUNCEHOUSE_DIGEST_SCHEDULE`, default `0 2 * * *`): two hours after midnight,
  so the day's last bounces have passed Firehose's buffer, ingest and transform; catchup off unless
  `BOUNCEHOUSE_DIGEST_CATCHUP=true`. Backfill a range with
  `airflow backfill create --dag-id bouncehouse_digest --from-date 2026-11-01 --to-date 2026-11-07`.
- Writes `ops.digest_log`, so `send` runs in the one-slot pool `bouncehouse_duckdb`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task
from bouncehouse import orchestration
from bouncehouse.config import load_dag_settings

SETTINGS = orchestration.dag_settings()
DAG_SETTINGS = load_dag_settings()


@dag(
    dag_id="bouncehouse_digest",
    schedule=DAG_SETTINGS.digest_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=DAG_SETTINGS.digest_catchup,
    max_active_runs=1,
    default_args=orchestration.default_args(DAG_SETTINGS),
    tags=[*orchestration.TAGS, "digest"],
    doc_md=__doc__,
)
def bouncehouse_digest() -> None:
    @task(pool=orchestration.POOL)
    def send() -> dict[str, Any]:
        """Send (or write) one digest per route for the day before the run's "now"."""
        from bouncehouse.digest import send_digests

        settings = orchestration.settings_for_run(SETTINGS, get_current_context())
        counts = send_digests(
            settings,
            smtp=orchestration.smtp_settings_for(settings),
            ses_client=orchestration.ses_client_for(settings),
        )
        return orchestration.report("digest", counts)

    send()


bouncehouse_digest()
