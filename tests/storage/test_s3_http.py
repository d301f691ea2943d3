"""The standard-library S3 backend behaves as the boto3 one, over real HTTP to moto's
server, and signs requests exactly as botocore does."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tests.conftest import make_bucket
from traceglider.awsapi import Credentials, sign
from traceglider.errors import StorageError
from traceglider.storage.s3 import S3Storage
from traceglider.storage.s3_http import S3HttpStorage

NOW = dt.datetime(2026, 12, 1, 21, 30, 5, tzinfo=dt.UTC)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token/x+y=")


@pytest.fixture(params=["http", "boto3"])
def s3_backend(request: pytest.FixtureRequest, s3_endpoint: str):  # type: ignore[no-untyped-def]
    cls = S3HttpStorage if request.param == "http" else S3Storage
    return cls(f"s3://{make_bucket(s3_endpoint)}/data", endpoint_url=s3_endpoint)


def botocore_signature(auth_class: type, service: str, method: str, url: str, body: bytes,
                       headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    auth = auth_class(BotoCredentials(CREDS.access_key, CREDS.secret_key, CREDS.token), service, "eu-west-1")
    if auth_class is SigV4Auth:  # S3's signer adds it itself; ours sends it to every service
        request.headers["X-Amz-Content-SHA256"] = auth.payload(request)
    auth.add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(("auth_class", "service", "method", "url", "body", "headers"), [
    (S3SigV4Auth, "s3", "GET", "https://b.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=data%2Fevents%2F",
     b"", {}),
    (S3SigV4Auth, "s3", "PUT",
     "https://b.s3.eu-west-1.amazonaws.com/data/events/site%3Dexample.com/date%3D2026-12-01/b-1.parquet",
     b"PAR1...", {"If-None-Match": "*"}),
    (S3SigV4Auth, "s3", "POST", "https://b.s3.eu-west-1.amazonaws.com/?delete=", b"<Delete/>",
     {"Content-MD5": "abc==", "Content-Type": "application/xml"}),
    (SigV4Auth, "firehose", "POST", "https://firehose.eu-west-1.amazonaws.com/", b'{"Records": []}',
     {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Firehose_20150804.PutRecordBatch"}),
])
def test_requests_are_signed_as_botocore_signs_them(auth_class: type, service: str, method: str, url: str,
                                                     body: bytes, headers: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ours = sign(method, url, headers, body, service=service, region_name="eu-west-1", credentials=CREDS, now=NOW)
    assert ours["authorization"] == botocore_signature(auth_class, service, method, url, body, headers, monkeypatch)


def test_put_get_list_delete(s3_backend) -> None:  # type: ignore[no-untyped-def]
    assert s3_backend.put("a/b/one.bin", b"1")
    assert s3_backend.put("a/b/two words & more.bin", b"22")
    assert s3_backend.get("a/b/one.bin") == b"1"
    assert [(o.key, o.size) for o in s3_backend.list("a/")] == [
        ("a/b/one.bin", 1), ("a/b/two words & more.bin", 2)]
    s3_backend.delete(["a/b/one.bin", "a/b/missing.bin"])
    assert [o.key for o in s3_backend.list("a/")] == ["a/b/two words & more.bin"]


def test_if_absent_never_replaces_an_object(s3_backend) -> None:  # type: ignore[no-untyped-def]
    assert s3_backend.put("x/obj", b"first", if_absent=True) is True
    assert s3_backend.put("x/obj", b"second", if_absent=True) is False
    assert s3_backend.get("x/obj") == b"first"


def test_a_listing_longer_than_one_page_is_complete(s3_endpoint: str) -> None:
    storage = S3HttpStorage(f"s3://{make_bucket(s3_endpoint)}/p", endpoint_url=s3_endpoint)
    for n in range(1003):
        storage.client.call("PUT", storage._url(f"many/{n:05d}"), b"x")
    keys = [o.key for o in storage.list("many/")]
    assert keys == [f"many/{n:05d}" for n in range(1003)]
    storage.delete(keys)
    assert storage.list("many/") == []


def test_a_missing_object_or_bucket_is_a_storage_error(s3_endpoint: str) -> None:
    storage = S3HttpStorage(f"s3://{make_bucket(s3_endpoint)}/p", endpoint_url=s3_endpoint)
    with pytest.raises(StorageError, match="NoSuchKey"):
        storage.get("nothing-here")
    storage.health()
    with pytest.raises(StorageError):
        S3HttpStorage("s3://no-such-bucket-here/p", endpoint_url=s3_endpoint).health()


def test_an_unreachable_endpoint_is_a_storage_error(s3_endpoint: str) -> None:
    from tests.conftest import free_port

    storage = S3HttpStorage("s3://b/p", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageError, match="unreachable"):
        storage.put("k", b"v", if_absent=True)
    with pytest.raises(StorageError):
        storage.health()
