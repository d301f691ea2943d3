"""Stats API v2 (`POST /api/v2/query`): a parsed `V2Query` run through the stats chain
(model.Question -> plan -> SQL -> run) and answered as Plausible's
`{"results": [{"metrics": [...], "dimensions": [...]}], "meta": {...}, "query": {...}}`.

The chain computes the metrics it knows (`metrics.kind`); this module adds what
Plausible derives from them: `percentage` (of all visitors of the query),
`conversion_rate` (of the visitors without the goal filter) and
`group_conversion_rate` (the same per dimension group), and the `event:goal`
dimension (one chain query per goal, configured in `_sites/<site>.json`, or every
custom event name without a configuration). Revenue metrics are `null` with
Plausible's `metric_warnings` (revenue goals are not a thing here). Ordering and
pagination are applied to the whole answer, so `total_rows` is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from traceglider.errors import BadRequest, PayloadTooLarge
from traceglider.stats.service import bucket_starts
from traceglider.stats.v2_query import (
    DERIVED_METRICS,
    NAMED,
    NATIVE_METRICS,
    REVENUE_METRICS,
    TIME_DIMENSIONS,
    V2Query,
    parse,
    place_name,
)
from traceglider.web import check_bearer, plausible_errors

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.engine import Engine
    from traceglider.stats.model import Node
    from traceglider.storage.base import Storage

MAX_BODY = 64 * 1024
NOT_SET = "(not set)"  # Plausible's value of a dimension a visit or event has none of
MAX_GOALS = 50
_NON_GOAL_NAMES = ("pageview", "engagement", "vital")
_FORMATS = {"time:hour": "%Y-%m-%d %H:00:00", "time:day": "%Y-%m-%d", "time:week": "%Y-%m-%d",
            "time:month": "%Y-%m-%d"}
REVENUE_WARNING = {"code": "no_revenue_goals_matching",
                   "warning": "Revenue metrics are null as there are no matching revenue goals."}


Row = tuple[tuple[Any, ...], dict[str, Any]]  # (dimension values, metric values)


def _chain_dimension(dimension: str) -> str:
    return NAMED.get(dimension, dimension)


class Runner:
    """Runs chain questions for one V2Query."""

    def __init__(self, engine: Engine, q: V2Query) -> None:
        self.engine, self.q = engine, q

    def rows(self, metrics: tuple[str, ...], dimensions: tuple[str, ...], filters: Node | None) -> list[Row]:
        from traceglider.stats import metrics as M
        from traceglider.stats import sql as S
        from traceglider.stats.model import Question

        question = Question(self.q.site, self.q.start, self.q.end, metrics, dimensions, filters)
        fetched = self.engine.run(lambda r: S.aggregate(question, r), question)
        n = len(dimensions)
        return [(tuple(row[:n]), {m: M.as_number(m, v) for m, v in zip(metrics, row[n:], strict=True)})
                for row in fetched]

    def total(self, filters: Node | None) -> float:
        rows = self.rows(("visitors",), (), filters)
        return float(rows[0][1]["visitors"]) if rows else 0.0

    def goals(self) -> list[str]:
        from traceglider.stats import service
        from traceglider.stats.model import Condition, Not, all_of, without

        configured = service.site_goals(self.engine, self.q.site)
        if configured:
            return configured[:MAX_GOALS]
        # without a configuration every custom event name is a goal, as v1 has it
        not_pageviews = Not(Condition("is", "event:goal", ("Visit **",)))
        nodes = [n for n in (without(self.q.filters, "event:goal"), not_pageviews) if n is not None]
        names = self.rows(("events",), ("event:name",), all_of(nodes))
        return [str(d[0]) for d, _ in names if d[0] and d[0] not in _NON_GOAL_NAMES][:MAX_GOALS]


def _rows(runner: Runner, q: V2Query, metrics: tuple[str, ...]) -> list[Row]:
    from traceglider.stats.model import Condition, all_of

    dims = q.dimensions
    if "event:goal" not in dims:
        return runner.rows(metrics, tuple(_chain_dimension(d) for d in dims), q.filters)
    at = dims.index("event:goal")
    rest = tuple(_chain_dimension(d) for d in dims if d != "event:goal")
    out: list[Row] = []
    for goal in runner.goals():
        goal_filter = Condition("is", "event:goal", (goal,))
        filters = all_of([q.filters, goal_filter] if q.filters is not None else [goal_filter])
        for values, found in runner.rows(metrics, rest, filters):
            if found.get("events", 0) > 0:  # goals without conversions have no row
                out.append(((*values[:at], goal, *values[at:]), found))
    return out


def _derive(runner: Runner, q: V2Query, rows: list[Row]) -> None:
    """Percentages and conversion rates, in place, from each row's visitors."""
    from traceglider.stats.model import without

    wanted = [m for m in q.metrics if m in DERIVED_METRICS]
    if not wanted:
        return
    if "percentage" in wanted:
        total = runner.total(q.filters)
        for _, found in rows:
            found["percentage"] = round(100 * found["visitors"] / total, 2) if total else 0.0
    no_goal = without(q.filters, "event:goal")
    if "conversion_rate" in wanted:
        total = runner.total(no_goal)
        for _, found in rows:
            found["conversion_rate"] = round(100 * found["visitors"] / total, 2) if total else 0.0
    if "group_conversion_rate" in wanted:
        others = [i for i, d in enumerate(q.dimensions) if d != "event:goal"]
        groups = {values: found["visitors"] for values, found in runner.rows(
            ("visitors",), tuple(_chain_dimension(q.dimensions[i]) for i in others), no_goal)}
        for values, found in rows:
            total = groups.get(tuple(values[i] for i in others), 0)
            found["group_conversion_rate"] = round(100 * found["visitors"] / total, 2) if total else 0.0


def _value(dimension: str, value: Any) -> Any:
    if dimension in TIME_DIMENSIONS:
        return value.strftime(_FORMATS[dimension]) if isinstance(value, datetime) else value
    if dimension in NAMED:
        value = place_name(dimension, value)
    if value is None or value == "":
        return NOT_SET
    return value


def _sort(rows: list[tuple[list[Any], list[Any]]], q: V2Query) -> None:
    """Plausible's order: `order_by`, then the dimensions ascending (a stable answer)."""
    position = {m: ("m", i) for i, m in enumerate(q.metrics)}
    position.update({d: ("d", i) for i, d in enumerate(q.dimensions)})
    terms = list(q.order_by) + [(d, "asc") for d in q.dimensions if d not in dict(q.order_by)]
    for key, direction in reversed(terms):
        side, index = position[key]

        def get(row: tuple[list[Any], list[Any]], side: str = side, index: int = index) -> Any:
            return (row[1] if side == "m" else row[0])[index]

        present = [r for r in rows if get(r) is not None]
        absent = [r for r in rows if get(r) is None]
        try:
            present.sort(key=get, reverse=direction == "desc")
        except TypeError:  # mixed types in one column: compare as text
            present.sort(key=lambda r: str(get(r)), reverse=direction == "desc")
        rows[:] = present + absent


def time_labels(q: V2Query) -> list[str]:
    dimension = next(d for d in q.dimensions if d in TIME_DIMENSIONS)
    unit = dimension.removeprefix("time:")
    return [t.strftime(_FORMATS[dimension]) for t in bucket_starts(q.start, q.end, unit, limit=100_000)]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def answer(engine: Engine, q: V2Query) -> dict[str, Any]:
    runner = Runner(engine, q)
    native = [m for m in q.metrics if m in NATIVE_METRICS]
    if any(m in DERIVED_METRICS for m in q.metrics) and "visitors" not in native:
        native.append("visitors")
    if "event:goal" in q.dimensions and "events" not in native:
        native.append("events")  # a goal row exists when it has conversions
    rows = _rows(runner, q, tuple(native or ["visitors"]))
    _derive(runner, q, rows)
    shaped = [([_value(d, v) for d, v in zip(q.dimensions, values, strict=True)],
               [None if m in REVENUE_METRICS else found[m] for m in q.metrics]) for values, found in rows]
    _sort(shaped, q)
    meta: dict[str, Any] = {}
    if q.include.get("imports"):
        meta["imports_included"] = False
        meta["imports_skip_reason"] = "no_imported_data"
    revenue = [m for m in q.metrics if m in REVENUE_METRICS]
    if revenue:
        meta["metric_warnings"] = {m: dict(REVENUE_WARNING) for m in revenue}
    if q.include.get("time_labels"):
        meta["time_labels"] = time_labels(q)
    if q.include.get("total_rows"):
        meta["total_rows"] = len(shaped)
    page = shaped[q.offset:q.offset + q.limit]
    query: dict[str, Any] = {
        "site_id": q.site, "metrics": list(q.metrics),
        "date_range": [_iso(q.start), _iso(q.end - timedelta(seconds=1))],
        "filters": q.raw_filters, "dimensions": list(q.dimensions),
        "order_by": [[k, d] for k, d in q.order_by],
    }
    if q.include_given is not None:
        query["include"] = q.include_given
    if q.pagination_given is not None:
        query["pagination"] = q.pagination_given
    return {"results": [{"metrics": m, "dimensions": d} for d, m in page], "meta": meta, "query": query}


def _first_day(storage: Storage) -> Any:
    def first(site: str) -> Any:
        from datetime import date

        days = []
        for info in storage.list(f"events/site={site}/"):
            part = info.key.split("/")[2] if info.key.count("/") >= 3 else ""
            if part.startswith("date="):
                try:
                    days.append(date.fromisoformat(part.removeprefix("date=")))
                except ValueError:
                    continue
        return min(days) if days else None
    return first


def v2_router(settings: Settings, get_engine: Callable[[], Engine]) -> APIRouter:
    router = APIRouter(tags=["stats"])

    example = {"site_id": "example.com", "metrics": ["visitors", "bounce_rate"], "date_range": "7d",
               "dimensions": ["visit:source"], "filters": [["contains", "event:page", ["/blog"]]]}

    @router.post("/api/v2/query", summary="Plausible's Stats API v2: one query, metrics by dimensions",
                 responses={400: {}, 401: {}, 413: {}},
                 openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["site_id", "metrics", "date_range"]},
                     "example": example}}}})
    @plausible_errors
    async def query_v2(request: Request) -> Any:
        check_bearer(settings, request)
        body = await request.body()
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"The query is larger than {MAX_BODY} bytes")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("Invalid query: the body is not valid JSON.") from None
        engine = get_engine()

        def run() -> Any:
            from datetime import UTC

            now = datetime.fromtimestamp(engine.clock(), tz=UTC)
            q = parse(document, now, _first_day(engine.storage)
                      if isinstance(document, dict) else None)
            try:
                return engine.reading(lambda: answer(engine, q))
            except Exception as exc:
                # DuckDB refusing a value the client gave (a regular expression RE2
                # rejects that the parser let through) is the client's 400, not a 500
                if type(exc).__name__ != "InvalidInputException":
                    raise
                raise BadRequest(f"Invalid filter value: {str(exc).splitlines()[0][:300]}") from None
        return await run_in_threadpool(run)

    return router
