"""Stored values are data, never SQL: rows written straight to storage (by an old
collector, another tool, a bug) with NUL characters, quotes, backslashes, newlines,
SQL and huge strings in every text column are answered by every stats route, raw and
compacted, with no 5xx, and counted as the text they are."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers import row
from traceglider.config import load
from traceglider.dashboard.panels import PROFILE_KINDS, profile_answer
from traceglider.stats.api import AppEngine, handle, stats_router
from traceglider.stats.engine import Engine
from traceglider.storage.compact import compact
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

TOKEN = "hostile-rows-token-0123"
SITE = "example.com"
NASTY = ["a\x00b", "it's", "x');DROP TABLE t;--", 'q"uote\\', "line\nbreak\r\n", "\x01\x1f\x7f",
         "é🙂\u202e", "%s{0}$1", "x" * 200_000, ""]
TEXT = ("name", "path", "hostname", "referrer", "source", "channel", "utm_source", "utm_medium",
        "utm_campaign", "country", "region", "device_type", "browser", "os", "os_version", "language",
        "visitor_id", "title", "query")


def hostile_rows(now_us: int) -> list[dict]:
    rows = []
    for i, value in enumerate(NASTY):
        base = {c: value for c in TEXT}
        base["visitor_id"] = f"v{i}{value[:50]}"
        rows.append(row(f"p{i}", when_us=now_us - 3_600_000_000 + i, **base))
        rows.append(row(f"c{i}", when_us=now_us - 3_500_000_000 + i, **{**base, "type": "custom",
                        "props": '{"k' + str(i) + '": ' + _json(value) + "}"}))
        rows.append(row(f"e{i}", when_us=now_us - 3_400_000_000 + i, **{**base, "type": "engagement",
                        "name": "engagement", "scroll_depth": 50, "engagement_ms": 1000}))
    return rows


def _json(value: str) -> str:
    import json

    return json.dumps(value)


QUERIES = [
    ("aggregate", {"metrics": "visitors,visits,pageviews,events,bounce_rate,visit_duration,views_per_visit",
                   "compare": "previous_period"}),
    ("timeseries", {"metrics": "visitors,pageviews,visits"}),
    ("realtime", {}),
    ("goals", {"goals": "Visit /p,a\x00b,it's"}),
    ("funnel", {"steps": "Visit **,it's"}),
    ("navigation", {"path": "/x');DROP TABLE t;--"}),
    ("props", {"name": "it's"}),
    *[("breakdown", {"property": p, "metrics": "visitors,visits,pageviews,bounce_rate"})
      for p in ("event:page", "event:name", "event:hostname", "visit:source", "visit:country", "visit:device",
                "visit:browser", "visit:os", "visit:entry_page", "visit:exit_page", "visit:referrer",
                "visit:utm_source", "event:props:k1")],
    ("breakdown", {"property": "event:page", "metrics": "visitors,scroll_depth,time_on_page"}),
    ("aggregate", {"metrics": "visitors,pageviews", "filters": "event:page==it's|a\x00b;visit:country!=x**"}),
    ("aggregate", {"metrics": "visits", "filters": "visit:source~') SELECT 1 --"}),
]


@pytest.fixture(params=["raw", "compacted"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    storage = LocalStorage(tmp_path)
    now_us = int(time.time() * 1_000_000)
    write_rows(storage, hostile_rows(now_us), "hostile")
    write_rows(storage, [row("ok", when_us=now_us - 1_000_000, visitor_id="good")], "fine")
    if request.param == "compacted":
        compact(storage)
        assert any(i.key.startswith("visits/") for i in storage.list("visits/"))
    eng = Engine(storage)
    yield eng
    eng.close()


@pytest.mark.parametrize(("kind", "extra"), QUERIES)
def test_every_stats_question_answers_over_hostile_values(engine: Engine, kind: str, extra: dict) -> None:
    for period in ("day", "7d"):
        answer = handle(kind, engine, {"site_id": SITE, "period": period, **extra})
        assert answer is not None


@pytest.mark.parametrize("kind", PROFILE_KINDS)
def test_every_dashboard_profile_panel_answers_over_hostile_values(engine: Engine, kind: str) -> None:
    for filters in ("", "event:page==it's;visit:country==a\x00b"):
        params = {"site_id": SITE, "period": "day", **({"filters": filters} if filters else {})}
        assert engine.reading(lambda p=params: profile_answer(kind, engine, p)) is not None


def test_hostile_values_are_counted_as_the_text_they_are(engine: Engine) -> None:
    got = handle("breakdown", engine, {"site_id": SITE, "period": "7d", "property": "visit:country",
                                       "limit": "100", "metrics": "visitors"})["results"]
    countries = {r["country"]: r["visitors"] for r in got}
    for value in NASTY:
        assert countries.get(value or "(none)", 0) >= 1, repr(value[:20])
    pages = handle("breakdown", engine, {"site_id": SITE, "period": "7d", "property": "event:page",
                                         "limit": "100", "metrics": "pageviews"})["results"]
    assert {r["page"]: r["pageviews"] for r in pages}["a\x00b"] == 1


def test_the_http_api_answers_over_hostile_values(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    write_rows(storage, hostile_rows(int(time.time() * 1_000_000)), "hostile")
    compact(storage)
    write_rows(storage, hostile_rows(int(time.time() * 1_000_000))[:6], "today")  # raw beside compacted
    settings = load(env={"TG_STORAGE": str(tmp_path), "TG_API_TOKEN": TOKEN, "TG_SECRET": "x" * 32})
    app = FastAPI()
    app.include_router(stats_router(settings, AppEngine(settings, storage)))
    with TestClient(app, headers={"authorization": f"Bearer {TOKEN}"}) as client:
        for kind, extra in QUERIES:
            path = {"realtime": "realtime/visitors"}.get(kind, kind)
            if kind == "props":
                continue
            response = client.get(f"/api/v1/stats/{path}", params={"site_id": SITE, "period": "day", **extra})
            assert response.status_code < 500, (kind, extra, response.text[:200])
        day = time.strftime("%Y-%m-%d", time.gmtime())
        response = client.get("/api/v1/export", params={"site_id": SITE, "start": day, "end": day})
        assert response.status_code < 500, response.text[:200]
