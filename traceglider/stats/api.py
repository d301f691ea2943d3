"""HTTP routes of the stats API (Plausible v1 compatible), export, funnels and navigation;
the dashboard's routes (`dashboard/routes.py`) use the helpers here.

Errors answer as Plausible does: `{"error": "..."}` with 400 or 401. Nothing here
imports DuckDB at module level, so including the router costs nothing at cold start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from traceglider.errors import BadRequest
from traceglider.stats.params import openapi_extra
from traceglider.web import check_bearer, plausible_errors

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.engine import Engine
    from traceglider.storage.base import Storage


class AppEngine:
    """The one stats engine of an app (one DuckDB database and its caches), shared by
    its routers and closed by its shutdown (`app.create_app` owns it). Built on first
    use, so an app that only collects (a Lambda) never builds one nor opens DuckDB; an
    app built again on the same storage gets an engine of its own."""

    def __init__(self, settings: Settings, storage: Storage, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.storage, self.clock = settings, storage, clock
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = build_engine(self.settings, self.storage, self.clock)
            return self._engine

    @property
    def built(self) -> Engine | None:
        return self._engine

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def build_engine(settings: Settings, storage: Storage, clock: Callable[[], float] = time.time) -> Engine:
    """An engine with the memory budget the settings give (AppEngine; the CLI calls
    `engine.from_settings` itself, without importing the routers)."""
    from traceglider.stats.engine import from_settings

    return from_settings(settings, storage, clock)


def params_of(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


def handle(kind: str, engine: Engine, params: dict[str, str]) -> Any:
    """The answer of one stats endpoint; shared by the API and the dashboard."""
    return engine.reading(lambda: _handle(kind, engine, dict(params)))


CONVERSION_RATE_NEEDS_GOAL = ("Metric `conversion_rate` can only be queried in a goal breakdown or "
                              "with a goal filter")


def check_metrics(q: Any) -> None:
    """Plausible's rules for metrics that need a filter or a breakdown."""
    if "conversion_rate" in q.metrics and q.property != "event:goal" and not any(
            f.property == "event:goal" for f in q.filters):
        raise BadRequest(CONVERSION_RATE_NEEDS_GOAL)


def engine_now(engine: Engine) -> datetime:
    """The engine's clock as an aware UTC datetime: what relative periods end with."""
    return datetime.fromtimestamp(engine.clock(), tz=UTC)


def _handle(kind: str, engine: Engine, params: dict[str, str]) -> Any:
    from traceglider.stats import query as Q
    from traceglider.stats import service

    now = engine_now(engine)  # "30d", "day" and realtime end with the engine's today

    def parse(params: dict[str, str], need_property: bool = False) -> Any:
        return Q.parse(params, now, need_property=need_property)

    if kind in ("aggregate", "timeseries", "breakdown"):
        check_metrics(parse(params, need_property=kind == "breakdown"))

    if kind == "aggregate":
        return service.aggregate(engine, parse(params))
    if kind == "timeseries":
        q = parse(params)
        if "conversion_rate" in q.metrics:
            return _timeseries_with_conversion_rate(engine, q)
        return service.timeseries(engine, q)
    if kind == "breakdown":
        return service.breakdown(engine, parse(params, need_property=True))
    if kind == "realtime":
        return service.realtime_visitors(engine, Q.parse_site_id(params))
    if kind == "goals":
        q = parse(params)
        goals = [g for g in (params.get("goals") or "").split(",") if g.strip()] or None
        return {"results": service.goal_rows(engine, q, goals or service.site_goals(engine, q.site))}
    if kind == "funnel":
        q = parse(params)
        steps = [s.strip() for s in (params.get("steps") or "").split(",") if s.strip()]
        if not steps:
            funnels = service.site_config(engine, q.site).get("funnels") or []
            if not funnels:
                raise BadRequest("Give the funnel steps, e.g. steps=Visit /,Visit /pricing,Signup")
            steps = [str(s) for s in funnels[0].get("steps", [])]
        return service.funnel(engine, q, steps)
    if kind == "navigation":
        q = parse(params)
        page = params.pop("path", "") or ""
        if not page.startswith("/"):
            raise BadRequest("The `path` parameter is a page path such as /pricing")
        return service.navigation(engine, q, page)
    if kind == "props":
        q = parse(params)
        return {"results": service.prop_keys(engine, q, params.get("name") or "")}
    if kind == "config":
        q = parse(params)
        cfg = service.site_config(engine, q.site)
        return {"goals": cfg.get("goals", []), "funnels": cfg.get("funnels", [])}
    raise BadRequest(f"unknown stats endpoint {kind}")


def _timeseries_with_conversion_rate(engine: Engine, q: Any) -> dict[str, Any]:
    """Plausible's timeseries `conversion_rate`: per bucket, the goal's visitors of the
    bucket's visitors without the goal filter (v1's one decimal)."""
    from dataclasses import replace

    from traceglider.stats import service

    base = tuple(m for m in q.metrics if m != "conversion_rate")
    converted = service.timeseries(engine, replace(q, metrics=tuple(dict.fromkeys((*base, "visitors")))))
    everyone = service.timeseries(engine, replace(q, metrics=("visitors",), filters=tuple(
        f for f in q.filters if f.property != "event:goal")))
    results = []
    for row, total in zip(converted["results"], everyone["results"], strict=True):
        rate = round(100 * row["visitors"] / total["visitors"], 1) if total["visitors"] else 0.0
        results.append({"date": row["date"], **{m: rate if m == "conversion_rate" else row[m] for m in q.metrics}})
    return {"results": results}


def stats_router(settings: Settings, get_engine: Callable[[], Engine]) -> APIRouter:
    router = APIRouter(tags=["stats"])

    def make(kind: str) -> Callable[[Request], Any]:
        @plausible_errors
        def endpoint(request: Request) -> Any:
            check_bearer(settings, request)
            return handle(kind, get_engine(), params_of(request))
        endpoint.__name__ = f"stats_{kind}"
        return endpoint

    for path, kind, summary in [
        ("/api/v1/stats/aggregate", "aggregate", "Aggregate metrics over a period"),
        ("/api/v1/stats/timeseries", "timeseries", "Metrics per hour, day, week or month"),
        ("/api/v1/stats/breakdown", "breakdown", "Metrics broken down by a property"),
        ("/api/v1/stats/realtime/visitors", "realtime", "Visitors in the last 5 minutes"),
        ("/api/v1/stats/goals", "goals", "Conversions per goal"),
        ("/api/v1/stats/funnel", "funnel", "Ordered funnel steps within a visit"),
        ("/api/v1/stats/navigation", "navigation", "Previous and next pages of a page"),
    ]:
        router.add_api_route(path, make(kind), methods=["GET"], summary=summary,
                             openapi_extra=openapi_extra(kind))

    @router.get("/api/v1/export", summary="Raw events of a site and date range",
                openapi_extra=openapi_extra("export"))
    @plausible_errors
    def export_route(request: Request) -> Response:
        check_bearer(settings, request)
        from traceglider.stats.export import export_response

        return export_response(get_engine(), params_of(request))

    return router

