"""The lake on S3 (moto server over HTTP): the same files as in a folder, uploaded with boto3 through the
endpoint ingest uses (AWS_ENDPOINT_URL), exactly once across reruns and a crash between two uploads."""

from __future__ import annotations

import pytest
from bouncehouse import lake
from bouncehouse.errors import ConfigError
from conftest import FILE_PATH, Case, assert_lake_matches

BUCKET = "ses-lake"


@pytest.fixture
def s3(moto):
    client = moto.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def keys_and_etags(s3) -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="warehouse/lake/").get("Contents", [])
    return {item["Key"]: item["ETag"] for item in listed}


def test_ingest_writes_the_lake_to_s3_once(case: Case, generated, s3) -> None:
    case.lake = f"s3://{BUCKET}/warehouse/lake/"
    case.add(generated["first"])
    counts = case.ingest()
    rows = assert_lake_matches(case, s3)
    assert rows["ses_events"] == counts["events_loaded"] > 1000
    before = keys_and_etags(s3)
    assert before and all(FILE_PATH.match(key.removeprefix("warehouse/lake/")) for key in before)

    case.ingest()
    assert keys_and_etags(s3) == before

    case.add(generated["second"])
    case.ingest()
    assert_lake_matches(case, s3)
    after = keys_and_etags(s3)
    assert {key: after[key] for key in before} == before


def test_a_crash_between_two_uploads_duplicates_nothing_on_s3(
    case: Case, generated, s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.lake = f"s3://{BUCKET}/warehouse/lake"
    case.add(generated["first"])
    case.ingest()
    case.add(generated["second"])
    real_put = lake.S3Lake.put
    puts: list[str] = []

    def put_then_crash(self, file, key):
        real_put(self, file, key)
        puts.append(key)
        if len(puts) == 3:
            raise RuntimeError("killed after an upload")

    with monkeypatch.context() as patched:
        patched.setattr(lake.S3Lake, "put", put_then_crash)
        with pytest.raises(RuntimeError, match="killed"):
            case.ingest()
    uploaded = set(keys_and_etags(s3))
    assert case.pending() > 0

    case.ingest()
    assert_lake_matches(case, s3)
    assert uploaded <= set(keys_and_etags(s3))


def test_a_missing_bucket_is_one_line_and_the_next_run_catches_up(case: Case, generated, moto) -> None:
    case.lake = "s3://no-such-bucket/lake"
    case.add(generated["first"])
    with pytest.raises(ConfigError, match="S3 bucket 'no-such-bucket' does not exist .*BOUNCEHOUSE_LAKE"):
        case.ingest()
    # The events are loaded; their files wait in the outbox until the bucket exists.
    assert case.rows("select count(*) from raw.ses_events")[0][0] > 1000
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="no-such-bucket")
    assert case.ingest()["objects_loaded"] == 0
    assert_lake_matches(case, s3)
