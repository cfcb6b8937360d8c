"""The helpers the DAG tasks share: "now" for a run, connections turned into clients, the alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bouncehouse.config import load_settings
from bouncehouse.errors import ConfigError

pytestmark = pytest.mark.xdist_group("airflow")


@pytest.fixture
def orchestration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    # Airflow may create its logs folder on import: keep it in this test's folder.
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    from bouncehouse import orchestration

    return orchestration


def test_as_of_comes_from_the_environment_first(orchestration: Any) -> None:
    settings = load_settings(env={"BOUNCEHOUSE_AS_OF": "2026-03-01T12:00:00Z"})
    context = {"data_interval_end": datetime(2026, 5, 1, tzinfo=UTC)}
    assert orchestration.run_as_of(settings, context) == datetime(2026, 3, 1, 12)


def test_as_of_is_the_runs_interval_end_in_naive_utc(orchestration: Any) -> None:
    settings = load_settings(env={})
    plus_two = timezone(timedelta(hours=2))
    context = {"data_interval_end": datetime(2026, 5, 2, 2, 0, tzinfo=plus_two), "logical_date": None}
    assert orchestration.run_as_of(settings, context) == datetime(2026, 5, 2, 0, 0)
    assert orchestration.settings_for_run(settings, context).now() == datetime(2026, 5, 2, 0, 0)


def test_asset_triggered_runs_use_run_after(orchestration: Any) -> None:
    settings = load_settings(env={})
    context = {
        "data_interval_end": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
    }
    assert orchestration.run_as_of(settings, context) == datetime(2026, 7, 1, 9, 30)


def test_dbt_as_of_template_renders_like_run_as_of(orchestration: Any) -> None:
    import jinja2
    import pendulum

    template = jinja2.Template(orchestration.dbt_as_of(load_settings(env={})))
    due = pendulum.datetime(2026, 7, 1, 11, 30, tz="Europe/Paris")
    assert (
        template.render(data_interval_end=None, dag_run=SimpleNamespace(run_after=due))
        == "2026-07-01 09:30:00"
    )
    assert template.render(data_interval_end=pendulum.datetime(2026, 7, 2, tz="UTC"), dag_run=None) == (
        "2026-07-02 00:00:00"
    )
    fixed = load_settings(env={"BOUNCEHOUSE_AS_OF": "2026-03-01T12:00:00+01:00"})
    assert orchestration.dbt_as_of(fixed) == "2026-03-01 11:00:00"


def test_default_args_follow_the_environment(orchestration: Any) -> None:
    args = orchestration.default_args({"BOUNCEHOUSE_RETRIES": "4", "BOUNCEHOUSE_RETRY_DELAY_SECONDS": "5"})
    assert args["retries"] == 4 and args["retry_delay"] == timedelta(seconds=5)
    assert args["retry_exponential_backoff"] == 2.0 and args["owner"] == "bouncehouse"
    assert orchestration.default_args({})["retries"] == 2
    with pytest.raises(ConfigError, match="BOUNCEHOUSE_RETRIES must be a whole number"):
        orchestration.default_args({"BOUNCEHOUSE_RETRIES": "many"})


def test_dag_settings_name_the_airflow_connections(orchestration: Any) -> None:
    settings = orchestration.dag_settings({})
    assert (settings.aws_conn_id, settings.smtp_conn_id) == ("aws_default", "smtp_default")
    custom = orchestration.dag_settings({"BOUNCEHOUSE_AWS_CONN_ID": "minio"})
    assert custom.aws_conn_id == "minio"


def test_smtp_params_read_the_connection_like_the_smtp_provider(orchestration: Any) -> None:
    from airflow.sdk import Connection

    plain = Connection(
        conn_id="smtp_default",
        conn_type="smtp",
        host="mail.internal",
        port=1025,
        login="bh",
        password="pw",
        extra=json.dumps({"disable_tls": True, "disable_ssl": True, "timeout": 5}),
    )
    assert orchestration.smtp_params(plain) == {
        "host": "mail.internal",
        "port": 1025,
        "user": "bh",
        "password": "pw",
        "starttls": False,
        "ssl": False,
        "timeout": 5.0,
        "from_email": None,
    }
    ssl = orchestration.smtp_params(Connection(conn_id="x", conn_type="smtp", host="smtp.example.com"))
    assert (ssl["ssl"], ssl["port"], ssl["starttls"]) == (True, 465, True)


def test_no_s3_client_for_a_local_source(orchestration: Any, tmp_path: Path) -> None:
    settings = orchestration.dag_settings({"BOUNCEHOUSE_SOURCE": str(tmp_path)})
    assert orchestration.s3_client_for(settings) is None


def test_s3_client_comes_from_the_aws_default_connection(
    orchestration: Any, moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto.client("s3").create_bucket(Bucket="landing")
    # Only the connection knows where S3 is.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto.endpoint_url, "region_name": "us-east-1"},
            }
        ),
    )
    settings = orchestration.dag_settings({"BOUNCEHOUSE_SOURCE": "s3://landing/ses/"})
    client = orchestration.s3_client_for(settings)
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["landing"]


def test_ses_client_comes_from_the_aws_default_connection_without_botocore_retries(
    orchestration: Any, moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                    "extra": {"endpoint_url": moto.endpoint_url, "region_name": "us-east-1"}}),
    )  # fmt: skip
    assert orchestration.ses_client_for(orchestration.dag_settings({})) is None  # outbox: no client
    settings = orchestration.dag_settings({"BOUNCEHOUSE_DIGEST_TRANSPORT": "ses"})
    client = orchestration.ses_client_for(settings)
    # botocore retrying a read timeout could send a digest twice; the digest's own loop retries.
    assert client.meta.config.retries["total_max_attempts"] == 1
    client.verify_email_identity(EmailAddress="bouncehouse@example.com")
    assert client.list_identities()["Identities"] == ["bouncehouse@example.com"]  # reached moto


def _failure_context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="bouncehouse_ingest", task_id="load", run_id="manual__1")
    return {"ti": ti, "exception": ValueError("source <missing>")}


def test_failure_alert_is_mailed_through_smtp_default(
    orchestration: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCEHOUSE_ALERT_EMAIL", "oncall@example.com, second@example.com")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": smtp_server.host,
                "port": smtp_server.port,
                "extra": {"disable_tls": True, "disable_ssl": True},
            }
        ),
    )
    orchestration.notify_failure(_failure_context())
    assert smtp_server.envelopes == [("bouncehouse@localhost", ["oncall@example.com", "second@example.com"])]
    message = smtp_server.messages[0]
    assert message["Subject"] == "[bouncehouse] bouncehouse_ingest.load failed (manual__1)"
    body = next(part for part in message.walk() if part.get_content_type() == "text/html").get_payload(
        decode=True
    )
    assert b"source &lt;missing&gt;" in body, "the error is HTML-escaped"


def test_failure_alert_without_address_only_logs(
    orchestration: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("BOUNCEHOUSE_ALERT_EMAIL", raising=False)
    with caplog.at_level("ERROR"):
        orchestration.notify_failure(_failure_context())
    assert smtp_server.messages == []
    assert "dag=bouncehouse_ingest task=load" in caplog.text


def test_an_unreachable_mail_server_never_masks_the_failure(
    orchestration: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BOUNCEHOUSE_ALERT_EMAIL", "oncall@example.com")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": 9,
                "extra": {"disable_ssl": True, "timeout": 2, "retry_limit": 1},
            }
        ),
    )
    orchestration.notify_failure(_failure_context())  # does not raise
    assert "could not send the failure alert" in caplog.text


def test_a_true_false_setting_it_cannot_read_is_one_clear_error() -> None:
    """A typo in a catchup flag used to mean "false" without a word; now it names the variable."""
    from bouncehouse.config import load_dag_settings

    assert load_dag_settings({"BOUNCEHOUSE_DIGEST_CATCHUP": "Yes"}).digest_catchup is True
    assert load_dag_settings({}).prune_catchup is False
    with pytest.raises(ConfigError, match="BOUNCEHOUSE_PRUNE_CATCHUP must be true or false, got 'ture'"):
        load_dag_settings({"BOUNCEHOUSE_PRUNE_CATCHUP": "ture"})
