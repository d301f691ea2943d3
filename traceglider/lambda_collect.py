"""`POST /collect` on Lambda without FastAPI, boto3 or pyarrow: the API Gateway event
(payload 1.0 or 2.0, and Lambda function URLs, which send 2.0) in, the same checks,
parsing, pipeline and answer as the app's route, the batch handed to Firehose.

Used by `traceglider.aws.handler` when TG_DELIVERY=firehose. Every other route, and
/collect in direct mode (which writes Parquet), goes through the FastAPI app. The
route's steps are the app's own functions (`ingest.edge`, `ingest.request`, the
enrichment steps); only the translation of the event and of the answer is here.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie, _unquote  # type: ignore[attr-defined]  # as Starlette uses it
from typing import Any, cast

from traceglider.config import Settings
from traceglider.errors import Forbidden, PayloadTooLarge, TGError, Unavailable
from traceglider.ingest import edge
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.pipeline import Pipeline, RequestInfo
from traceglider.ingest.request import MAX_BODY_BYTES, decode_json, parse_batch
from traceglider.ingest.urls import split_url
from traceglider.proxies import client_ip, is_secure
from traceglider.ratelimit import RateLimiter
from traceglider.secrets import ensure_secret
from traceglider.storage.base import Storage
from traceglider.storage.salts import SaltStore, open_salt_storage

log = logging.getLogger("traceglider.aws")


@dataclass
class _Client:
    host: str | None


@dataclass
class LambdaRequest:
    """What the edge checks read from a request (the attributes of Starlette's that
    `traceglider.ingest.edge` uses), taken from an API Gateway event."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    cookies: dict[str, str]
    body: bytes
    client: _Client
    scope: dict[str, str]
    version: str  # "1.0" or "2.0": the answer's shape follows the event's
    state: Any = field(default=None)


def parse_event(event: dict[str, Any]) -> LambdaRequest:
    v2 = event.get("version") == "2.0"
    context = event.get("requestContext") or {}
    if v2:
        method, path = context.get("http", {}).get("method", ""), event.get("rawPath", "")
        ip = context.get("http", {}).get("sourceIp")
    else:
        method, path = event.get("httpMethod", ""), event.get("path", "")
        ip = (context.get("identity") or {}).get("sourceIp")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw_cookies = "; ".join(event.get("cookies") or []) if v2 else headers.pop("cookie", "")
    body: bytes = (event.get("body") or "").encode()
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return LambdaRequest(method.upper(), path, headers, parse_cookies(raw_cookies), body,
                         _Client(ip), {"scheme": headers.get("x-forwarded-proto", "https")},
                         "2.0" if v2 else "1.0")


def parse_cookies(header: str) -> dict[str, str]:
    """Cookies as Starlette's `cookie_parser` reads them (leniently: one malformed pair
    does not hide the others, as `SimpleCookie.load` would)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        key, value = chunk.split("=", 1) if "=" in chunk else ("", chunk)
        key, value = key.strip(), value.strip()
        if key or value:
            cookies[key] = _unquote(value)
    return cookies


def is_collect(event: dict[str, Any]) -> bool:
    """True for `POST /collect` events, which `LambdaCollector` answers."""
    if event.get("version") == "2.0":
        method = (event.get("requestContext") or {}).get("http", {}).get("method")
        return method == "POST" and event.get("rawPath") == "/collect"
    return event.get("httpMethod") == "POST" and event.get("path") == "/collect"


class LambdaCollector:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        from traceglider.firehose import firehose_sink

        self.sink = firehose_sink(settings, storage)
        self.settings = ensure_secret(settings, storage)
        salts = SaltStore(open_salt_storage(
            self.settings, lambda url: open_light_storage(self.settings.replace(storage=url))), legacy=storage)
        self.pipeline = Pipeline([("split_url", split_url), *build_steps(self.settings, salts)])
        self.limiter = RateLimiter(settings.rate_limit)
        self.accepted = 0

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        request = parse_event(event)
        cors: dict[str, str] = {}
        try:
            origin = edge.check_origin(cast(Any, request), self.settings.sites)
            cors = edge.cors_headers(origin)
            edge.check_content_type(cast(Any, request))
            ip = client_ip(cast(Any, request), self.settings.trusted_proxies)
            self.limiter.check(ip, request.headers.get("user-agent", ""))
            if len(request.body) > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes")
            now = _now_micros()
            site, ctx, rows = parse_batch(decode_json(request.body), now)
            if not edge.site_allowed(site, self.settings.sites):
                raise _forbidden(site)
            edge.check_origin_sends_for(request.headers.get("origin"), request.headers.get("host"),
                                        [site], self.settings.sites)
            info = RequestInfo(site=site, ip=ip, user_agent=request.headers.get("user-agent", "")[:1000],
                               headers=request.headers, cookies=request.cookies, received_at=now,
                               secure=is_secure(cast(Any, request), self.settings.trusted_proxies), ctx=ctx)
            kept = self.pipeline.run(rows, info)
            if kept:
                self.sink.deliver(kept)
                self.accepted += len(kept)
        except TGError as exc:
            return answer(request, exc.status, {"error": exc.message}, {**cors, **exc.headers})
        except Exception:  # noqa: BLE001 - nothing was kept: the client retries, the traceback is logged
            log.exception("/collect failed")
            failure = Unavailable("the collector failed; retry later")
            return answer(request, failure.status, {"error": failure.message}, {**cors, **failure.headers})
        return answer(request, 202, {"accepted": len(kept)}, cors, info.set_cookies)


def _forbidden(site: str) -> TGError:
    return Forbidden(f"site {site!r} is not configured on this collector (TG_SITES)")


def _now_micros() -> int:
    return int(time.time() * 1_000_000)


def set_cookie_header(cookie: dict[str, Any]) -> str:
    """A Set-Cookie value from the keyword arguments the enrichment steps give for
    Starlette's `set_cookie` / `delete_cookie`, formatted as Starlette formats them."""
    cookie = dict(cookie)
    deleting = cookie.pop("delete", False)
    key = cookie["key"]
    jar: SimpleCookie = SimpleCookie()
    jar[key] = "" if deleting else cookie.get("value", "")
    morsel = jar[key]
    if deleting:
        morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        morsel["max-age"] = 0
    elif cookie.get("max_age") is not None:
        morsel["max-age"] = cookie["max_age"]
    morsel["path"] = cookie.get("path") or "/"
    if cookie.get("domain"):
        morsel["domain"] = cookie["domain"]
    if cookie.get("secure"):
        morsel["secure"] = True
    if cookie.get("httponly"):
        morsel["httponly"] = True
    if cookie.get("samesite"):
        morsel["samesite"] = cookie["samesite"]
    return morsel.OutputString()


def answer(request: LambdaRequest, status: int, document: dict[str, Any], headers: dict[str, str],
           cookies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The answer in the shape of the event's payload version."""
    out_headers = {k.lower(): v for k, v in headers.items()}
    out_headers["content-type"] = "application/json"
    result: dict[str, Any] = {"statusCode": status, "headers": out_headers,
                              "body": json.dumps(document), "isBase64Encoded": False}
    set_cookies = [set_cookie_header(c) for c in cookies or []]
    if request.version == "2.0":
        if set_cookies:
            result["cookies"] = set_cookies
    elif len(set_cookies) == 1:  # as Mangum answers REST events: one in headers, more in multiValueHeaders
        out_headers["set-cookie"] = set_cookies[0]
        result["multiValueHeaders"] = {}
    else:
        result["multiValueHeaders"] = {"set-cookie": set_cookies} if set_cookies else {}
    return result


def open_light_storage(settings: Settings) -> Storage:
    """The bucket over the standard-library client (local storage as itself)."""
    if settings.storage.startswith("s3://"):
        from traceglider.storage.s3_http import S3HttpStorage

        return S3HttpStorage(settings.storage, endpoint_url=settings.s3_endpoint_url)
    from traceglider.storage.local import LocalStorage

    return LocalStorage(settings.storage)
