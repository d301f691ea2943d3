"""Stats API v1 as Plausible documents it (stats-api-v1.md): value names, globs, and
the errors Plausible gives, over HTTP against a small hand-built dataset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from traceglider.config import load
from traceglider.stats.api import AppEngine, stats_router
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

SITE = "v1.example"
TOKEN = "v1-token"
DAY = {"site_id": SITE, "period": "day", "date": "2026-11-20"}


def at(minute: int) -> int:
    return int(datetime(2026, 11, 20, 10, minute, tzinfo=UTC).timestamp() * 1_000_000)


def pageview(visitor: str, path: str, minute: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{visitor}-{path}-{minute}", "site": SITE, "type": "pageview", "name": "pageview",
            "received_at": at(minute), "path": path, "hostname": SITE, "visitor_id": visitor, **extra}


# Values stored before (ours, and ua-parser's raw families) next to Plausible's names.
ROWS = [
    pageview("old-desktop", "/", device_type="desktop", os="macOS", browser="Edge"),
    pageview("new-desktop", "/", device_type="Desktop", os="Mac", browser="Microsoft Edge"),
    pageview("old-phone", "/", device_type="mobile", os="iOS", browser="Mobile Safari"),
    pageview("new-phone", "/", device_type="Mobile", os="iOS", browser="Safari"),
    pageview("tv", "/", device_type="other", os="Tizen", browser="Samsung Internet"),
    pageview("old-linux", "/", device_type="desktop", os="Linux", browser="Firefox", country="US",
             region="US-MD", city=4347778, city_name="Baltimore"),
    # pages for the globs
    pageview("g1", "/blog"), pageview("g2", "/blog/a"), pageview("g3", "/blog/a/b"),
    pageview("g4", "/blogging"), pageview("g5", "/about/blog"),
    {**pageview("g1", "/blog", 1), "type": "custom", "name": "Signup"},
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("v1")
    storage = LocalStorage(root)
    write_rows(storage, ROWS, "batch-1")
    settings = load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "s" * 32})
    app = FastAPI()
    app.include_router(stats_router(settings, AppEngine(settings, storage)))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def visitors(api: TestClient, filters: str) -> int:
    r = api.get("/api/v1/stats/aggregate", params={**DAY, "filters": filters})
    assert r.status_code == 200, r.text
    return int(r.json()["results"]["visitors"]["value"])


def breakdown(api: TestClient, prop: str, **params: str) -> dict[str, int]:
    r = api.get("/api/v1/stats/breakdown", params={**DAY, "property": prop, **params})
    assert r.status_code == 200, r.text
    key = prop.split(":")[-1]
    return {row[key]: row["visitors"] for row in r.json()["results"]}


def test_devices_read_as_plausibles_names_old_and_new_alike(api: TestClient) -> None:
    devices = breakdown(api, "visit:device", filters="event:page==/")
    assert devices == {"Desktop": 3, "Mobile": 2, "(none)": 1}
    assert visitors(api, "visit:device==Desktop") == 3
    assert visitors(api, "visit:device==Mobile|Tablet") == 2


def test_operating_systems_and_browsers_read_as_plausibles_names(api: TestClient) -> None:
    assert breakdown(api, "visit:os", filters="event:page==/") == {
        "Mac": 2, "iOS": 2, "Tizen": 1, "GNU/Linux": 1}
    assert breakdown(api, "visit:browser", filters="event:page==/") == {
        "Microsoft Edge": 2, "Safari": 2, "Samsung Browser": 1, "Firefox": 1}
    assert visitors(api, "visit:os==Mac") == 2
    assert visitors(api, "visit:browser==Microsoft Edge") == 2


@pytest.mark.parametrize(("pattern", "expected"), [
    # Plausible: "*" is a wildcard matching any characters, "**" the same
    ("/blog*", 4), ("/blog**", 4), ("/blog/*", 2), ("/blog/**", 2), ("*blog", 2), ("/blog", 1),
    ("**/b", 1),
])
def test_globs_match_any_characters(api: TestClient, pattern: str, expected: int) -> None:
    assert visitors(api, f"event:page=={pattern}") == expected


@pytest.mark.parametrize("params", [
    {"metrics": "conversion_rate"},
    {"metrics": "visitors,conversion_rate", "filters": "event:page==/"},
])
@pytest.mark.parametrize("endpoint", ["aggregate", "breakdown", "timeseries"])
def test_conversion_rate_without_a_goal_is_plausibles_400(api: TestClient, endpoint: str,
                                                         params: dict[str, str]) -> None:
    extra = {"property": "event:page"} if endpoint == "breakdown" else {}
    r = api.get(f"/api/v1/stats/{endpoint}", params={**DAY, **extra, **params})
    assert r.status_code == 400
    assert r.json() == {"error": "Metric `conversion_rate` can only be queried in a goal breakdown "
                                 "or with a goal filter"}


def test_conversion_rate_with_a_goal(api: TestClient) -> None:
    r = api.get("/api/v1/stats/aggregate", params={**DAY, "metrics": "visitors,conversion_rate",
                                                   "filters": "event:goal==Signup"})
    assert r.status_code == 200
    assert r.json()["results"]["visitors"]["value"] == 1
    assert r.json()["results"]["conversion_rate"]["value"] == round(100 / 11, 1)
    r = api.get("/api/v1/stats/breakdown", params={**DAY, "property": "event:goal",
                                                   "metrics": "visitors,conversion_rate"})
    assert r.status_code == 200


def test_region_and_city(api: TestClient) -> None:
    # stats-api-v1.md: visit:region is ISO 3166-2, visit:city a GeoNames id
    assert breakdown(api, "visit:city", filters="visit:country==US") == {4347778: 1}
    assert breakdown(api, "visit:region", filters="visit:country==US") == {"US-MD": 1}
    assert visitors(api, "visit:city==4347778") == 1
    assert visitors(api, "visit:region==US-MD") == 1
    assert breakdown(api, "visit:city_name", filters="visit:country==US") == {"Baltimore": 1}


@pytest.mark.parametrize("filters", ["visit:city~4347", "visit:city!=4347778", "visit:city==4347*",
                                     "visit:city!~99"])
def test_city_filters_of_every_kind_answer(api: TestClient, filters: str) -> None:
    r = api.get("/api/v1/stats/aggregate", params={**DAY, "filters": filters})
    assert r.status_code == 200, r.text


def test_timeseries_conversion_rate_with_a_goal_filter(api: TestClient) -> None:
    # stats-api-v1.md lists conversion_rate among the timeseries metrics
    r = api.get("/api/v1/stats/timeseries", params={**DAY, "interval": "date", "metrics": "conversion_rate,visitors",
                                                    "filters": "event:goal==Signup"})
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [{"date": "2026-11-20", "conversion_rate": round(100 / 11, 1), "visitors": 1}]}
