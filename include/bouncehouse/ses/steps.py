"""The steps of the ``bouncehouse_ses_sync`` DAG, as plain functions of Settings (the DAG only wires them).

Inside Airflow, boto3 clients come from the Amazon provider's connection (``aws_default``, whose extra
may carry ``endpoint_url`` and ``region_name``) unless ``BOUNCEHOUSE_SES_ENDPOINT_URL`` is set, and the
alert email goes through the SMTP connection (``smtp_default``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import duckdb

from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError
from bouncehouse.warehouse import is_lock_error, snapshot_path

log = logging.getLogger(__name__)

SKIPPED = (
    "skipped: BOUNCEHOUSE_SES_SYNC is not enabled (set it to true, with AWS credentials, to talk to SES)"
)


def transform_caught_up(settings: Settings) -> bool:
    """True once a transform has finished after the latest ingest load: the transform publishes the
    analysts' snapshot as its last step, so the snapshot is newer than the newest loaded object (both
    are stamped by the clock). False while a writer holds the warehouse (the transform, most likely)."""
    snapshot = snapshot_path(settings.warehouse)
    if not snapshot.exists():
        log.info("no snapshot at %s yet: waiting for the transform", snapshot)
        return False
    try:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.IOException as exc:
        if is_lock_error(exc):
            return False
        raise ConfigError(f"cannot open the warehouse {settings.warehouse}: {exc}") from None
    try:
        loaded = con.execute("select max(loaded_at) from raw.ingested_objects").fetchone()[0]
    finally:
        con.close()
    published = datetime.fromtimestamp(snapshot.stat().st_mtime, UTC).replace(tzinfo=None)
    caught_up = loaded is None or published >= loaded
    log.info("last object loaded at %s, marts published at %s: %s", loaded, published,
             "go" if caught_up else "waiting for the transform")  # fmt: skip
    return caught_up


def client_for(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` (sesv2, ses, cloudwatch), botocore's retries off (PacedCaller retries)."""
    from bouncehouse.ses.pacing import boto3_client, client_config

    if settings.ses_endpoint_url or not settings.aws_conn_id:
        return boto3_client(service, settings)
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=settings.aws_conn_id, client_type=service, config=client_config()).conn


def sync_step(settings: Settings, *, dry_run: bool = False) -> dict[str, Any]:
    if not settings.ses_sync:
        log.info("ses suppression sync %s", SKIPPED)
        return {"skipped": SKIPPED}
    from bouncehouse.ses.suppression_sync import sync_suppressions

    return sync_suppressions(settings, client_for("sesv2", settings), dry_run=dry_run)


def figures_step(settings: Settings) -> dict[str, Any]:
    if not settings.ses_sync:
        log.info("SES's own figures %s", SKIPPED)
        return {"skipped": SKIPPED}
    from bouncehouse.ses.reputation import pull_reputation

    return pull_reputation(settings, client_for("cloudwatch", settings), client_for("ses", settings))


def alerts_step(settings: Settings) -> dict[str, Any]:
    """Rate and freshness alerts; the email goes through Airflow's SMTP connection when there is one."""
    from bouncehouse.ses.alerts import check_alerts, smtp_sender

    sender = None
    if settings.alert_email:
        try:
            from airflow.sdk import BaseHook

            from bouncehouse import orchestration

            conn = BaseHook.get_connection(settings.smtp_conn_id or orchestration.DEFAULT_SMTP_CONN_ID)
            sender = smtp_sender(orchestration.smtp_settings_from_params(orchestration.smtp_params(conn)))
        except Exception as exc:  # no SMTP connection: the alerts are still logged (and recorded)
            log.error("alerts: no SMTP connection to email %s through: %s", settings.alert_email, exc)
    return check_alerts(settings, sender)
