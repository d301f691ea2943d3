"""The query parameters of the Stats API v1 routes, for their OpenAPI description:
the routes read them from the query string themselves (`stats.query.parse`), so
without this the description would declare none and a fuzzer could not reach them."""

from __future__ import annotations

from typing import Any

from traceglider.stats.query import INTERVALS, MAX_LIMIT, METRICS, PERIODS, PROPERTIES


def _param(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


SITE_ID = _param("site_id", {"type": "string", "maxLength": 250}, "The site domain, e.g. example.com",
                 required=True)
_PERIOD = [
    SITE_ID,
    _param("period", {"type": "string", "enum": list(PERIODS)}, "day, 7d, 30d, month, 6mo, 12mo, custom"),
    _param("date", {"type": "string"}, "YYYY-MM-DD, or YYYY-MM-DD,YYYY-MM-DD for period=custom "
           "(1970-01-01 to 2999-12-31)"),
    _param("compare", {"type": "string", "enum": ["previous_period"]}, "Add each metric's change"),
]
_SHAPE = [
    _param("metrics", {"type": "string"}, "Comma-separated: " + ", ".join(METRICS)),
    _param("filters", {"type": "string"}, "Plausible v1 filters, e.g. event:page==/blog/**"),
    _param("interval", {"type": "string", "enum": list(INTERVALS)}, "Timeseries buckets"),
    _param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "Rows per page"),
    _param("page", {"type": "integer", "minimum": 1}, "Page of a breakdown"),
]
_PROPERTY = _param("property", {"type": "string", "examples": [*PROPERTIES, "event:props:plan"]},
                   "event:page, visit:source, event:props:<key>, ...")

PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "aggregate": _PERIOD + _SHAPE,
    "timeseries": _PERIOD + _SHAPE,
    "breakdown": [*_PERIOD, *_SHAPE, {**_PROPERTY, "required": True}],
    "realtime": [SITE_ID],
    "goals": [*_PERIOD, *_SHAPE, _param("goals", {"type": "string"}, "Comma-separated goal names")],
    "funnel": [*_PERIOD, *_SHAPE, _param("steps", {"type": "string"}, "Comma-separated steps")],
    "navigation": [*_PERIOD, *_SHAPE, _param("path", {"type": "string"}, "A page path such as /pricing",
                                             required=True)],
    "export": [SITE_ID, _param("date", {"type": "string"}, "YYYY-MM-DD or a range", required=True),
               _param("format", {"type": "string", "enum": ["parquet", "ndjson", "csv"]}, "File format")],
}


def openapi_extra(kind: str) -> dict[str, Any]:
    return {"parameters": PARAMETERS[kind]}
