"""The ingest routes. Each is thin: check the edge, parse, run the pipeline, hand the
rows to the sink, answer. Nothing is answered 202 before the sink says durable."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from traceglider.config import Settings
from traceglider.errors import BadRequest, Forbidden
from traceglider.ingest import edge, openapi
from traceglider.ingest.collect import Collect, apply_cookies
from traceglider.ingest.enrich.identity import consent_cookie
from traceglider.ingest.pipeline import Pipeline, RequestInfo
from traceglider.ingest.plausible import parse_plausible
from traceglider.ingest.request import decode_json, parse_event
from traceglider.proxies import ForwardedWatch, client_ip, is_secure
from traceglider.ratelimit import RateLimiter
from traceglider.sites import normalize_site
from traceglider.types import PipelineRow, Sink

log = logging.getLogger("traceglider.ingest")

# The smallest transparent GIF, for <noscript> and e-mail pixels.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


CROWDED_SECONDS = 1.0


class Ingest:
    """What the ingest routes share: settings, the pipeline, the sink and the clock."""

    def __init__(self, settings: Settings, pipeline: Pipeline, sink: Sink,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.sink = sink
        self.clock = clock
        self.sites: tuple[str, ...] = settings.sites  # read per request: a settings attribute is a lookup
        self.limiter = RateLimiter(settings.rate_limit)
        self.forwarded = ForwardedWatch(settings.trusted_proxies)
        self.accepted = 0
        self.in_flight = 0  # /collect requests begun and not yet answered (event loop only)
        self.crowded_until = 0.0  # monotonic time until which requests count as concurrent
        # A sink that can make rows durable on the spot, for a request that is alone.
        self._write_alone: Callable[[list[PipelineRow]], bool] | None = getattr(sink, "write_alone", None)
        # The sink finishes rows before storing them (`RequestInfo.defer`): /collect
        # leaves a user agent never seen to it. The other routes answer with what the
        # pipeline dropped (Plausible's x-plausible-dropped), so they do all of it now.
        self.defers = bool(getattr(sink, "completes_later", False))

    def now_micros(self) -> int:
        return int(self.clock() * 1_000_000)

    def client_ip(self, request: Request) -> str | None:
        """The client's address, checked against the rate limit (held in memory only)."""
        ip = client_ip(request, self.settings.trusted_proxies, self.forwarded)
        self.limiter.check(ip, request.headers.get("user-agent", ""))
        return ip

    def request_info(self, request: Request, site: str, ctx: dict[str, Any], now: int,
                     ip: str | None) -> RequestInfo:
        proxies = self.settings.trusted_proxies
        return RequestInfo(
            site=site,
            ip=ip,
            user_agent=request.headers.get("user-agent", "")[:1000],
            headers=dict(request.headers),  # ASGI header names are already lower-case
            cookies=dict(request.cookies),
            received_at=now,
            secure=is_secure(request, proxies),
            ctx=ctx,
        )

    def check_site(self, site: str) -> None:
        if not edge.site_allowed(site, self.sites):
            raise Forbidden(f"site {site!r} is not configured on this collector (TG_SITES)")

    async def accept(self, rows: list[PipelineRow], info: RequestInfo) -> list[PipelineRow]:
        if self.pipeline.blocking(info):  # a costly id derivation: not on the event loop
            kept = await asyncio.to_thread(self.pipeline.run, rows, info)
        else:
            kept = self.pipeline.run(rows, info)
        if kept:
            if self._alone(kept):
                # Requests that arrived while the loop waited for that fsync begin
                # within three turns of the loop (read, scheduled, run): still in
                # flight, this one makes them count as concurrent, and they go to
                # the writer together instead of one by one on the loop.
                for _ in range(3):
                    await asyncio.sleep(0)
            else:
                await self.sink.accept(kept)
            self.accepted += len(kept)
        return kept

    def begin(self) -> None:
        """A /collect request begins (`end` when answered)."""
        self.in_flight += 1
        if self.in_flight > 1:
            self.crowded_until = time.monotonic() + CROWDED_SECONDS

    def end(self) -> None:
        self.in_flight -= 1

    def _alone(self, rows: list[PipelineRow]) -> bool:
        """Write the rows at once, on the event loop, while requests come one at a
        time: one client then pays its fsync and no hand-off to the spool's writer
        thread and back (`Spool.append_alone`). Once requests overlap, they go to the
        writer, which covers all waiting with one fsync; writing on the loop then
        would hold the others back, so that waits until none overlapped for a while."""
        return (self._write_alone is not None and self.in_flight == 1
                and time.monotonic() >= self.crowded_until and self._write_alone(rows))


def ingest_router(ingest: Ingest, collector: Collect) -> APIRouter:
    router = APIRouter()
    settings = ingest.settings

    @router.post("/collect", status_code=202, summary="Receive a batch of events",
                 responses={400: {}, 403: {}, 413: {}, 415: {}, 429: {}, 503: {}},
                 openapi_extra=openapi.body(openapi.BATCH))
    async def collect(request: Request) -> Response:
        # The app answers POST /collect with `collector` before routing (see
        # `TraceGliderApp`); this route describes it and answers the same way if used.
        return await collector.respond(request.scope, request.receive)

    @router.get("/collect.gif", summary="Record a pageview from a pixel",
                responses={200: {"content": {"image/gif": {}}}})
    async def collect_pixel(request: Request, site: str, url: str, ref: str | None = None,
                            title: str | None = None) -> Response:
        ip = ingest.client_ip(request)
        site = normalize_site(site)
        ingest.check_site(site)
        now = ingest.now_micros()
        raw = {"id": uuid.uuid4().hex, "type": "pageview", "url": url, "ref": ref, "title": title}
        row = parse_event(raw, 0, site, now)
        info = ingest.request_info(request, site, {}, now, ip)
        await ingest.accept([row], info)
        response = Response(PIXEL, media_type="image/gif",
                            headers={"Cache-Control": "no-store, max-age=0"})
        apply_cookies(response, info)
        return response

    @router.options("/collect", include_in_schema=False)
    @router.options("/consent", include_in_schema=False)
    @router.options("/api/event", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        origin = edge.allow_origin(request, settings.sites)
        return Response(status_code=204, headers=edge.cors_headers(origin, preflight=True))

    @router.post("/consent", summary="Grant or deny consent: sets or clears the visitor cookie",
                 responses={400: {}, 403: {}, 415: {}}, openapi_extra=openapi.body(openapi.CONSENT))
    async def consent(request: Request) -> Response:
        edge.allow_origin(request, settings.sites)
        edge.check_content_type(request)
        document = parse_json_object(await edge.read_body(request), "site and consent")
        site = normalize_site(document.get("site"))
        ingest.check_site(site)
        edge.check_page_of_site(request, [site])
        choice = document.get("consent")
        if choice not in ("granted", "denied"):
            raise BadRequest("consent: must be 'granted' or 'denied'")
        secure = is_secure(request, settings.trusted_proxies)
        # GPC / DNT win over a grant: those visitors are only ever counted cookieless.
        privacy_signal = request.headers.get("sec-gpc") == "1" or request.headers.get("dnt") == "1"
        granted = choice == "granted" and not privacy_signal
        response = JSONResponse({"consent": "granted" if granted else "denied"},
                                headers={**request.state.cors, "Cache-Control": "no-store"})
        existing = request.cookies.get(settings.cookie_name)
        for cookie in consent_cookie(settings, granted, secure, existing):
            response.set_cookie(**cookie)
        return response

    @router.post("/api/event", status_code=202, summary="Plausible's Events API",
                 responses={400: {}, 403: {}, 413: {}, 415: {}, 429: {}, 503: {}},
                 openapi_extra=openapi.body(openapi.PLAUSIBLE_EVENT))
    async def plausible_event(request: Request) -> Response:
        edge.allow_origin(request, settings.sites)
        edge.check_content_type(request)
        ip = ingest.client_ip(request)
        now = ingest.now_micros()
        site, rows = parse_plausible(decode_json(await edge.read_body(request)), now)
        for row in rows:
            ingest.check_site(row["site"])
        edge.check_origin_sends_for(request.headers.get("origin"), request.headers.get("host"),
                                    [row["site"] for row in rows], settings.sites)
        info = ingest.request_info(request, site, {}, now, ip)
        kept = await ingest.accept(rows, info)
        response = plausible_answer(request, ip, len(rows) - len(kept))
        apply_cookies(response, info)
        return response

    return router


def plausible_answer(request: Request, ip: str | None, dropped: int) -> Response:
    """Plausible's answer: 202 "ok", with `x-plausible-dropped: N` when the pipeline
    dropped events (bots, exclusions), and for `X-Debug-Request: true` a 200 naming
    the address the visitor is counted by (the caller's own; it is stored nowhere)."""
    headers = dict(request.state.cors)
    if dropped:
        headers["x-plausible-dropped"] = str(dropped)
        if "Access-Control-Allow-Origin" in headers:  # a page's script may read it
            exposed = headers.get("Access-Control-Expose-Headers")
            headers["Access-Control-Expose-Headers"] = ", ".join(filter(None, (exposed, "x-plausible-dropped")))
    if request.headers.get("x-debug-request", "").lower() == "true":
        return Response(ip or "", status_code=200, media_type="text/plain", headers=headers)
    return Response("ok", status_code=202, media_type="text/plain", headers=headers)


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    document = decode_json(body)
    if not isinstance(document, dict):
        raise BadRequest(f"body: must be a JSON object ({what})")
    return document
