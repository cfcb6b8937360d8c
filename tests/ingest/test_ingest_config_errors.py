"""What a user sees when the setup is wrong: one line, exit status 2, no traceback, nothing lost."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from bouncehouse.config import load_settings
from bouncehouse.errors import ConfigError
from landing_builder import object_bytes, ses_event
from test_ingest_cli import run_cli

BUCKET = "ses-landing"


def assert_one_line_exit_2(done, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unwritable_warehouse_exits_2_with_one_line(lake, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    done = run_cli("--source", str(lake.landing), "--warehouse", str(blocker / "wh.duckdb"))
    assert_one_line_exit_2(done, "warehouse", str(blocker))


def test_bad_lock_timeout_exits_2_with_one_line(lake):
    done = run_cli(
        "--source", str(lake.landing), "--warehouse", str(lake.warehouse),
        env_extra={"BOUNCEHOUSE_LOCK_TIMEOUT": "soon"},
    )  # fmt: skip
    assert_one_line_exit_2(done, "BOUNCEHOUSE_LOCK_TIMEOUT", "'soon'")


@pytest.mark.parametrize("source", ["http://example.com/landing", "ftp://host/x"])
def test_a_source_of_another_scheme_is_named_as_such(source):
    with pytest.raises(ConfigError, match="is not a folder, file:// URI or s3://bucket/prefix") as raised:
        load_settings({"source": source})
    assert source in str(raised.value)


@pytest.fixture
def s3(moto):
    client = moto.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _failing_get_object(client, error: Exception):
    """The same real client, with GetObject failing the way S3 or the network can while listing works."""

    def fail(**_: object) -> None:
        raise error

    client.meta.events.register("before-call.s3.GetObject", fail)
    return client


@pytest.mark.parametrize(
    "error, needle",
    [
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetObject"),
            "refused to read",
        ),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "cannot read"),
    ],
    ids=["access-denied", "connection-lost"],
)
def test_an_object_that_cannot_be_read_is_a_config_error_and_the_next_run_loads_it(
    lake, s3, moto, error, needle
):
    key = "firehose/2026/11/20/10/a"
    s3.put_object(Bucket=BUCKET, Key=key, Body=object_bytes([ses_event("Send", "m-1")]))
    source = f"s3://{BUCKET}/firehose/"

    with pytest.raises(ConfigError, match=needle) as raised:
        lake.ingest(source, s3_client=_failing_get_object(moto.client("s3"), error))
    assert f"s3://{BUCKET}/{key}" in str(raised.value) and "\n" not in str(raised.value)

    counts = lake.ingest(source, s3_client=moto.client("s3"))  # the cause is fixed: nothing was lost
    assert (counts["objects_loaded"], counts["events_loaded"]) == (1, 1)


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("BOUNCEHOUSE_INGEST_BATCH_BYTES", "lots", "must be a whole number of bytes, got 'lots'"),
        ("BOUNCEHOUSE_INGEST_BATCH_BYTES", "0", "must be greater than 0, got 0"),
        ("BOUNCEHOUSE_INGEST_MEMORY_LIMIT", "a lot", "must look like 2GB or 512MB, got 'a lot'"),
    ],
)
def test_ingest_tuning_is_read_with_the_other_settings(name, value, needle):
    """A bad batch size or memory limit is found where every setting is read, naming the variable."""
    with pytest.raises(ConfigError, match=needle) as raised:
        load_settings(env={name: value})
    assert str(raised.value).startswith(name)


def test_ingest_tuning_settings_come_from_the_environment():
    settings = load_settings(
        env={"BOUNCEHOUSE_INGEST_BATCH_BYTES": "4000", "BOUNCEHOUSE_INGEST_MEMORY_LIMIT": " 512MB "}
    )
    assert (settings.ingest_batch_bytes, settings.ingest_memory_limit) == (4000, "512MB")
    assert (load_settings(env={}).ingest_batch_bytes, load_settings(env={}).ingest_memory_limit) == (
        128 << 20,
        "1GB",
    )


def test_a_relative_file_uri_resolves_against_bouncehouse_home(tmp_path):
    settings = load_settings({"source": "file://data/landing"}, env={"BOUNCEHOUSE_HOME": str(tmp_path)})
    assert settings.source == str(tmp_path / "data" / "landing")
    absolute = load_settings({"source": "file:///srv/landing"}, env={"BOUNCEHOUSE_HOME": str(tmp_path)})
    assert absolute.source == "/srv/landing"
