"""docker-compose.yml: valid against the Compose specification, and wired the way Bouncehouse needs.

No Docker engine here: the file is checked by the real Docker Compose v2 binary (`docker-compose config`,
which parses, interpolates and validates without an engine), by jsonschema against the Compose
specification's schema, and by the semantic checks below on the resolved model.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from compose_tool import compose_binary, compose_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
ALL_SERVICES = AIRFLOW_SERVICES | {"airflow-init", "postgres", "minio", "minio-init", "mailpit"}
ONE_SHOT = {"airflow-init", "minio-init"}


@pytest.fixture(scope="module")
def binary() -> Path:
    return compose_binary()


def compose(binary: Path, compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(compose_file.parent)}
    return subprocess.run(
        [str(binary), "--project-directory", str(compose_file.parent), "-f", str(compose_file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def model(binary: Path) -> dict[str, Any]:
    completed = compose(binary, COMPOSE_FILE, "config", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_compose_file_is_valid_for_docker_compose(binary: Path) -> None:
    completed = compose(binary, COMPOSE_FILE, "config", "--quiet")
    assert completed.returncode == 0, completed.stderr


def test_compose_file_matches_the_compose_specification_schema(binary: Path) -> None:
    schema = compose_schema(binary)
    assert schema.get("title") == "Compose Specification"
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=str)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_validators_reject_a_broken_file(binary: Path, tmp_path: Path) -> None:
    """Guards the two checks above: a dangling depends_on and a misspelt key must both be caught."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    document["services"]["airflow-scheduler"]["depends_on"]["no-such-service"] = {
        "condition": "service_healthy"
    }
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document))
    assert compose(binary, broken, "config", "--quiet").returncode != 0

    document = yaml.safe_load(COMPOSE_FILE.read_text())
    document["services"]["postgres"]["helthcheck"] = document["services"]["postgres"].pop("healthcheck")
    errors = list(jsonschema.Draft7Validator(compose_schema(binary)).iter_errors(document))
    assert errors


def test_services_and_start_order(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == ALL_SERVICES
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["minio-init"]["condition"] == "service_completed_successfully", name
        assert depends["mailpit"]["condition"] == "service_healthy", name
    init = services["airflow-init"]["depends_on"]
    assert init["postgres"]["condition"] == "service_healthy"
    assert init["minio-init"]["condition"] == "service_completed_successfully"
    assert "airflow-init" not in init
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_airflow_runs_the_locked_airflow_with_the_repo_mounted(model: dict[str, Any]) -> None:
    airflow_version = importlib.metadata.version("apache-airflow")
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        service = model["services"][name]
        assert service["image"].startswith(f"apache/airflow:{airflow_version}-python3.11"), name
        mounts = {(v["source"], v["target"]) for v in service["volumes"] if v["type"] == "bind"}
        assert (str(REPO_ROOT), "/opt/bouncehouse") in mounts, name
        env = service["environment"]
        assert env["_PIP_ADDITIONAL_REQUIREMENTS"] == "-r /opt/bouncehouse/requirements.txt"
        assert env["PYTHONPATH"] == "/opt/bouncehouse/include"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/bouncehouse/dags"
        assert env["BOUNCEHOUSE_HOME"] == "/opt/bouncehouse"
    commands = {n: model["services"][n]["command"] for n in AIRFLOW_SERVICES}
    assert commands == {
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer"],
    }


def test_airflow_services_share_one_metadata_database_and_secret(model: dict[str, Any]) -> None:
    envs = [model["services"][n]["environment"] for n in AIRFLOW_SERVICES | {"airflow-init"}]
    postgres = model["services"]["postgres"]["environment"]
    expected = (
        f"postgresql+psycopg2://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert {e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] for e in envs} == {expected}
    assert len({e["AIRFLOW__API_AUTH__JWT_SECRET"] for e in envs}) == 1
    assert {e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] for e in envs} == {
        "http://airflow-apiserver:8080/execution/"
    }
    assert any(p["target"] == 8080 for p in model["services"]["airflow-apiserver"]["ports"])


def test_connections_point_at_minio_and_mailpit(model: dict[str, Any]) -> None:
    env = model["services"]["airflow-scheduler"]["environment"]
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    minio = model["services"]["minio"]["environment"]
    assert aws["conn_type"] == "aws"
    assert aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert (aws["login"], aws["password"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert (smtp["conn_type"], smtp["host"], smtp["port"]) == ("smtp", "mailpit", 1025)
    assert any(p["target"] == 1025 for p in model["services"]["mailpit"]["ports"])
    assert env["BOUNCEHOUSE_DIGEST_TRANSPORT"] == "smtp"
    assert env["BOUNCEHOUSE_ALERT_EMAIL"]


def test_the_source_bucket_is_the_one_minio_init_creates(model: dict[str, Any]) -> None:
    env = model["services"]["airflow-scheduler"]["environment"]
    bucket = model["services"]["minio-init"]["environment"]["LANDING_BUCKET"]
    assert env["BOUNCEHOUSE_SOURCE"].startswith(f"s3://{bucket}/")
    script = " ".join(model["services"]["minio-init"]["entrypoint"])
    assert "mc mb --ignore-existing" in script and "$LANDING_BUCKET" in script


def test_init_migrates_and_creates_the_pool_and_login(model: dict[str, Any]) -> None:
    script = " ".join(model["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "airflow pools set bouncehouse_duckdb 1" in script
    env = model["services"]["airflow-init"]["environment"]
    assert "passwords.json" in script and env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] in script


def test_state_lives_in_named_volumes(model: dict[str, Any]) -> None:
    declared = set(model["volumes"])
    used = {
        v["source"] for s in model["services"].values() for v in s.get("volumes", []) if v["type"] == "volume"
    }
    assert {"postgres-data", "minio-data", "airflow-logs"} <= used <= declared


def test_published_ports_listen_on_loopback_unless_told_otherwise(model: dict[str, Any]) -> None:
    """Default secrets are only safe on a laptop: nothing is reachable from the network by default."""
    published = [
        (name, port) for name, service in model["services"].items() for port in service.get("ports", [])
    ]
    assert {name for name, _ in published} == {"minio", "mailpit", "airflow-apiserver"}
    assert {port.get("host_ip") for _, port in published} == {"127.0.0.1"}


def test_the_bind_address_and_the_secrets_come_from_the_environment(binary: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "override.env"
    env_file.write_text(
        "BOUNCEHOUSE_BIND_ADDRESS=0.0.0.0\nPOSTGRES_PASSWORD=pg-s3cret\nMINIO_ROOT_PASSWORD=minio-s3cret\n"
        "AIRFLOW_JWT_SECRET=jwt-s3cret\n"
    )
    completed = compose(binary, COMPOSE_FILE, "--env-file", str(env_file), "config", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    services = json.loads(completed.stdout)["services"]
    assert {p.get("host_ip") for s in services.values() for p in s.get("ports", [])} == {"0.0.0.0"}
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-s3cret"
    scheduler = services["airflow-scheduler"]["environment"]
    assert ":pg-s3cret@postgres:" in scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert json.loads(scheduler["AIRFLOW_CONN_AWS_DEFAULT"])["password"] == "minio-s3cret"
    assert scheduler["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt-s3cret"


def test_the_lake_bucket_is_the_one_minio_init_creates(
    model: dict[str, Any], binary: Path, tmp_path: Path
) -> None:
    bucket = model["services"]["minio-init"]["environment"]["LAKE_BUCKET"]
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        assert model["services"][name]["environment"]["BOUNCEHOUSE_LAKE"] == f"s3://{bucket}/raw", name
    script = " ".join(model["services"]["minio-init"]["entrypoint"])
    assert "$LAKE_BUCKET" in script
    # BOUNCEHOUSE_LAKE= (empty) in .env turns the lake off.
    env_file = tmp_path / "no-lake.env"
    env_file.write_text("BOUNCEHOUSE_LAKE=\n")
    completed = compose(binary, COMPOSE_FILE, "--env-file", str(env_file), "config", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    scheduler = json.loads(completed.stdout)["services"]["airflow-scheduler"]["environment"]
    assert scheduler["BOUNCEHOUSE_LAKE"] == ""


# --- the CeleryExecutor variant: docker-compose.celery.yml on top of docker-compose.yml ----------------

CELERY_FILE = REPO_ROOT / "docker-compose.celery.yml"
CELERY_SERVICES = AIRFLOW_SERVICES | {"airflow-worker"}


def compose_celery(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT)}
    return subprocess.run(
        [str(binary), "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE), "-f", str(CELERY_FILE), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def celery_model(binary: Path) -> dict[str, Any]:
    completed = compose_celery(binary, "config", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_the_celery_variant_is_valid_and_matches_the_specification(binary: Path) -> None:
    completed = compose_celery(binary, "config", "--quiet")
    assert completed.returncode == 0, completed.stderr
    schema = compose_schema(binary)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(CELERY_FILE.read_text())), key=str
    )
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_celery_variant_runs_every_airflow_service_on_celery_with_redis(
    celery_model: dict[str, Any],
) -> None:
    services = celery_model["services"]
    assert set(services) == ALL_SERVICES | {"redis", "airflow-worker"}
    postgres = services["postgres"]["environment"]
    backend = (
        f"db+postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    for name in CELERY_SERVICES | {"airflow-init"}:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = env["AIRFLOW__CELERY__BROKER_URL"]
        assert broker.startswith("redis://") and broker.split("//")[1].split(":")[0] in services, name
        assert broker == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == backend, name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert "6379" in [str(port) for port in services["redis"].get("expose", [])]
    assert not services["redis"].get("ports")  # the broker is not published to the host


def test_the_celery_worker_runs_the_same_code_and_settings_as_the_scheduler(
    celery_model: dict[str, Any],
) -> None:
    services = celery_model["services"]
    worker, scheduler = services["airflow-worker"], services["airflow-scheduler"]
    assert worker["command"] == ["celery", "worker"]
    assert worker["image"] == scheduler["image"]
    assert worker["volumes"] == scheduler["volumes"]
    assert {k: v for k, v in worker["environment"].items() if k != "DUMB_INIT_SETSID"} == scheduler[
        "environment"
    ]
    assert worker["environment"]["BOUNCEHOUSE_LAKE"].startswith("s3://")
    depends = worker["depends_on"]
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_the_celery_variant_has_healthchecks_and_keeps_the_duckdb_pool(celery_model: dict[str, Any]) -> None:
    from bouncehouse import orchestration

    services = celery_model["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert (
        "redis-cli" in services["redis"]["healthcheck"]["test"]
        and "ping" in services["redis"]["healthcheck"]["test"]
    )
    worker_check = " ".join(services["airflow-worker"]["healthcheck"]["test"])
    assert "celery_executor.app inspect ping" in worker_check and "celery@$${HOSTNAME}" in worker_check
    # The scheduler hands a pool's slots out whatever the executor: one slot keeps DuckDB's writers apart.
    script = " ".join(services["airflow-init"]["command"])
    assert f"airflow pools set {orchestration.POOL} {orchestration.POOL_SLOTS} " in script
    assert orchestration.POOL_SLOTS == 1
    assert {p.get("host_ip") for s in services.values() for p in s.get("ports", [])} == {"127.0.0.1"}
