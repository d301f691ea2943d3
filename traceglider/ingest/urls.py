"""The core pipeline step that splits the page and referrer URLs into columns."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.types import PipelineRow

UtmKey = Literal["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]
UTM_KEYS: tuple[UtmKey, ...] = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@lru_cache(maxsize=4096)
def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().removeprefix("www.") if host else None


@lru_cache(maxsize=4096)  # pages repeat: most URLs were split a moment ago
def url_columns(url: str) -> tuple[tuple[str, Any], ...] | None:
    """The columns a page URL splits into, or None when it has no host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return None
    if not host:
        return None
    params = dict(parse_qsl(parts.query, keep_blank_values=False))
    return (("hostname", host.lower()), ("path", parts.path or "/"), ("query", parts.query or None),
            *((key, params.get(key) or None) for key in UTM_KEYS))


NO_HOST = "(none)"


@lru_cache(maxsize=1024)
def relative_columns(url: str) -> tuple[tuple[str, Any], ...] | None:
    """The columns of a relative URL (`/blog?utm_source=x`): Plausible's Events API
    accepts one and records hostname `(none)`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    params = dict(parse_qsl(parts.query, keep_blank_values=False))
    return (("hostname", NO_HOST), ("path", parts.path or "/"), ("query", parts.query or None),
            *((key, params.get(key) or None) for key in UTM_KEYS))


def split_url(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
    columns = url_columns(row["url"])
    if columns is None and row.get("hostname") == NO_HOST:  # set by the Events API parser
        columns = relative_columns(row["url"])
    if columns is None:
        return Drop("invalid", "url has no host or does not parse")
    row.update(columns)  # type: ignore[typeddict-item]  # (column, value) pairs, cached per URL
    row["referrer_host"] = host_of(row.get("referrer"))
    return row
