"""S3 storage (AWS or any S3-compatible endpoint) through boto3.

Writes use conditional puts (`If-None-Match: *`) where the name must not exist yet,
so a retried delivery can never create a second copy. Stores that do not support
conditional writes fall back to a HEAD before the PUT.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from traceglider.errors import StorageError, WriteConflict
from traceglider.storage.base import ObjectInfo

DEFAULT_TIMEOUT = 10.0  # TG_STORAGE_TIMEOUT's default
ATTEMPTS = 2  # one retry, for a throttle or a dropped connection...
RETRY_FROM = 6.0  # ...when the budget leaves room for it
RETRY_BACKOFF = 1.0  # botocore's standard mode waits at most this long before the retry
EXPECT_WAIT = 1.0  # a PutObject waits this long for `100 Continue` before sending its body


def call_config(timeout: float) -> Config:
    """Every S3 call, its retry included, gives up within `timeout` seconds when the
    store does not answer (TG_STORAGE_TIMEOUT): a hung store must turn into a retry from
    the spool, a 503 for a stats or forget request and a shutdown that ends, in seconds.
    Each attempt gets its share of the budget less the fixed waits around it. botocore's
    own defaults (60 s reads) made one call wait minutes. (`total_max_attempts` counts
    the first try; `max_attempts` would count retries only.)"""
    attempts = ATTEMPTS if timeout >= RETRY_FROM else 1
    backoff = RETRY_BACKOFF if attempts > 1 else 0.0
    attempt = max(0.2, (timeout - backoff) / attempts - EXPECT_WAIT)
    return Config(connect_timeout=min(3.0, attempt), read_timeout=attempt,
                  retries={"total_max_attempts": attempts, "mode": "standard"}, max_pool_connections=32)


def health_config(timeout: float) -> Config:
    """Health probes answer fast or count as a failure: /healthz must tell the truth now."""
    return Config(connect_timeout=min(1.0, timeout / 2), read_timeout=min(2.0, timeout / 2),
                  retries={"total_max_attempts": 1, "mode": "standard"})


class S3Storage:
    def __init__(self, url: str, endpoint_url: str | None = None, client: Any = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        bucket_and_prefix = url.removeprefix("s3://")
        bucket, _, prefix = bucket_and_prefix.partition("/")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.timeout = timeout  # also bounds DuckDB's reads of these objects (storage.duck)
        self._client = client
        self._health_client: Any = None
        self._lock = threading.Lock()
        self._conditional_writes = True

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._new_client(call_config(self.timeout))
        return self._client

    def _new_client(self, config: Config) -> Any:
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        try:
            if if_absent and self._conditional_writes:
                try:
                    self.client.put_object(IfNoneMatch="*", **kwargs)
                    return True
                except ClientError as exc:
                    code = _code(exc)
                    if code in ("PreconditionFailed", "412"):
                        return False  # the object exists: an earlier attempt wrote it
                    # 409 ConditionalRequestConflict: a concurrent write is still in
                    # flight and may yet fail; the caller retries later.
                    if code in ("ConditionalRequestConflict", "409"):
                        raise WriteConflict(f"s3://{self.bucket}/{self._key(key)} is being written") from exc
                    if code not in ("NotImplemented", "501"):
                        raise
                    self._conditional_writes = False
            if if_absent and self._exists(key):
                return False
            self.client.put_object(**kwargs)
            return True
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write s3://{self.bucket}/{self._key(key)}: {exc}") from exc

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(response["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{self._key(key)}: {exc}") from exc

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        found = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"][len(self.prefix):], int(item["Size"])))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list s3://{self.bucket}/{self._key(prefix)}: {exc}") from exc
        return sorted(found, key=lambda o: o.key)

    def delete(self, keys: builtins.list[str]) -> None:
        try:
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self._key(k)} for k in chunk], "Quiet": True},
                )
                errors = response.get("Errors") or []
                if errors:
                    raise StorageError(f"cannot delete {errors[0].get('Key')}: {errors[0].get('Message')}")
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot delete from s3://{self.bucket}: {exc}") from exc

    def health(self) -> None:
        try:
            if self._health_client is None:
                self._health_client = self._new_client(health_config(self.timeout))
            # A listing under our prefix, not head_bucket: least-privilege roles may
            # list only their prefix (s3:ListBucket with a prefix condition).
            self._health_client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"s3://{self.bucket} is not reachable: {exc}") from exc

    def duckdb_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def duckdb_secret(self) -> dict[str, str]:
        """The options of DuckDB's S3 secret: this backend's credentials (boto3's
        chain, resolved now), region and endpoint, so DuckDB reads what we list."""
        session = boto3.session.Session()
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds else None
        options = {"REGION": session.region_name or "us-east-1"}
        if frozen:
            options["KEY_ID"] = frozen.access_key
            options["SECRET"] = frozen.secret_key
            if frozen.token:
                options["SESSION_TOKEN"] = frozen.token
        if self.endpoint_url:
            scheme, _, host = self.endpoint_url.partition("://")
            options["ENDPOINT"] = host.rstrip("/")
            options["URL_STYLE"] = "path"
            options["USE_SSL"] = "true" if scheme == "https" else "false"
        return options


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
