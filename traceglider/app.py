"""`create_app(settings, storage, clock)`: the one FastAPI application behind `serve`,
the container and the Lambda handler."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from traceglider import __version__
from traceglider.api_docs import install_docs
from traceglider.config import Settings
from traceglider.dashboard.answers import Answers, build_answers, prepare_dashboards
from traceglider.dashboard.routes import dashboard_router
from traceglider.errors import StorageError, TGError
from traceglider.ingest.collect import Collect, is_collect
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.later import make_completion
from traceglider.ingest.pipeline import Pipeline
from traceglider.ingest.routes import Ingest, ingest_router
from traceglider.ingest.urls import split_url
from traceglider.maintenance import Maintainer
from traceglider.rights import rights_router
from traceglider.secrets import ensure_secret
from traceglider.sinks import DirectSink, SpoolSink
from traceglider.static_files import TrackerScript
from traceglider.stats.api import AppEngine, stats_router
from traceglider.stats.cors import StatsCORS
from traceglider.stats.sites_api import sites_router
from traceglider.stats.v2 import v2_router
from traceglider.storage import Storage, open_storage
from traceglider.storage.salts import SaltStore, open_salt_storage
from traceglider.types import Sink
from traceglider.web import error_response

log = logging.getLogger("traceglider")

# A glider's trace: browsers ask every page's origin for /favicon.ico.
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#4f46e5"/><path d="M2 11 Q6 3 14 5" stroke="#fff" stroke-width="2" fill="none"/></svg>')


class TraceGliderApp(FastAPI):
    """FastAPI, with `POST /collect` answered before routing and the middleware stack
    by its own ASGI endpoint (`ingest.collect`): the hot path pays for none of them."""

    collector: Collect | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.collector is not None and is_collect(scope):
            await self.collector(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(PRIVATE_ANSWERS):
            send = _no_store(send)
        await super().__call__(scope, receive, send)


# Answers behind the token or a dashboard session: no browser or proxy cache may keep
# them (a shared computer's back button, a caching proxy in between).
PRIVATE_ANSWERS = ("/api/v1/stats/", "/api/v1/export", "/api/v1/sites", "/api/v1/forget", "/api/v2/",
                   "/dashboard/api/")


def _no_store(send: Send) -> Send:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
        await send(message)

    return sending


def build_pipeline(settings: Settings, salts: SaltStore, clock: Callable[[], float] = time.time) -> Pipeline:
    return Pipeline([("split_url", split_url), *build_steps(settings, salts, clock=clock)])


def build_sink(settings: Settings, storage: Storage, pipeline: Pipeline | None = None) -> Sink:
    if settings.mode == "lambda":
        if settings.delivery == "firehose":
            from traceglider.firehose import firehose_sink

            return firehose_sink(settings, storage)
        return DirectSink(storage)
    # The flusher finishes the user-agent work /collect left for later (ingest.later)
    # and counts what it drops with the pipeline's drops.
    return SpoolSink(storage, settings.spool_path, settings.spool_max_bytes,
                     settings.flush_seconds, settings.flush_events,
                     complete=make_completion(bool(settings.drop_bots)) if pipeline else None,
                     count_drops=pipeline.count if pipeline else None)


WARM_UP_SECONDS = 60


async def _keep_warm(pipeline: Pipeline) -> None:
    """Refresh what steps load lazily (the day's cookieless salt above all) in a
    thread every minute, so no request waits for storage."""
    while True:
        await asyncio.sleep(WARM_UP_SECONDS)
        try:
            await asyncio.to_thread(pipeline.warm_up)
        except Exception:
            log.exception("warm-up failed")


def _prepare_dashboards(settings: Settings, storage: Storage, answers: Answers, engine: AppEngine) -> None:
    try:
        sites = prepare_dashboards(settings, storage, answers, engine)
        if sites:
            log.info("preparing the dashboard of %s", ", ".join(sites))
    except Exception:  # noqa: BLE001 - the dashboard then computes on the first visit
        log.warning("could not prepare the dashboard", exc_info=True)


def create_app(
    settings: Settings,
    storage: Storage | None = None,
    clock: Callable[[], float] = time.time,
    sink: Sink | None = None,
    salt_storage: Storage | None = None,
) -> FastAPI:
    storage = storage or open_storage(settings)
    settings = ensure_secret(settings, storage)
    # The salts live apart from the data (traceglider.storage.salts); the identity step
    # only sees the store.
    salt_storage = salt_storage or open_salt_storage(settings)
    salts = SaltStore(salt_storage, legacy=storage)
    pipeline = build_pipeline(settings, salts, clock)
    sink = sink or build_sink(settings, storage, pipeline)
    ingest = Ingest(settings, pipeline, sink, clock)
    # Long-lived parts, owned here and closed by the lifespan below; none is kept in a
    # module (two apps on one storage share nothing), all on the one clock.
    engine = AppEngine(settings, storage, clock)
    answers = build_answers(settings, engine, clock)  # None on Lambda
    maintainer = (Maintainer(storage, settings.retention_days, settings.compact_seconds,
                             salts=salt_storage, clock=clock)
                  if settings.mode == "server" and settings.compact_seconds > 0 else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(pipeline.warm_up)
        sink.start()
        refresher = asyncio.create_task(_keep_warm(pipeline))
        preparing = None  # kept referenced while it runs
        if answers is not None and settings.dashboard_prepare:
            preparing = asyncio.create_task(asyncio.to_thread(_prepare_dashboards, settings, storage, answers,
                                                              engine))
        if maintainer is not None:
            maintainer.start()
        try:
            yield
        finally:
            refresher.cancel()
            if maintainer is not None:
                maintainer.stop(timeout=0)  # the round in progress ends after its partition
            if answers is not None:
                answers.close()
            del preparing
            sink.stop()
            if maintainer is not None:
                maintainer.stop()  # and lets go of the lock
            engine.close()  # after the answers and maintenance that read through it

    app = TraceGliderApp(title="TraceGlider", version=__version__, lifespan=lifespan,
                         docs_url=None, redoc_url=None)
    install_docs(app)  # /docs from installed assets, not a CDN
    app.collector = collector = Collect(ingest)
    app.state.settings, app.state.storage, app.state.sink = settings, storage, sink
    app.state.pipeline, app.state.ingest = pipeline, ingest
    app.state.engine, app.state.answers, app.state.maintainer, app.state.salts = engine, answers, maintainer, salts
    _install_error_handlers(app)
    app.include_router(ingest_router(ingest, collector))
    app.include_router(stats_router(settings, engine))
    app.include_router(sites_router(settings, storage))
    app.include_router(v2_router(settings, engine))
    app.add_middleware(StatsCORS, origins=tuple(settings.stats_cors_origins))
    app.include_router(dashboard_router(settings, storage, engine, answers, clock))
    app.include_router(rights_router(settings, storage, sink))
    tracker = TrackerScript()

    @app.get("/t.js", include_in_schema=False)
    @app.get("/insertTracker.js", include_in_schema=False)
    async def tracker_script(request: Request) -> Response:
        return tracker.response(request)

    @app.get("/healthz", summary="Storage and spool status")
    async def healthz(request: Request) -> JSONResponse:
        healthy = sink.healthy()
        body = {
            "status": "ok" if healthy else "unavailable",
            "version": __version__,
            "accepted_events": ingest.accepted,
            "dropped_events": pipeline.drop_counts(),
            "pipeline_steps": pipeline.step_status(),
            "proxy": ingest.forwarded.status(),
            **sink.status(),
        }
        if not _owner(settings, request):
            # Where the data lives (and errors that name paths) only for the owner.
            for private in PRIVATE_HEALTH:
                body.pop(private, None)
        if answers is not None:
            body["dashboard"] = answers.status()
        if maintainer is not None:
            body["maintenance"] = maintainer.status()
        return JSONResponse(body, status_code=200 if healthy else 503,
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/health", summary="Plausible's health check: storage and spool")
    async def api_health() -> JSONResponse:
        # Plausible answers {"postgres": "ok", "clickhouse": "ok", "sites_cache": "ok"}
        # and 500 otherwise; here what the collector depends on, 503 when it fails.
        healthy = sink.healthy()
        storage_ok = bool(sink.status().get("storage_ok", healthy))
        body = {"collector": "ok" if healthy else "unavailable",
                "storage": "ok" if storage_ok else "unavailable"}
        return JSONResponse(body, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/demo/")

    demo = resources.files("traceglider").joinpath("demo")

    @app.get("/demo/app/{route:path}", include_in_schema=False)
    async def demo_spa(route: str) -> Response:
        # The demo's single-page app owns every /demo/app/... URL, as an SPA host would.
        return Response(demo.joinpath("app.html").read_bytes(), media_type="text/html; charset=utf-8")

    @app.get("/demo", include_in_schema=False)
    async def demo_root() -> RedirectResponse:
        # Relative: StaticFiles' own redirect would build the URL from the Host header,
        # which a client chooses (Host: evil.example -> http://evil.example/demo/).
        return RedirectResponse("/demo/")

    app.mount("/demo", StaticFiles(directory=str(demo), html=True), name="demo")
    return app


PRIVATE_HEALTH = ("storage", "spool_dir", "storage_error", "spool_error", "spool")


def _owner(settings: Settings, request: Request) -> bool:
    """The request carries the API token (as the stats API takes it)."""
    from traceglider.stats.api import check_bearer

    try:
        check_bearer(settings, request)
    except TGError:
        return False
    return True


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up mid-body: nothing was kept and nobody reads the answer.
        # Not an error of ours, so no traceback in the log.
        log.debug("client disconnected before its body arrived: %s", request.url.path)
        return Response(status_code=400)

    @app.exception_handler(TGError)
    async def tg_error(request: Request, exc: TGError) -> JSONResponse:
        # Ingest routes leave their CORS headers on the request, so a browser can read
        # why its batch was refused.
        return error_response(exc, getattr(request.state, "cors", {}))

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        # storage down under any route: a 503 that says when to retry, not a 500
        return error_response(exc, getattr(request.state, "cors", {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p not in ('query', 'body'))}: {err.get('msg')}"
            for err in exc.errors()
        )
        return JSONResponse({"error": problems or "invalid request"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
