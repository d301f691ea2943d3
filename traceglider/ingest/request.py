"""Parse a /collect body once, at the edge, into rows; every limit is a named constant.

Nothing is truncated here: a value over a limit rejects the whole batch with a 400 or
413 that names the field, so a client learns what to fix and nothing half-right is
stored. (URL hygiene later shortens what it keeps; that is enrichment, not parsing.)
Control characters (C0, DEL, C1) are refused in ids, names and URLs, which no browser
sends raw; in free text a page does not fully control (titles, property values and
names) each is replaced by a space. Either way none reaches storage, where it could
break whatever reads the value later. See docs/events.md for the format.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, overload

import orjson

from traceglider.errors import BadRequest, PayloadTooLarge
from traceglider.sites import normalize_site
from traceglider.types import PipelineRow

MAX_BODY_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
MAX_EVENTS = 100
MAX_STRING = 2000
MAX_PROPS = 30
MAX_ID = 64
MAX_NAME = 200

EVENT_TYPES = ("pageview", "engagement", "click", "form_submit", "vital", "error", "custom")
VITALS = ("LCP", "CLS", "INP", "FCP", "TTFB")
_DEFAULT_NAMES: dict[str, str] = {
    "pageview": "pageview",
    "engagement": "engagement",
    "form_submit": "Form: Submit",
    "vital": "vital",
    "error": "JS Error",
}
# ctx keys that become columns; the others listed are kept in the `ctx` JSON column.
_CTX_COLUMNS = {"sw": "screen_width", "sh": "screen_height", "vw": "viewport_width",
                "vh": "viewport_height", "lang": "language", "tz": "timezone"}
_CTX_TYPES: dict[str, tuple[type, ...]] = {
    "sw": (int,), "sh": (int,), "vw": (int,), "vh": (int,), "dpr": (int, float),
    "lang": (str,), "tz": (str,), "cs": (str,), "touch": (int,), "conn": (str,),
    "mobile": (bool,), "platform": (str,), "brands": (str,), "wd": (bool,),
}
_CTX_KEPT = ("dpr", "cs", "touch", "conn")
MAX_DIMENSION = 100_000
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Every way a control character can reach a decoded JSON string: an escape (\u0000-
# \u001f, \u007f-\u009f, \b \f \n \r \t), a raw DEL or a raw UTF-8 C1 (raw C0 is invalid
# inside a JSON string, and only whitespace outside one). A body without any has no
# control character in any string, so the per-field checks can be skipped: one scan
# in C instead of about 50 per request. A false alarm (an escaped backslash before
# 'n') only takes the careful path.
_BODY_CONTROL = re.compile(rb"\\(?:u00(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])|[bfnrt])|\x7f|\xc2[\x80-\x9f]")


def check_text(value: str, field: str) -> str:
    """`value`, or a BadRequest when it holds a control character."""
    found = CONTROL.search(value)
    if found:
        raise BadRequest(f"{field}: must not contain control characters (found U+{ord(found.group()):04X})")
    return value


def clean_text(value: str) -> str:
    """Free text with each control character replaced by a space."""
    return CONTROL.sub(" ", value) if CONTROL.search(value) else value


def body_is_clean(body: bytes) -> bool:
    """True when no string in this JSON body can hold a control character."""
    # Every match starts with a backslash, a DEL or the byte 0xC2, and most bodies hold
    # none of the three: three scans for one byte (memchr) cost under a microsecond
    # where the pattern's search took 12 us for the benchmark's 1.5 KB body.
    if b"\\" not in body and b"\x7f" not in body and b"\xc2" not in body:
        return True
    return _BODY_CONTROL.search(body) is None


def decode_json(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


@overload
def _string(value: Any, field: str, *, required: Literal[True], limit: int = MAX_STRING) -> str: ...


@overload
def _string(value: Any, field: str, *, required: bool = False, limit: int = MAX_STRING) -> str | None: ...


def _string(value: Any, field: str, *, required: bool = False, limit: int = MAX_STRING) -> str | None:
    if value is None:
        if required:
            raise BadRequest(f"{field}: required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string")
    if len(value) > limit:
        raise BadRequest(f"{field}: longer than {limit} characters")
    if required and not value:
        raise BadRequest(f"{field}: must not be empty")
    return check_text(value, field)


def _text(value: Any, field: str) -> str | None:
    """Free text: a string within the limit, control characters made spaces."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string")
    if len(value) > MAX_STRING:
        raise BadRequest(f"{field}: longer than {MAX_STRING} characters")
    return clean_text(value) or None


def _integer(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise BadRequest(f"{field}: must be a whole number")
    if not low <= value <= high:
        raise BadRequest(f"{field}: must be from {low} to {high}")
    return int(value)


def parse_props(value: Any, field: str) -> str | None:
    """Props as compact JSON text, or None; values must be strings, numbers or booleans."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{field}: must be an object")
    if len(value) > MAX_PROPS:
        raise BadRequest(f"{field}: at most {MAX_PROPS} properties")
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 300:
            raise BadRequest(f"{field}: property names must be 1 to 300 characters")
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                raise BadRequest(f"{field}.{key[:50]}: longer than {MAX_STRING} characters")
            item = clean_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f"{field}.{key[:50]}: must be a finite number")
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise BadRequest(f"{field}.{key[:50]}: must be a string, number or boolean")
        cleaned[clean_text(key)] = item
    if not cleaned:
        return None
    try:
        return orjson.dumps(cleaned).decode()
    except TypeError:  # an integer beyond 64 bits
        raise BadRequest(f"{field}: a number is out of range") from None


def parse_ctx(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("ctx: must be an object")
    ctx: dict[str, Any] = {}
    for key, kinds in _CTX_TYPES.items():
        item = value.get(key)
        if item is None:
            continue
        if not isinstance(item, kinds) or (bool not in kinds and isinstance(item, bool)):
            raise BadRequest(f"ctx.{key}: wrong type")
        if isinstance(item, str) and len(item) > 200:
            raise BadRequest(f"ctx.{key}: longer than 200 characters")
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not (
            math.isfinite(item) and 0 <= item <= MAX_DIMENSION
        ):
            raise BadRequest(f"ctx.{key}: must be from 0 to {MAX_DIMENSION}")
        ctx[key] = item
    return ctx


def ctx_columns(ctx: dict[str, Any]) -> PipelineRow:
    """The stored columns that come from the batch's ctx (shared by its events)."""
    columns: PipelineRow = {column: ctx.get(key) for key, column in _CTX_COLUMNS.items()}  # type: ignore[assignment]  # stored columns
    kept = {key: ctx[key] for key in _CTX_KEPT if key in ctx}
    columns["ctx"] = orjson.dumps(kept).decode() if kept else None
    return columns


def _plain(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def _fast_event(raw: dict[str, Any], kind: str, site: str, received_at: int) -> PipelineRow | None:
    """The row of an event from a clean body (see `body_is_clean`) whose text fields are
    all plain strings within their limits, built without a call per field; None when
    any needs the careful path, which then names what is wrong."""
    get = raw.get
    event_id, url, ref, title, name = get("id"), get("url"), get("ref"), get("title"), get("name")
    if not (type(event_id) is str and 0 < len(event_id) <= MAX_ID
            and type(url) is str and 0 < len(url) <= MAX_STRING
            and _plain(ref, MAX_STRING) and _plain(title, MAX_STRING) and _plain(name, MAX_NAME)):
        return None
    if not name and kind in ("click", "custom"):
        return None
    ts, props = get("ts"), get("props")
    row: PipelineRow = {
        "event_id": event_id, "site": site, "type": kind,
        "name": name or _DEFAULT_NAMES.get(kind, kind), "received_at": received_at,
        "client_ts": None if ts is None else _integer(ts, "ts", 0, 32503680000000),
        "url": url, "referrer": ref or None, "title": title or None,
        "props": None if props is None else parse_props(props, "props"),
    }
    return row


def parse_event(raw: Any, index: int, site: str, received_at: int, clean: bool = False) -> PipelineRow:
    """The row of one event. `clean`: the body passed `body_is_clean`."""
    if clean and type(raw) is dict:
        kind = raw.get("type")
        if kind == "pageview":  # most events: no fields of their own
            try:
                fast = _fast_event(raw, kind, site, received_at)
            except BadRequest:
                fast = None  # the careful path says where
            if fast is not None:
                return fast
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: must be an object")
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise BadRequest(f"{where}.type: must be one of {', '.join(EVENT_TYPES)}")
    name = _string(raw.get("name"), f"{where}.name", limit=MAX_NAME,
                   required=kind in ("click", "custom"))
    row: PipelineRow = {
        "event_id": _string(raw.get("id"), f"{where}.id", required=True, limit=MAX_ID),
        "site": site,
        "type": kind,
        "name": name or _DEFAULT_NAMES.get(kind, kind),  # type: ignore[typeddict-item]  # kind: of EVENT_TYPES
        "received_at": received_at,
        "client_ts": _integer(raw.get("ts"), f"{where}.ts", 0, 32503680000000),
        "url": _string(raw.get("url"), f"{where}.url", required=True),
        "referrer": _string(raw.get("ref"), f"{where}.ref") or None,
        "title": _text(raw.get("title"), f"{where}.title"),
        "props": parse_props(raw.get("props"), f"{where}.props"),
    }
    if kind == "engagement":
        row["scroll_depth"] = _integer(raw.get("scroll"), f"{where}.scroll", 0, 100)
        row["engagement_ms"] = _integer(raw.get("eng"), f"{where}.eng", 0, 7 * 86_400_000)
    elif kind == "vital":
        metric = raw.get("metric")
        if metric not in VITALS:
            raise BadRequest(f"{where}.metric: must be one of {', '.join(VITALS)}")
        value = raw.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and 0 <= value <= 3_600_000
        ):
            raise BadRequest(f"{where}.value: must be a number from 0 to 3600000")
        row["metric_name"], row["metric_value"] = metric, float(value)
    return row


def parse_body(body: bytes, received_at: int) -> tuple[str, dict[str, Any], list[PipelineRow]]:
    """(site, ctx, rows) of a /collect body, or a BadRequest/PayloadTooLarge."""
    document = decode_json(body)
    # Measuring an event re-encodes it, where a number may grow ("1e15" is written
    # 1000000000000000.0, under 5x) and nothing else does: no event of a body under an
    # eighth of the limit can exceed it, so most requests skip measuring each.
    return parse_batch(document, received_at, clean=body_is_clean(body),
                       small=len(body) <= MAX_EVENT_BYTES // 8)


def parse_batch(document: Any, received_at: int, *, clean: bool = False,
                small: bool = False) -> tuple[str, dict[str, Any], list[PipelineRow]]:
    """(site, ctx, rows) of a decoded batch, or a BadRequest/PayloadTooLarge. `clean`
    and `small` are what `parse_body` knows of the raw body."""
    if not isinstance(document, dict):
        raise BadRequest("body: must be a JSON object with site and events")
    site = normalize_site(document.get("site"))
    ctx = parse_ctx(document.get("ctx"))
    events = document.get("events")
    if not isinstance(events, list) or not events:
        raise BadRequest("events: required, a list of 1 to 100 events")
    if len(events) > MAX_EVENTS:
        raise BadRequest(f"events: at most {MAX_EVENTS} per batch")
    shared = ctx_columns(ctx)
    rows: list[PipelineRow] = []
    for index, raw in enumerate(events):
        if not small:
            try:
                size = len(orjson.dumps(raw))
            except TypeError:  # only an integer beyond 64 bits gets this far
                raise BadRequest(f"events[{index}]: a number is out of range") from None
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(f"events[{index}]: larger than {MAX_EVENT_BYTES} bytes")
        row = parse_event(raw, index, site, received_at, clean)
        row.update(shared)
        rows.append(row)
    return site, ctx, rows
