"""End to end through Airflow itself: `python -m bouncehouse.airflow_run` (what `make run` calls) runs
`airflow dags test` on the four DAGs, reading generated landing objects from S3 on moto's server through
the `aws_default` connection and sending digests to a real SMTP server through `smtp_default`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-20T06:00:00Z"
BUCKET = "landing"
PREFIX = "firehose/ses/"

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow, pytest.mark.timeout(900)]


def run_airflow(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bouncehouse.airflow_run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )


def upload_tree(s3: Any, root: Path, bucket: str, prefix: str) -> list[str]:
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(root).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def fresh_warehouse(airflow_home: Any) -> Path:
    """The worker's shared warehouse path (see conftest), emptied for this test."""
    warehouse = airflow_home.warehouse
    for path in warehouse.parent.glob(f"{warehouse.stem}*"):
        path.unlink()
    return warehouse


def aws_connection(endpoint_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


def smtp_connection(host: str, port: int) -> str:
    return json.dumps(
        {"conn_type": "smtp", "host": host, "port": port, "extra": {"disable_tls": True, "disable_ssl": True}}
    )


def test_make_run_through_airflow_from_s3_to_smtp(
    airflow_home: Any, moto: Any, smtp_server: Any, tmp_path: Path
) -> None:
    from bouncehouse.config import parse_as_of
    from bouncehouse.demo import generate

    as_of = parse_as_of(AS_OF)
    assert as_of is not None
    landing = tmp_path / "generated"
    generate(landing, messages=300, start=datetime(2026, 11, 18, 6), days=2, seed=11)
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    keys = upload_tree(s3, landing, BUCKET, PREFIX)
    assert keys, "the generator wrote nothing"

    warehouse = fresh_warehouse(airflow_home)
    env = airflow_home.env(
        {
            "BOUNCEHOUSE_HOME": str(tmp_path),
            "BOUNCEHOUSE_SOURCE": f"s3://{BUCKET}/{PREFIX}",
            "BOUNCEHOUSE_ROUTES": str(REPO_ROOT / "include" / "admin_routes.yml"),
            "BOUNCEHOUSE_AS_OF": AS_OF,
            "BOUNCEHOUSE_DIGEST_TRANSPORT": "smtp",
            "BOUNCEHOUSE_LOCK_TIMEOUT": "60",
            # S3 is reachable only through the Airflow connection: no AWS_* variable in this environment.
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(moto.endpoint_url),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_server.host, smtp_server.port),
        }
    )
    assert not any(k.startswith("AWS_") for k in env)

    completed = run_airflow(env)
    assert completed.returncode == 0, completed.stderr[-4000:]

    # The summary `make run` prints.
    assert "events loaded:" in completed.stdout and "suppressions:" in completed.stdout
    assert "digests:" in completed.stdout

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        loaded = con.execute("select count(*) from raw.ingested_objects").fetchone()[0]
        events = con.execute("select count(*) from raw.ses_events").fetchone()[0]
        statuses = dict(
            con.execute("select final_status, count(*) from message_status group by 1").fetchall()
        )
        daily = con.execute("select count(*), sum(sent) from deliverability_daily").fetchone()
        suppressed = con.execute("select count(*) from suppression_list").fetchone()[0]
        digests = con.execute(
            "select route, recipients from ops.digest_log where digest_day = date '2026-11-19' and state = 'sent'"
        ).fetchall()
    finally:
        con.close()
    assert loaded == len(keys), "every object in the bucket is loaded once"
    assert events > 0 and f"events loaded: {events} " in completed.stdout
    assert statuses.get("delivered", 0) > 0 and sum(statuses.values()) >= 300
    assert daily[0] >= 1 and daily[1] > 0
    assert suppressed >= 0
    assert Path(str(warehouse).replace(".duckdb", ".snapshot.duckdb")).exists(), (
        "transform publishes the snapshot"
    )

    # One email per route that had something to report, to that route's admins, none twice.
    assert digests, "no digest was sent for the day before as_of"
    assert len(smtp_server.messages) == len(digests)
    received = sorted(sorted(rcpts) for _, rcpts in smtp_server.envelopes)
    assert received == sorted(sorted(r) for _, r in digests)


def test_a_failed_dag_run_exits_non_zero_with_one_line_and_alerts(
    airflow_home: Any, smtp_server: Any, tmp_path: Path
) -> None:
    env = airflow_home.env(
        {
            "BOUNCEHOUSE_HOME": str(tmp_path),
            "BOUNCEHOUSE_SOURCE": str(tmp_path / "no-such-landing-folder"),
            "BOUNCEHOUSE_ALERT_EMAIL": "oncall@example.com",
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_server.host, smtp_server.port),
        }
    )
    warehouse = fresh_warehouse(airflow_home)
    completed = run_airflow(env)
    assert completed.returncode == 1
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("make run: DAG bouncehouse_ingest failed"), last_line
    assert "bouncehouse_ingest.log" in last_line
    # The failure callback mailed the on-call address once (retries are 0 under `make run`).
    assert [rcpts for _, rcpts in smtp_server.envelopes] == [["oncall@example.com"]]
    alert = smtp_server.messages[0]
    assert "bouncehouse_ingest.load failed" in alert["Subject"]
    body = next(p for p in alert.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert b"no-such-landing-folder" in body, "the alert carries the task's own error"
    # Nothing ran after the failed DAG: no transform built or published anything.
    assert not warehouse.with_name(f"{warehouse.stem}.snapshot.duckdb").exists()
