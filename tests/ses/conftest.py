"""Fixtures for SES in the loop: the SESv2 suppression stand-in on loopback, boto3 clients on it, and a
warehouse built from generated data (generate -> ingest -> transform once per session, copied per test)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ses_scenario import AS_OF  # noqa: E402
from sesv2_standin import SesV2StandIn, serve  # noqa: E402


@pytest.fixture
def sesv2() -> Iterator[SesV2StandIn]:
    """The stand-in, empty; every request any test makes must be one botocore's sesv2 model allows."""
    state = SesV2StandIn()
    server = serve(state)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
    assert state.violations == [], state.violations


@pytest.fixture
def sesv2_client(sesv2: SesV2StandIn) -> Any:
    """A real boto3 sesv2 client pointed at the stand-in (botocore's retries off, as in production)."""
    import boto3
    from bouncehouse.ses.pacing import client_config

    return boto3.client(
        "sesv2",
        endpoint_url=sesv2.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(),
    )


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transformed warehouse of generated data (600 messages over 3 days before AS_OF)."""
    import os

    from bouncehouse.config import load_settings
    from bouncehouse.demo import generate
    from bouncehouse.ingest import ingest
    from bouncehouse.transform import transform

    root = tmp_path_factory.mktemp("ses_generated")
    generate(root / "landing", messages=600, start=datetime(2026, 11, 17), days=3, seed=11)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEHOUSE_")}
    settings = load_settings(
        {
            "source": str(root / "landing"),
            "warehouse": str(root / "wh" / "bouncehouse.duckdb"),
            "as_of": AS_OF,
        },
        env=env,
    )
    ingest(settings)
    transform(settings)
    return settings.warehouse


@pytest.fixture
def settings(generated_warehouse: Path, tmp_path: Path) -> Any:
    """Settings on a private copy of the generated warehouse; requests paced fast for tests."""
    from bouncehouse.config import load_settings

    copy = tmp_path / "wh" / "bouncehouse.duckdb"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(generated_warehouse, copy)
    return load_settings({"warehouse": str(copy), "as_of": AS_OF, "ses_requests_per_second": 200.0})
