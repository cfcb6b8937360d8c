"""What the Bouncehouse DAGs share: default arguments, the DuckDB pool, the raw-events Asset, settings
from the environment plus Airflow connections, and the failure notification.

The DAG files stay declarative; everything that decides something lives here, as plain functions that
take their inputs, so the DAG tasks are one-line callers of the ``bouncehouse`` package.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset

from bouncehouse.config import (
    DagSettings,
    Settings,
    SmtpSettings,
    load_dag_settings,
    load_settings,
    parse_as_of,
    parse_seconds,
    parse_true_false,
)

log = logging.getLogger(__name__)

OWNER = "bouncehouse"
# DuckDB allows one writing process per file: every task that writes the warehouse runs in this pool.
POOL = "bouncehouse_duckdb"
POOL_SLOTS = 1
POOL_DESCRIPTION = "Tasks that write the Bouncehouse DuckDB warehouse (DuckDB allows one writer per file)"
TAGS = ["bouncehouse", "ses"]

DEFAULT_AWS_CONN_ID = "aws_default"
DEFAULT_SMTP_CONN_ID = "smtp_default"

# The ingest DAG's load task emits this Asset; the transform DAG is scheduled on it.
RAW_EVENTS_ASSET = Asset(name="bouncehouse_raw_ses_events", uri="bouncehouse://raw/ses_events")


def default_args(dag: DagSettings | Mapping[str, str] | None = None) -> dict[str, Any]:
    """Task defaults for every DAG: owner, retries with exponential backoff, the failure notification.

    ``dag``: the DAG file's DagSettings (or an environment to read them from). ``BOUNCEHOUSE_RETRIES``
    (default 2) and ``BOUNCEHOUSE_RETRY_DELAY_SECONDS`` (default 60) tune the retries; the delay doubles
    on each try, up to 30 minutes.
    """
    if not isinstance(dag, DagSettings):
        dag = load_dag_settings(dag)
    return {
        "owner": OWNER,
        "retries": dag.retries,
        "retry_delay": timedelta(seconds=dag.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": notify_failure,
    }


def dag_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for a DAG file (read once at its top): the environment, with Airflow's connection ids."""
    settings = load_settings(env=env)
    return settings.with_overrides(
        aws_conn_id=settings.aws_conn_id or DEFAULT_AWS_CONN_ID,
        smtp_conn_id=settings.smtp_conn_id or DEFAULT_SMTP_CONN_ID,
    )


def run_as_of(settings: Settings, context: Mapping[str, Any]) -> datetime:
    """The instant that stands for "now" in one DAG run, as naive UTC.

    ``BOUNCEHOUSE_AS_OF`` wins; else the end of the run's data interval, which for Airflow 3's cron
    schedules is the logical date (the run due at D 00:00 UTC stands at D 00:00, so its digest covers
    D-1: that is what makes backfills and re-runs of a date exact); else, for runs without an interval
    (asset-triggered ones), the moment the run was due.
    """
    if settings.as_of is not None:
        return settings.as_of
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return _naive_utc(value)
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    if run_after is not None:
        return _naive_utc(run_after)
    return settings.now()


def _naive_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = parse_as_of(value.isoformat())
    else:
        parsed = parse_as_of(str(value))
    assert parsed is not None
    return parsed


def settings_for_run(settings: Settings, context: Mapping[str, Any]) -> Settings:
    return settings.with_overrides(as_of=run_as_of(settings, context))


def dbt_as_of(settings: Settings) -> str:
    """The dbt var ``as_of``: ``BOUNCEHOUSE_AS_OF`` if set, else a template for the time the run was due.

    Asset-triggered runs have no data interval, hence ``dag_run.run_after`` as the fallback.
    """
    if settings.as_of is not None:
        return settings.as_of.strftime("%Y-%m-%d %H:%M:%S")
    return "{{ (data_interval_end or dag_run.run_after).in_timezone('UTC').strftime('%Y-%m-%d %H:%M:%S') }}"


def s3_client_for(settings: Settings) -> Any | None:
    """A boto3 S3 client from the Amazon provider's connection when the source or the lake
    (``BOUNCEHOUSE_LAKE``) is on S3, else None.

    The connection's ``extra`` may carry ``endpoint_url`` (MinIO, moto) and ``region_name``.
    """
    if not settings.source.startswith("s3://") and not (settings.lake or "").startswith("s3://"):
        return None
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    conn_id = settings.aws_conn_id or DEFAULT_AWS_CONN_ID
    log.info("S3 (source %s, lake %s) through Airflow connection %r", settings.source, settings.lake, conn_id)
    return S3Hook(aws_conn_id=conn_id).get_conn()


def ses_client_for(settings: Settings) -> Any | None:
    """A boto3 SES client from the Amazon provider's connection when the digest goes through SES,
    with botocore's retries off (see ``SES_CLIENT_RETRIES``)."""
    if settings.digest_transport != "ses":
        return None
    from airflow.providers.amazon.aws.hooks.ses import SesHook
    from botocore.config import Config

    from bouncehouse.digest.transports import SES_CLIENT_RETRIES

    conn_id = settings.aws_conn_id or DEFAULT_AWS_CONN_ID
    log.info("digest over SES through Airflow connection %r", conn_id)
    return SesHook(aws_conn_id=conn_id, config=Config(retries=SES_CLIENT_RETRIES)).get_conn()


def smtp_params(conn: Any) -> dict[str, Any]:
    """SMTP parameters from an Airflow SMTP connection, read the way the SMTP provider reads them.

    ``extra``: ``disable_tls`` (no STARTTLS), ``disable_ssl`` (plain SMTP instead of SMTPS),
    ``timeout``, ``from_email``.
    """
    extra = conn.extra_dejson or {}
    where = f"connection {conn.conn_id!r} extra"
    use_ssl = not parse_true_false(f"{where} disable_ssl", extra.get("disable_ssl"))
    return {
        "host": conn.host or "localhost",
        "port": int(conn.port or (465 if use_ssl else 25)),
        "user": conn.login or None,
        "password": conn.password or None,
        "starttls": not parse_true_false(f"{where} disable_tls", extra.get("disable_tls")),
        "ssl": use_ssl,
        "timeout": parse_seconds(f"{where} timeout", extra.get("timeout", 30)),
        "from_email": extra.get("from_email"),
    }


def smtp_settings_for(settings: Settings) -> SmtpSettings | None:
    """The digest's SmtpSettings from the ``smtp_default`` connection when the transport is smtp."""
    if settings.digest_transport != "smtp":
        return None
    from airflow.sdk import BaseHook

    conn_id = settings.smtp_conn_id or DEFAULT_SMTP_CONN_ID
    params = smtp_params(BaseHook.get_connection(conn_id))
    log.info("digest over SMTP %s:%s (connection %r)", params["host"], params["port"], conn_id)
    return SmtpSettings(
        host=params["host"],
        port=params["port"],
        username=params["user"],
        password=params["password"],
        starttls=params["starttls"],
        ssl=params["ssl"],
        timeout=params["timeout"],
        from_email=params["from_email"],
    )


def report(step: str, counts: Mapping[str, Any]) -> dict[str, Any]:
    """Log a step's counts on one INFO line and return them JSON-safe (they become the task's XCom)."""
    safe = json.loads(json.dumps(dict(counts), default=str))
    log.info("%s: %s", step, ", ".join(f"{k}={v}" for k, v in safe.items()))
    return safe


def notify_failure(context: Mapping[str, Any]) -> None:
    """Task failure callback: log what failed; email ``BOUNCEHOUSE_ALERT_EMAIL`` through ``smtp_default``.

    Runs once a task has used up its retries, in the task's process, so it reads the settings there. A
    failure to send the alert is logged, never raised, so it cannot hide the task's own error.
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", "?")
    error = context.get("exception")
    log.error("bouncehouse task failed: dag=%s task=%s run=%s error=%s", dag_id, task_id, run_id, error)
    try:
        recipients = load_dag_settings().alert_email
        if recipients:
            _mail_alert(dag_settings(), recipients, dag_id, task_id, run_id, error)
    except Exception:  # the alert must never mask the task's own failure
        log.exception("could not send the failure alert")


def _mail_alert(
    settings: Settings, recipients: tuple[str, ...], dag_id: str, task_id: str, run_id: str, error: Any
) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    subject = f"[bouncehouse] {dag_id}.{task_id} failed ({run_id})"
    body = (
        f"<p>Task <b>{_escape(task_id)}</b> of DAG <b>{_escape(dag_id)}</b> failed after its retries.</p>"
        f"<p>Run: {_escape(run_id)}<br>Error: <code>{_escape(error)}</code></p>"
    )
    try:
        with SmtpHook(smtp_conn_id=settings.smtp_conn_id) as hook:
            hook.send_email_smtp(
                to=list(recipients),
                subject=subject,
                html_content=body,
                from_email=hook.from_email or settings.digest_sender,
            )
    except Exception:
        log.exception(
            "could not send the failure alert to %s through %r", ", ".join(recipients), settings.smtp_conn_id
        )
        return
    log.info("failure alert sent to %s through %r", ", ".join(recipients), settings.smtp_conn_id)


def _escape(value: Any) -> str:
    return html.escape(str(value))
