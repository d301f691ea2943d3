"""Our standard-library SigV4 signer (traceglider/awsapi.py) gives the very signature
botocore's signer gives for the same request: moto's server does not check
signatures, so this is what stands between the Lambda collect path and AWS's 403."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from traceglider import awsapi

NOW = dt.datetime(2026, 12, 1, 12, 34, 56, tzinfo=dt.UTC)
S3 = "https://bucket.s3.eu-west-1.amazonaws.com/"
REQUESTS = [
    ("POST", "https://firehose.eu-west-1.amazonaws.com/",
     {"content-type": "application/x-amz-json-1.1", "x-amz-target": "Firehose_20150804.PutRecordBatch"},
     b'{"DeliveryStreamName": "tg", "Records": []}', "firehose"),
    ("PUT", S3 + awsapi.quote_path("events/site=example.com/date=2026-12-01/a b+c=d.parquet"),
     {"if-none-match": "*", "content-type": "application/octet-stream"}, b"PAR1...", "s3"),
    ("GET", S3 + "?list-type=2&prefix=events%2Fsite%3D&continuation-token=a%2Bb%3D", {}, b"", "s3"),
    ("DELETE", "http://127.0.0.1:9000/bucket/_salts/2026-12-01.json", {}, b"", "s3"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "service"), REQUESTS)
@pytest.mark.parametrize("token", [None, "session/token+with=chars"])
def test_the_signature_is_the_one_botocore_computes(method: str, url: str, headers: dict[str, str], body: bytes,
                                                     service: str, token: str | None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ours = awsapi.sign(method, url, dict(headers), body, service=service, region_name="eu-west-1",
                       credentials=awsapi.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), now=NOW)
    # botocore sets the date and the token itself; every other header is signed as given
    given = {k: v for k, v in ours.items() if k not in ("authorization", "x-amz-date", "x-amz-security-token")}
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, data=body, headers=given)
    signer = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer(BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), service, "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
