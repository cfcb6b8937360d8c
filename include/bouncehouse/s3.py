"""The S3 client the landing source and the lake share: given by the caller, or boto3's default on first use."""

from __future__ import annotations

from typing import Any


class LazyS3Client:
    """Holds ``_client`` (the caller's, e.g. the Airflow connection's) and makes boto3's default on first use.

    boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, so the default reaches moto or MinIO too."""

    _client: Any | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client
