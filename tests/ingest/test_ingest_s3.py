"""Ingest from S3 through boto3 against moto in server mode (real HTTP on loopback)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from bouncehouse.errors import ConfigError
from bouncehouse.ingest.sources import S3Source
from landing_builder import envelope, object_bytes, ses_event

BUCKET = "ses-landing"
PREFIX = "firehose/"


def put(s3, key: str, records, **shape) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=object_bytes(records, **shape))


@pytest.fixture
def s3(moto):
    client = moto.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_s3_source_loads_every_shape_once_and_finds_late_and_rewritten_objects(lake, s3):
    put(s3, "2026/11/20/10/a", [envelope(ses_event("Send", "m-1"), "sns-1"), b"{broken"], gzipped=True)
    put(
        s3,
        "2026/11/20/10/b.gz",
        [ses_event("Delivery", "m-1"), envelope(ses_event("Send", "m-1"), "sns-1")],
        framing="concatenated",
    )
    s3.put_object(
        Bucket=BUCKET, Key="elsewhere/2026/11/20/10/c", Body=object_bytes([ses_event("Send", "m-9")])
    )
    source = f"s3://{BUCKET}/{PREFIX}"

    first = lake.ingest(source)  # default client: boto3 reaches moto through AWS_ENDPOINT_URL
    assert {k: first[k] for k in ("objects_loaded", "events_loaded", "duplicates", "rejected")} == {
        "objects_loaded": 2, "events_loaded": 2, "duplicates": 1, "rejected": 1,
    }  # fmt: skip
    etags = dict(lake.rows("select key, etag from raw.ingested_objects"))
    assert set(etags) == {PREFIX + "2026/11/20/10/a", PREFIX + "2026/11/20/10/b.gz"}
    assert etags[PREFIX + "2026/11/20/10/a"] == s3.head_object(Bucket=BUCKET, Key=PREFIX + "2026/11/20/10/a")[
        "ETag"
    ].strip('"')

    assert lake.ingest(source)["objects_loaded"] == 0

    put(s3, "2026/11/20/09/late", [envelope(ses_event("Open", "m-1"), "sns-2")])  # an earlier hour
    put(
        s3,
        "2026/11/20/10/a",
        [envelope(ses_event("Send", "m-1"), "sns-1"), envelope(ses_event("Click", "m-1"), "sns-3")],
    )
    third = lake.ingest(source)
    assert (
        third["objects_loaded"],
        third["objects_reread"],
        third["events_loaded"],
        third["duplicates"],
    ) == (2, 1, 2, 1)
    assert lake.scalar("select count(*) from raw.ses_events") == 4
    assert lake.scalar("select count(*) from raw.rejected_records") == 0  # the rewritten object has none now
    assert lake.scalar("select times_loaded from raw.ingested_objects where key like '%/a'") == 2


def test_an_injected_client_is_used(lake, s3, moto, monkeypatch):
    """Airflow passes the client from S3Hook; ingest must not build its own."""
    put(s3, "2026/11/20/10/a", [ses_event("Send", "m-1")])
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # a client of ingest's own would now miss moto
    counts = lake.ingest(f"s3://{BUCKET}/{PREFIX}", s3_client=moto.client("s3"))
    assert counts["events_loaded"] == 1


def test_listing_follows_every_page(s3):
    for n in range(7):
        put(s3, f"2026/11/20/{n:02d}/obj", [ses_event("Send", f"m-{n}")])
    listed = list(S3Source(BUCKET, PREFIX, s3, page_size=2).list_objects())
    assert [o.key for o in listed] == [f"{PREFIX}2026/11/20/{n:02d}/obj" for n in range(7)]


def test_a_missing_bucket_is_a_config_error(lake, moto):
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist"):
        lake.ingest("s3://no-such-bucket/firehose/")


def test_an_object_gone_before_it_is_read_does_not_hold_back_the_batch_before_it(lake, s3, moto):
    """The last object listed vanishing (NoSuchKey on GetObject) must not drop the objects staged before it."""
    put(s3, "2026/11/20/10/a", [ses_event("Send", "m-1")])
    put(s3, "2026/11/20/10/b", [ses_event("Send", "m-2")])
    client = moto.client("s3")

    def gone(params, **_: object) -> None:
        if params["Key"].endswith("/b"):
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")

    client.meta.events.register("before-parameter-build.s3.GetObject", gone)
    counts = lake.ingest(f"s3://{BUCKET}/{PREFIX}", s3_client=client)
    assert (counts["objects_loaded"], counts["objects_vanished"], counts["events_loaded"]) == (1, 1, 1)
    assert lake.rows("select key from raw.ingested_objects") == [(PREFIX + "2026/11/20/10/a",)]
