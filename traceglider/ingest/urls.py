"""The core pipeline step that splits the page and referrer URLs into columns."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from traceglider.ingest.pipeline import Drop, RequestInfo

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().removeprefix("www.") if host else None


def split_url(row: dict[str, Any], request: RequestInfo) -> dict[str, Any] | Drop:
    try:
        parts = urlsplit(row["url"])
    except ValueError:
        return Drop("invalid", "url does not parse")
    if not parts.hostname:
        return Drop("invalid", "url has no host")
    row["hostname"] = parts.hostname.lower()
    row["path"] = parts.path or "/"
    row["query"] = parts.query or None
    params = dict(parse_qsl(parts.query, keep_blank_values=False))
    for key in UTM_KEYS:
        row[key] = params.get(key) or None
    row["referrer_host"] = host_of(row.get("referrer"))
    return row
