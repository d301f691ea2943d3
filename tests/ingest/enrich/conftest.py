"""Builders for the enrichment step tests: a request and a parsed row."""

from __future__ import annotations

from typing import Any

import pytest

from traceglider.ingest.pipeline import RequestInfo

CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36")
NOW_US = 1_764_280_000_000_000  # 2025-11-27T21:46:40Z


def make_request(**changes: Any) -> RequestInfo:
    fields: dict[str, Any] = {
        "site": "example.com", "ip": "127.0.0.1", "user_agent": CHROME_MAC, "headers": {},
        "cookies": {}, "received_at": NOW_US, "secure": True, "ctx": {},
    }
    fields.update(changes)
    return RequestInfo(**fields)


def make_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": "e1", "site": "example.com", "type": "pageview", "name": "pageview",
        "received_at": NOW_US, "url": "https://example.com/", "referrer": None, "title": None,
        "props": None, "hostname": "example.com", "path": "/", "query": None,
        "referrer_host": None, "utm_source": None, "utm_medium": None, "utm_campaign": None,
        "utm_term": None, "utm_content": None,
    }
    row.update(changes)
    return row


@pytest.fixture
def request_info() -> RequestInfo:
    return make_request()
