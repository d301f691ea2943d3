"""Signed calls to AWS APIs with the standard library alone (Signature Version 4 over
http.client), for the Lambda `/collect` path.

boto3 costs 140-300 ms to import and another 50-150 ms to build its first client
(service models read from JSON); the collector's first request on a new Lambda paid
both. The collect path makes three kinds of call (Firehose `PutRecordBatch`, S3 object
reads and writes for the salts and the secret), which fit in this module. Everything
else (stats, compaction) keeps boto3.

Credentials come from the environment as Lambda sets them (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); without them botocore's credential
chain is asked once (profiles, container and instance roles), so the module works
wherever boto3 would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

# As the boto3 storage's: an unreachable service must become a 503 within seconds.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class AwsError(Exception):
    """A call that failed: `status` 0 for a network failure, else the HTTP status, with
    the service's error code when it gave one."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def env_credentials(env: dict[str, str] | os._Environ[str] = os.environ) -> Credentials | None:
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    return None


def chain_credentials() -> Credentials:
    """botocore's chain, for the places that give no environment credentials."""
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise AwsError("no AWS credentials found")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def region(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def quote_path(path: str) -> str:
    """RFC 3986 encoding of a path, '/' kept, as S3 and SigV4 expect it."""
    return quote(path, safe="/-_.~")


def sign(method: str, url: str, headers: dict[str, str], body: bytes, *, service: str,
         region_name: str, credentials: Credentials, now: dt.datetime | None = None) -> dict[str, str]:
    """The headers to send: `headers` plus host, date, payload hash, token and the
    SigV4 Authorization. `url`'s path and query must already be encoded."""
    now = now or dt.datetime.now(dt.UTC)
    parts = urlsplit(url)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": stamp, "x-amz-content-sha256": payload})
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    query = "&".join(sorted(
        "=".join(quote(piece, safe="-_.~") for piece in _split_pair(pair))
        for pair in parts.query.split("&") if pair))
    canonical = "\n".join([
        method, parts.path or "/", query,
        "".join(f"{name}:{signed[name]}\n" for name in names), ";".join(names), payload])
    scope = f"{day}/{region_name}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + credentials.secret_key).encode(), day), region_name), service),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                               f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return signed


def _split_pair(pair: str) -> tuple[str, str]:
    name, _, value = pair.partition("=")
    return unquote(name), unquote(value)


class Client:
    """Signed HTTP calls to one service, over kept-alive connections (a warm Lambda
    reuses its TLS connection instead of a handshake per request)."""

    def __init__(self, service: str, endpoint: str, region_name: str | None = None,
                 credentials: Credentials | None = None) -> None:
        self.service = service
        self.endpoint = endpoint.rstrip("/")
        self.region = region_name or region()
        self._credentials = credentials
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = env_credentials() or chain_credentials()
        return self._credentials

    def call(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        """One signed request; a connection that the server closed while idle is
        replaced once. Raises AwsError for network failures (status 0)."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        signed = sign(method, url, headers or {}, body, service=self.service,
                      region_name=self.region, credentials=self.credentials)
        signed["content-length"] = str(len(body))
        for attempt in range(2):
            conn: http.client.HTTPConnection | None = None
            reused = False
            try:
                conn, reused = self._connection(parts.scheme, parts.netloc)
                conn.request(method, target, body=body, headers=signed)
                answer = conn.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                if reused and attempt == 0:
                    continue  # an idle keep-alive connection the server had closed
                raise AwsError(f"{self.service} unreachable at {parts.netloc}: {exc}") from exc
            response = Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
            if answer.will_close:
                conn.close()
            else:
                self._release(parts.scheme, parts.netloc, conn)
            return response
        raise AssertionError("unreachable")

    def _connection(self, scheme: str, netloc: str) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get((scheme, netloc))
            if idle:
                return idle.pop(), True
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(netloc, timeout=CONNECT_TIMEOUT)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(READ_TIMEOUT)
        return conn, False

    def _release(self, scheme: str, netloc: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault((scheme, netloc), []).append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def json_error(response: Response) -> tuple[str, str]:
    """(code, message) of an AWS JSON-protocol error answer."""
    import json

    try:
        document: dict[str, Any] = json.loads(response.body or b"{}")
    except ValueError:
        return "", response.body[:200].decode(errors="replace")
    code = str(document.get("__type") or response.headers.get("x-amzn-errortype", "")).rpartition("#")[2]
    return code.partition(":")[0], str(document.get("message") or document.get("Message") or "")
