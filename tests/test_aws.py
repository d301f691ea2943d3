"""The Lambda entry points, fed real API Gateway event shapes, writing to a moto S3
server on a loopback port: a batch is in the bucket when the handler returns, and a
store that is down gives a 503 rather than a 202."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from fastapi import Request, Response
from moto.server import ThreadedMotoServer

from tests.helpers import free_port
from traceglider import aws

BUCKET = "tg-lambda-test"
PREFIX = "analytics"
SITE = "example.com"
ROOT = Path(__file__).resolve().parents[1]


def start_s3(bucket: str) -> tuple[ThreadedMotoServer, str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return server, endpoint


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server, endpoint = start_s3(BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture()
def lambda_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_endpoint: str) -> Iterator[str]:
    """The environment the SAM template gives the function, pointed at the test S3."""
    prefix = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    env = {
        "TG_STORAGE": f"s3://{BUCKET}/{prefix}",
        "TG_S3_ENDPOINT_URL": s3_endpoint,
        "TG_SITES": SITE,
        "TG_SECRET": "lambda-test-secret-lambda-test-secret-0123",
        "TG_TRUSTED_PROXIES": "0",
        "TG_SPOOL_DIR": str(tmp_path / "spool"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    aws.reset()
    yield prefix
    aws.reset()


def batch(*ids: str) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        "site": SITE,
        "ctx": {"sw": 1920, "sh": 1080, "vw": 1280, "vh": 720, "lang": "en-GB", "tz": "Europe/London"},
        "events": [
            {"id": event_id, "type": "pageview", "ts": now_ms,
             "url": f"https://{SITE}/pricing?utm_source=newsletter", "ref": "https://duckduckgo.com/",
             "title": "Pricing"}
            for event_id in ids
        ],
    }


USER_AGENT = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Version/17.1 Safari/605.1.15")


def http_api_event(method: str, path: str, body: bytes | None = None, *,
                   content_type: str = "text/plain;charset=UTF-8", cookies: list[str] | None = None,
                   query: str = "") -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as API Gateway sends it: the
    request's cookies in their own array rather than in the headers, and the body
    base64-encoded (as API Gateway sends any body it does not take for text; always
    here, so that every test goes through the decoding)."""
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "*/*",
            "accept-encoding": "gzip, deflate, br",
            "accept-language": "en-GB,en;q=0.9",
            "content-length": str(len(body or b"")),
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "origin": f"https://{SITE}",
            "referer": f"https://{SITE}/pricing",
            "user-agent": USER_AGENT,
            "x-amzn-trace-id": "Root=1-6747a9e0-0a1b2c3d4e5f60718293a4b5",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": USER_AGENT},
            "requestId": "C7iXHgUNoAMEVxw=",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        event["headers"]["content-type"] = content_type
        event["body"] = base64.b64encode(body).decode()
    if cookies:
        event["cookies"] = cookies
    return event


def rest_api_event(method: str, path: str, body: str | None = None, *,
                   content_type: str = "application/json",
                   cookie: str | None = None) -> dict[str, Any]:
    """An API Gateway REST API (payload format 1.0) proxy event, stage `prod`."""
    headers = {
        "Accept": "*/*",
        "Content-Type": content_type,
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "Origin": f"https://www.{SITE}",
        "User-Agent": USER_AGENT,
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if cookie:
        headers["Cookie"] = cookie
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": USER_AGENT},
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": int(time.time() * 1000),
            "resourceId": "123456",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def events_in_s3(endpoint: str, prefix: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/events/")
    return [item["Key"] for item in listing.get("Contents", [])]


def rows(endpoint: str, key: str) -> list[dict[str, Any]]:
    data = s3_client(endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return list(pq.read_table(io.BytesIO(data)).to_pylist())


def event_ids(endpoint: str, key: str) -> list[str]:
    return [row["event_id"] for row in rows(endpoint, key)]


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def test_an_http_api_batch_is_in_s3_when_the_handler_returns(lambda_env: str, s3_endpoint: str) -> None:
    body = json.dumps(batch("v2-a", "v2-b")).encode()

    response = aws.handler(http_api_event("POST", "/collect", body, cookies=["theme=dark"]), None)

    assert response["statusCode"] == 202, response
    assert json.loads(response["body"]) == {"accepted": 2}
    assert response["headers"]["access-control-allow-origin"] == f"https://{SITE}"
    (key,) = events_in_s3(s3_endpoint, lambda_env)
    assert key.startswith(f"{lambda_env}/events/site={SITE}/date={today()}/") and key.endswith(".parquet")
    stored = sorted(rows(s3_endpoint, key), key=lambda row: row["event_id"])
    assert [row["event_id"] for row in stored] == ["v2-a", "v2-b"]
    # The headers came through the adapter into the pipeline.
    assert stored[0]["browser"] == "Safari" and stored[0]["path"] == "/pricing"
    assert stored[0]["utm_source"] == "newsletter" and stored[0]["language"]


def test_a_rest_api_batch_is_in_s3_when_the_handler_returns(lambda_env: str, s3_endpoint: str) -> None:
    response = aws.handler(rest_api_event("POST", "/collect", json.dumps(batch("v1-a"))), None)

    assert response["statusCode"] == 202, response
    assert json.loads(response["body"]) == {"accepted": 1}
    (key,) = events_in_s3(s3_endpoint, lambda_env)
    assert event_ids(s3_endpoint, key) == ["v1-a"]


def test_a_retried_batch_lands_once(lambda_env: str, s3_endpoint: str) -> None:
    body = json.dumps(batch("retry-1")).encode()
    for _ in range(2):
        assert aws.handler(http_api_event("POST", "/collect", body), None)["statusCode"] == 202
    assert len(events_in_s3(s3_endpoint, lambda_env)) == 1


def test_what_a_client_gets_wrong_is_a_4xx_not_a_5xx(lambda_env: str) -> None:
    malformed = aws.handler(http_api_event("POST", "/collect", b"{not json"), None)
    other_site = aws.handler(http_api_event(
        "POST", "/collect", json.dumps({**batch("x"), "site": "elsewhere.org"}).encode()), None)
    assert malformed["statusCode"] == 400 and "error" in json.loads(malformed["body"])
    assert other_site["statusCode"] == 403


def test_cookies_travel_both_ways_in_either_payload_version(lambda_env: str) -> None:
    # Build the app, then give it a probe route: the real adapter and app, one more route.
    assert aws.handler(http_api_event("GET", "/healthz"), None)["statusCode"] == 200
    app = aws._adapter.app

    async def probe(request: Request) -> Response:
        response = Response(json.dumps(dict(request.cookies)), media_type="application/json")
        response.set_cookie("tg_probe", "1", max_age=60, secure=True, httponly=True, samesite="lax")
        response.set_cookie("tg_other", "2", max_age=60)
        return response

    app.add_api_route("/cookie-probe", probe, methods=["GET"])

    v2 = aws.handler(http_api_event("GET", "/cookie-probe", cookies=["tg_vid=abc123", "theme=dark"]), None)
    assert json.loads(v2["body"]) == {"tg_vid": "abc123", "theme": "dark"}
    assert sorted(c.split("=")[0] for c in v2["cookies"]) == ["tg_other", "tg_probe"]
    assert "set-cookie" not in v2["headers"]

    v1 = aws.handler(rest_api_event("GET", "/cookie-probe", cookie="tg_vid=abc123; theme=dark"), None)
    assert json.loads(v1["body"]) == {"tg_vid": "abc123", "theme": "dark"}
    assert len(v1["multiValueHeaders"]["set-cookie"]) == 2


def test_the_tracker_and_health_are_served_through_the_handler(lambda_env: str) -> None:
    health = aws.handler(http_api_event("GET", "/healthz"), None)
    assert health["statusCode"] == 200
    assert json.loads(health["body"])["mode"] == "direct"

    script = aws.handler(http_api_event("GET", "/t.js"), None)
    assert script["statusCode"] == 200
    assert script["headers"]["content-type"].startswith(("application/javascript", "text/javascript"))


def test_s3_going_down_turns_collect_into_a_503(lambda_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server, endpoint = start_s3("tg-lambda-down")
    monkeypatch.setenv("TG_STORAGE", "s3://tg-lambda-down/down")
    monkeypatch.setenv("TG_S3_ENDPOINT_URL", endpoint)
    aws.reset()
    try:
        body = json.dumps(batch("before")).encode()
        assert aws.handler(http_api_event("POST", "/collect", body), None)["statusCode"] == 202
    finally:
        server.stop()

    response = aws.handler(http_api_event("POST", "/collect", json.dumps(batch("during")).encode()), None)
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"]
    assert aws.handler(http_api_event("GET", "/healthz"), None)["statusCode"] == 503


def test_a_cold_start_with_s3_unreachable_answers_503_and_recovers(
    lambda_env: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TG_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.delenv("TG_SECRET")  # so the first call must read the secret from the bucket
    body = json.dumps(batch("cold-1")).encode()

    for event in (http_api_event("POST", "/collect", body),
                  rest_api_event("POST", "/collect", body.decode())):
        response = aws.handler(event, None)
        assert response["statusCode"] == 503, response
        assert response["headers"]["retry-after"] == "5"

    monkeypatch.setenv("TG_S3_ENDPOINT_URL", s3_endpoint)
    assert aws.handler(http_api_event("POST", "/collect", body), None)["statusCode"] == 202
    assert len(events_in_s3(s3_endpoint, lambda_env)) == 1


def test_the_scheduled_compaction_merges_today_and_applies_retention(
    lambda_env: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(3):
        body = json.dumps(batch(f"c-{n}", f"c-{n}-b")).encode()
        assert aws.handler(http_api_event("POST", "/collect", body), None)["statusCode"] == 202
    # A retried batch that arrived under another name: compaction drops the duplicate.
    again = json.dumps(batch("c-0")).encode()
    assert aws.handler(http_api_event("POST", "/collect", again), None)["statusCode"] == 202
    old = f"{lambda_env}/events/site={SITE}/date=2020-01-01/b-old.parquet"
    s3_client(s3_endpoint).put_object(Bucket=BUCKET, Key=old, Body=b"old")
    old_salt = f"{lambda_env}/_salts/2020-01-01"
    s3_client(s3_endpoint).put_object(Bucket=BUCKET, Key=old_salt, Body=b"s" * 32)
    assert len(events_in_s3(s3_endpoint, lambda_env)) == 5
    monkeypatch.setenv("TG_RETENTION_DAYS", "400")

    # The event EventBridge sends on a schedule; its fields are not instructions.
    scheduled = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                 "source": "aws.scheduler", "time": dt.datetime.now(dt.UTC).isoformat(),
                 "detail": {}}
    summary = aws.compact_handler(scheduled, None)

    (key,) = events_in_s3(s3_endpoint, lambda_env)
    assert f"date={today()}/" in key
    assert sorted(event_ids(s3_endpoint, key)) == ["c-0", "c-0-b", "c-1", "c-1-b", "c-2", "c-2-b"]
    assert summary["retention_days"] == 400 and summary["removed_files"] == 1
    assert summary["purged_salts"] == 1
    listing = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"{lambda_env}/_salts/")
    assert old_salt not in [item["Key"] for item in listing.get("Contents", [])]
    (result,) = summary["compacted"][today()]
    assert result["files_before"] == 4 and result["files_after"] == 1
    json.dumps(summary)  # a Lambda result must serialise

    assert aws.compact_handler({}, None)["compacted"][today()] == []  # nothing left to merge


def test_the_compaction_keeps_760_days_when_no_retention_is_set(lambda_env: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_RETENTION_DAYS", raising=False)
    assert aws.compact_handler({"dates": ["2026-01-02"]}, None)["retention_days"] == 760


def test_the_compaction_takes_dates_to_redo(lambda_env: str) -> None:
    summary = aws.compact_handler({"dates": ["2026-01-02"], "retention_days": 9999}, None)
    assert summary["compacted"] == {"2026-01-02": []} and summary["retention_days"] == 9999
    with pytest.raises(ValueError):
        aws.compact_handler({"dates": ["yesterday"]}, None)


def test_importing_the_handler_stays_light() -> None:
    code = ("import sys, traceglider.aws; "
            "print(sorted(m for m in ('duckdb', 'fastapi', 'pyarrow', 'boto3', 'mangum') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_first_collect_through_the_handler_never_imports_duckdb(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "lambda_coldstart.py"), "--check"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == 202
    assert "duckdb" not in result["imported_after_first_request"]
