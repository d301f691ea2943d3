"""OpenAPI descriptions of the bodies the ingest routes read themselves (they parse
raw bytes with a hard cap, so FastAPI cannot infer them). See docs/events.md."""

from __future__ import annotations

from typing import Any

from traceglider.ingest.request import EVENT_TYPES, MAX_EVENTS, MAX_ID, MAX_PROPS, MAX_STRING, VITALS

_TEXT = {"type": "string", "maxLength": MAX_STRING}

EVENT = {
    "type": "object",
    "required": ["id", "type", "url"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "ts": {"type": "integer", "minimum": 0},
        "url": _TEXT,
        "ref": _TEXT,
        "title": _TEXT,
        "name": {"type": "string", "maxLength": 200},
        "props": {"type": "object", "maxProperties": MAX_PROPS,
                  "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "scroll": {"type": "integer", "minimum": 0, "maximum": 100},
        "eng": {"type": "integer", "minimum": 0},
        "metric": {"type": "string", "enum": list(VITALS)},
        "value": {"type": "number", "minimum": 0},
    },
}

BATCH = {
    "type": "object",
    "required": ["site", "events"],
    "properties": {
        "site": {"type": "string", "example": "example.com"},
        "ctx": {"type": "object", "description": "environment profile, see docs/events.md"},
        "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": EVENT},
    },
}

CONSENT = {
    "type": "object",
    "required": ["site", "consent"],
    "properties": {"site": {"type": "string"}, "consent": {"type": "string", "enum": ["granted", "denied"]}},
}

PLAUSIBLE_EVENT = {
    "type": "object",
    "required": ["name", "url", "domain"],
    "properties": {
        "name": {"type": "string"}, "url": _TEXT, "domain": {"type": "string"}, "referrer": _TEXT,
        "props": {"type": "object"}, "revenue": {"type": "object"}, "interactive": {"type": "boolean"},
    },
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body (also accepted as text/plain) is `schema`."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}, "text/plain": {"schema": schema}}}}
