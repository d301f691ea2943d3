"""The stats API answers in the shapes of Plausible's documented examples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers import free_port
from tests.stats.conftest import SITE, TOKEN
from traceglider import demo_data
from traceglider.config import load
from traceglider.stats.api import AppEngine, stats_router
from traceglider.stats.export import escape_cell

RANGE = {"site_id": SITE, "period": "30d", "date": "2025-11-27"}


def test_aggregate_shape(client: TestClient) -> None:
    params = {**RANGE, "metrics": "visitors,pageviews,bounce_rate,visit_duration", "compare": "previous_period"}
    r = client.get("/api/v1/stats/aggregate", params=params)
    assert r.status_code == 200
    results = r.json()["results"]
    assert set(results) == {"visitors", "pageviews", "bounce_rate", "visit_duration"}
    assert all(set(v) == {"value", "change"} for v in results.values())
    assert results["visitors"]["value"] > 100


def test_timeseries_shape(client: TestClient) -> None:
    r = client.get("/api/v1/stats/timeseries", params={**RANGE, "period": "7d"})
    rows = r.json()["results"]
    assert len(rows) == 7 and set(rows[0]) == {"date", "visitors"} and rows[0]["date"] == "2025-11-21"


def test_timeseries_by_month(client: TestClient) -> None:
    params = {**RANGE, "period": "6mo", "interval": "month"}
    rows = client.get("/api/v1/stats/timeseries", params=params).json()["results"]
    assert [r["date"] for r in rows][-2:] == ["2025-10-01", "2025-11-01"]


@pytest.mark.parametrize(("prop", "key"), [("visit:source", "source"), ("event:page", "page"),
                                           ("visit:browser", "browser"), ("visit:device", "device"),
                                           ("visit:utm_campaign", "utm_campaign")])
def test_breakdown_shape(client: TestClient, prop: str, key: str) -> None:
    params = {**RANGE, "property": prop, "metrics": "visitors,bounce_rate", "limit": "5"}
    r = client.get("/api/v1/stats/breakdown", params=params)
    rows = r.json()["results"]
    assert 0 < len(rows) <= 5 and set(rows[0]) == {key, "visitors", "bounce_rate"}
    assert [x["visitors"] for x in rows] == sorted((x["visitors"] for x in rows), reverse=True)


def test_breakdown_pages_with_page_metrics(client: TestClient) -> None:
    params = {**RANGE, "property": "event:page", "metrics": "visitors,scroll_depth,time_on_page",
              "filters": "visit:country==US|DE"}
    rows = client.get("/api/v1/stats/breakdown", params=params).json()["results"]
    assert rows[0]["page"] == "/" and 0 < rows[0]["scroll_depth"] <= 100 and rows[0]["time_on_page"] > 0


def test_goal_breakdown_and_conversion_rate(client: TestClient) -> None:
    rows = client.get("/api/v1/stats/breakdown", params={**RANGE, "property": "event:goal"}).json()["results"]
    goals = {r["goal"]: r for r in rows}
    assert "Signup" in goals and 0 < goals["Signup"]["conversion_rate"] < 100


def test_realtime_is_a_number(client: TestClient) -> None:
    r = client.get("/api/v1/stats/realtime/visitors", params={"site_id": SITE})
    assert r.status_code == 200 and isinstance(r.json(), int)


@pytest.mark.parametrize(("path", "params", "fragment"), [
    ("aggregate", {"metrics": "nope"}, "The metric `nope` is not recognized"),
    ("breakdown", {}, "The `property` parameter is required"),
    ("aggregate", {"filters": "event:bogus==1"}, "Invalid property"),
    ("aggregate", {"period": "forever"}, "invalid period"),
])
def test_errors_are_400_with_a_message(client: TestClient, path: str, params: dict, fragment: str) -> None:
    r = client.get(f"/api/v1/stats/{path}", params={**RANGE, **params})
    assert r.status_code == 400 and fragment in r.json()["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc"])
def test_without_a_valid_token_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {"Authorization": ""}
    r = client.get("/api/v1/stats/aggregate", params=RANGE, headers=headers)
    assert r.status_code == 401 and "API key" in r.json()["error"]


def test_sql_injection_in_values_is_just_a_value(client: TestClient) -> None:
    r = client.get("/api/v1/stats/aggregate", params={**RANGE, "filters": "event:page==/' OR 1=1 --"})
    assert r.status_code == 200 and r.json()["results"]["visitors"]["value"] == 0


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
def test_export(client: TestClient, fmt: str) -> None:
    r = client.get("/api/v1/export", params={"site_id": SITE, "date": "2025-11-20", "format": fmt})
    assert r.status_code == 200 and len(r.content) > 1000


@pytest.mark.parametrize(("cell", "out"), [("=1+1", "'=1+1"), ("+x", "'+x"), ("-2", "'-2"), ("@a", "'@a"),
                                           ("\tx", "'\tx"), ("plain", "plain"), (3, 3)])
def test_csv_formula_escaping(cell: object, out: object) -> None:
    assert escape_cell(cell) == out


@pytest.fixture(scope="module")
def s3_client(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from moto.server import ThreadedMotoServer

    from traceglider.storage.s3 import S3Storage

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch_module.setenv(k, v)
    storage = S3Storage("s3://tg-stats/data", endpoint_url=endpoint)
    storage.client.create_bucket(Bucket="tg-stats")
    demo_data.generate(storage, SITE, 3000, days=3, seed=3, now=1_764_244_800.0)
    settings = load(env={"TG_STORAGE": "s3://tg-stats/data", "TG_S3_ENDPOINT_URL": endpoint, "TG_API_TOKEN": TOKEN})
    app = FastAPI()
    app.include_router(stats_router(settings, AppEngine(settings, storage)))
    try:
        with TestClient(app) as c:
            c.headers["Authorization"] = f"Bearer {TOKEN}"
            yield c
    finally:
        server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_s3_through_httpfs_same_code_path(s3_client: TestClient) -> None:
    params = {"site_id": SITE, "period": "7d", "date": "2025-11-27", "metrics": "visitors,visits,pageviews"}
    agg = s3_client.get("/api/v1/stats/aggregate", params=params)
    assert agg.status_code == 200, agg.text
    assert agg.json()["results"]["pageviews"]["value"] > 100
    rows = s3_client.get("/api/v1/stats/breakdown", params={**params, "property": "visit:country"}).json()["results"]
    assert rows and "country" in rows[0]


@pytest.mark.parametrize(("prop", "key"), [("visit:screen", "screen"), ("visit:language", "language"),
                                         ("visit:timezone", "timezone")])
def test_screen_and_language_break_down_and_filter_alike(client: TestClient, prop: str, key: str) -> None:
    """The dashboard's environment rows filter by the visit's screen class and language:
    each row's visitors are what the filter on its value counts."""
    base = {"site_id": SITE, "period": "30d", "date": "2025-11-27"}
    rows = client.get("/api/v1/stats/breakdown", params={**base, "property": prop, "limit": "5"}).json()["results"]
    assert len(rows) >= 2
    for row in rows[:3]:
        got = client.get("/api/v1/stats/aggregate", params={**base, "metrics": "visitors",
                                                             "filters": f"{prop}=={row[key]}"})
        assert got.status_code == 200, got.text
        assert got.json()["results"]["visitors"]["value"] == row["visitors"]
