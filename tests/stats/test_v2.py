"""Stats API v2 (`POST /api/v2/query`) against a small hand-built dataset whose answers
are counted by hand, and in the shapes of Plausible's documented examples
(plausible/docs src/js/apiv2-examples)."""

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
from traceglider.stats.v2 import v2_router
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

SITE = "v2.example"
TOKEN = "v2-token"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DAY = ["2026-11-20", "2026-11-20"]


def at(hour: int, minute: int = 0, day: int = 20) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp() * 1_000_000)


def ev(eid: str, visitor: str, t: int, path: str = "/", type_: str = "pageview", **extra: Any) -> dict[str, Any]:
    return {"event_id": eid, "site": SITE, "type": type_, "name": extra.pop("name", type_), "received_at": t,
            "path": path, "hostname": SITE, "visitor_id": visitor, **extra}


ROWS = [
    # A: Germany, Berlin, desktop, from Google; two pages and a signup
    ev("a1", "A", at(9), "/", country="DE", region="DE-BE", city=2950159, city_name="Berlin",
       device_type="Desktop", source="Google", utm_medium="cpc", utm_source="google"),
    ev("a2", "A", at(9, 5), "/pricing", country="DE", region="DE-BE", city=2950159, city_name="Berlin",
       device_type="Desktop", source="Google"),
    ev("a3", "A", at(9, 6), "/pricing", "custom", name="Signup", props='{"plan":"pro"}'),
    # B: Estonia, Tallinn, mobile (an old stored name), direct; one page: a bounce
    ev("b1", "B", at(10), "/blog/one", country="EE", region="EE-37", city=588409, city_name="Tallinn",
       device_type="mobile"),
    # C: Germany, Munich, desktop, two visits (hours 10 and 14), signup in the second
    ev("c1", "C", at(10, 30), "/", country="DE", region="DE-BY", city=2867714, city_name="Munich",
       device_type="Desktop", source="Twitter"),
    ev("c2", "C", at(14), "/blog/two", country="DE", region="DE-BY", city=2867714, city_name="Munich",
       device_type="Desktop"),
    ev("c3", "C", at(14, 1), "/blog/two", "custom", name="Signup", props='{"plan":"free"}'),
    # D: the day after, outside DAY
    ev("d1", "D", at(9, day=21), "/", country="US", device_type="Desktop"),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("v2")
    storage = LocalStorage(root)
    write_rows(storage, ROWS, "batch-1")
    settings = load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "s" * 32})
    app = FastAPI()
    engine = AppEngine(settings, storage)
    app.include_router(stats_router(settings, engine))
    app.include_router(v2_router(settings, engine))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def query(api: TestClient, **body: Any) -> dict[str, Any]:
    r = api.post("/api/v2/query", json={"site_id": SITE, "date_range": DAY, **body})
    assert r.status_code == 200, r.text
    return r.json()


def results(api: TestClient, **body: Any) -> list[tuple[list[Any], list[Any]]]:
    return [(row["dimensions"], row["metrics"]) for row in query(api, **body)["results"]]


def test_simple_aggregate_in_the_documented_shape(api: TestClient) -> None:
    # aggregate-query.json / aggregate-response.json
    answer = query(api, metrics=["visitors", "events"])
    assert answer == {
        "results": [{"metrics": [3, 7], "dimensions": []}],
        "meta": {},
        "query": {"site_id": SITE, "metrics": ["visitors", "events"],
                  "date_range": ["2026-11-20T00:00:00+00:00", "2026-11-20T23:59:59+00:00"],
                  "filters": [], "dimensions": [], "order_by": [["visitors", "desc"]]},
    }


def test_every_metric_of_the_day(api: TestClient) -> None:
    [(_, values)] = results(api, metrics=["visitors", "visits", "pageviews", "events", "bounce_rate",
                                          "visit_duration", "views_per_visit"])
    # visits: A one (2 pages + signup), B one (bounce), C two (one bounce at 10:30, one with signup)
    assert values == [3, 4, 5, 7, 50, round((360 + 0 + 0 + 60) / 4), round(5 / 4, 2)]


def test_dimensions_country_and_city_names(api: TestClient) -> None:
    # country-and-city-query.json: names, with a filter on the names
    rows = results(api, metrics=["visitors", "pageviews"], dimensions=["visit:country_name", "visit:city_name"],
                   filters=[["is_not", "visit:country_name", [""]]])
    # ties in the first metric are ordered by the dimensions
    assert rows == [(["Estonia", "Tallinn"], [1, 1]), (["Germany", "Berlin"], [1, 2]), (["Germany", "Munich"], [1, 2])]
    assert results(api, metrics=["visitors"], dimensions=["visit:city"]) == [
        ([588409], [1]), ([2867714], [1]), ([2950159], [1])]
    assert results(api, metrics=["visitors"], dimensions=["visit:region_name"],
                   filters=[["is", "visit:country_name", ["germany"], {"case_sensitive": False}]]) == [
        (["Bayern"], [1]), (["Berlin"], [1])]


def test_devices_read_as_plausibles_names(api: TestClient) -> None:
    assert results(api, metrics=["visitors"], dimensions=["visit:device"]) == [
        (["Desktop"], [2]), (["Mobile"], [1])]
    assert results(api, metrics=["visitors"], filters=[["is", "visit:device", ["Mobile"]]]) == [([], [1])]


def test_nested_filters(api: TestClient) -> None:
    # visitors from Germany who saw a blog page, or anyone on a page matching ^/pricing$
    filters = [["or", [["and", [["is", "visit:country", ["DE"]], ["contains", "event:page", ["blog"]]]],
                       ["matches", "event:page", ["^/pricing$"]]]]]
    assert results(api, metrics=["visitors"], filters=filters) == [([], [2])]  # C and A
    assert results(api, metrics=["visitors"], filters=[["not", ["is", "visit:country", ["DE"]]]]) == [([], [1])]
    assert results(api, metrics=["visitors"], filters=[["contains", "event:page", ["BLOG"],
                                                        {"case_sensitive": False}]]) == [([], [2])]
    assert results(api, metrics=["visitors"], filters=[["contains", "event:page", ["BLOG"]]]) == [([], [0])]
    assert results(api, metrics=["visitors"], filters=[["matches_not", "event:page", ["^/blog"]]]) == [([], [2])]


def test_timeseries_by_hour_with_time_labels(api: TestClient) -> None:
    # time-labels-query.json / time-labels-response.json
    answer = query(api, metrics=["visitors"], dimensions=["time:hour"], include={"time_labels": True})
    assert [(r["dimensions"], r["metrics"]) for r in answer["results"]] == [
        (["2026-11-20 09:00:00"], [1]), (["2026-11-20 10:00:00"], [2]), (["2026-11-20 14:00:00"], [1])]
    assert answer["meta"]["time_labels"] == [f"2026-11-20 {h:02}:00:00" for h in range(24)]
    assert answer["query"]["order_by"] == [["time:hour", "asc"], ["visitors", "desc"]]
    assert answer["query"]["include"] == {"time_labels": True}
    # `time` is the bucket the range suits: hours for a day, days for a week
    assert query(api, metrics=["visitors"], dimensions=["time"])["query"]["dimensions"] == ["time:hour"]
    week = query(api, metrics=["visitors"], dimensions=["time"], date_range=["2026-11-16", "2026-11-22"])
    assert [(r["dimensions"], r["metrics"]) for r in week["results"]] == [(["2026-11-20"], [3]), (["2026-11-21"], [1])]


def test_custom_properties_and_goals(api: TestClient) -> None:
    # custom-properties-query.json: a time dimension and a property
    assert results(api, metrics=["visitors"], dimensions=["time:day", "event:props:plan"],
                   filters=[["is", "event:goal", ["Signup"]]]) == [
        (["2026-11-20", "free"], [1]), (["2026-11-20", "pro"], [1])]
    rows = results(api, metrics=["visitors", "events", "conversion_rate"], dimensions=["event:goal"])
    assert rows == [(["Signup"], [2, 2, round(100 * 2 / 3, 2)])]
    by_country = results(api, metrics=["visitors", "group_conversion_rate", "conversion_rate"],
                         dimensions=["visit:country", "event:goal"])
    assert by_country == [(["DE", "Signup"], [2, 100.0, round(100 * 2 / 3, 2)])]
    assert results(api, metrics=["visitors", "percentage"], dimensions=["visit:country"]) == [
        (["DE"], [2, round(200 / 3, 2)]), (["EE"], [1, round(100 / 3, 2)])]


def test_pagination_and_total_rows(api: TestClient) -> None:
    # pagination-query.json: offset 1, limit 3, total_rows
    answer = query(api, metrics=["visitors"], dimensions=["event:page"], include={"total_rows": True},
                   pagination={"offset": 1, "limit": 2}, order_by=[["visitors", "desc"], ["event:page", "asc"]])
    assert [(r["dimensions"], r["metrics"]) for r in answer["results"]] == [(["/blog/one"], [1]), (["/blog/two"], [1])]
    assert answer["meta"] == {"total_rows": 4}
    assert answer["query"]["pagination"] == {"offset": 1, "limit": 2}


def test_order_by(api: TestClient) -> None:
    rows = results(api, metrics=["visitors", "pageviews"], dimensions=["event:page"],
                   order_by=[["pageviews", "desc"], ["event:page", "desc"]])
    assert rows == [(["/"], [2, 2]), (["/pricing"], [1, 1]), (["/blog/two"], [1, 1]), (["/blog/one"], [1, 1])]


def test_imports_and_revenue_are_answered_as_plausible_answers_without_them(api: TestClient) -> None:
    answer = query(api, metrics=["visitors", "total_revenue"], include={"imports": True},
                   filters=[["is", "event:goal", ["Signup"]]])
    assert answer["results"] == [{"metrics": [2, None], "dimensions": []}]
    assert answer["meta"]["imports_included"] is False
    assert answer["meta"]["metric_warnings"]["total_revenue"]["code"] == "no_revenue_goals_matching"


@pytest.mark.parametrize(("body", "message"), [
    ({"metrics": ["nope"]}, "Unknown metric '\"nope\"'."),
    ({"metrics": ["conversion_rate"]}, "Metric `conversion_rate` can only be queried with event:goal filters"),
    ({"metrics": ["bounce_rate"], "dimensions": ["event:page"]}, "Session metric(s) `bounce_rate` cannot be"),
    ({"metrics": ["views_per_visit"], "dimensions": ["visit:source"]}, "cannot be queried with `dimensions`"),
    ({"metrics": ["scroll_depth"]}, "can only be queried with event:page filters or dimensions"),
    ({"metrics": ["visitors"], "date_range": "8x"}, "Invalid date_range \"8x\""),
    ({"metrics": ["visitors"], "dimensions": ["visit:nope"]}, "Invalid dimensions"),
    ({"metrics": ["visitors"], "filters": [["is", "visit:nope", ["x"]]]}, "Invalid filter"),
    ({"metrics": ["visitors"], "filters": [["has_done", ["is", "event:name", ["x"]]]]}, "behavioral filters"),
    ({"metrics": ["visitors"], "filters": [["equals", "event:page", ["/"]]]}, "Unknown operator for filter"),
    ({"metrics": ["visitors"], "filters": [["is", "visit:country", ["Germany"]]]}, "2-letter country code"),
    ({"metrics": ["visitors"], "filters": [["matches", "event:page", ["("]]]}, "not a regular expression"),
    ({"metrics": ["visitors"], "filters": [["or", [["is", "event:goal", ["Signup"]]]]]}, "only be filtered at the top"),
    ({"metrics": ["visitors"], "order_by": [["pageviews", "desc"]]}, "Entry is not a queried metric or dimension"),
    ({"metrics": ["visitors"], "include": {"time_labels": True}}, "requires a time dimension"),
    ({"metrics": ["visitors"], "include": {"comparisons": {}}}, "Invalid include"),
    ({"metrics": ["visitors"], "pagination": {"limit": 0}}, "pagination/limit"),
    ({"metrics": ["visitors"], "surprise": 1}, "unknown key 'surprise'"),
])
def test_bad_queries_are_400_with_plausibles_message(api: TestClient, body: dict[str, Any], message: str) -> None:
    r = api.post("/api/v2/query", json={"site_id": SITE, "date_range": DAY, **body})
    assert r.status_code == 400 and message in r.json()["error"], r.text


def test_missing_fields_and_auth(api: TestClient) -> None:
    r = api.post("/api/v2/query", json={"metrics": ["visitors"], "date_range": "7d"})
    assert r.status_code == 400 and "site_id" in r.json()["error"]
    r = api.post("/api/v2/query", json={"site_id": SITE, "metrics": ["visitors"]})
    assert r.status_code == 400 and "date_range" in r.json()["error"]
    r = api.post("/api/v2/query", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = api.post("/api/v2/query", json={}, headers={"Authorization": ""})
    assert r.status_code == 401


@pytest.fixture(scope="module")
def demo(demo_root: Path) -> Iterator[TestClient]:
    from tests.stats.conftest import TOKEN as DEMO_TOKEN

    settings = load(env={"TG_STORAGE": str(demo_root), "TG_API_TOKEN": DEMO_TOKEN, "TG_SECRET": "x" * 32})
    storage = LocalStorage(demo_root)
    app = FastAPI()
    engine = AppEngine(settings, storage)
    app.include_router(stats_router(settings, engine))
    app.include_router(v2_router(settings, engine))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {DEMO_TOKEN}"
        yield client


def test_v2_agrees_with_v1_on_the_demo_data(demo: TestClient) -> None:
    from tests.stats.conftest import SITE as DEMO

    v1 = {"site_id": DEMO, "period": "custom", "date": "2025-10-29,2025-11-27"}
    v2 = {"site_id": DEMO, "date_range": ["2025-10-29", "2025-11-27"]}
    metrics = ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration"]
    one = demo.get("/api/v1/stats/aggregate", params={**v1, "metrics": ",".join(metrics)}).json()["results"]
    two = demo.post("/api/v2/query", json={**v2, "metrics": metrics}).json()["results"]
    assert two == [{"metrics": [one[m]["value"] for m in metrics], "dimensions": []}]
    sources = demo.get("/api/v1/stats/breakdown", params={**v1, "property": "visit:source", "limit": "1000",
                                                          "metrics": "visitors,visits"}).json()["results"]
    by_source = demo.post("/api/v2/query", json={**v2, "metrics": ["visitors", "visits"],
                                                 "dimensions": ["visit:source"]}).json()["results"]
    assert {r["dimensions"][0]: r["metrics"] for r in by_source} == {
        r["source"]: [r["visitors"], r["visits"]] for r in sources}
    goals = demo.get("/api/v1/stats/breakdown", params={**v1, "property": "event:goal"}).json()["results"]
    v2_goals = demo.post("/api/v2/query", json={**v2, "metrics": ["visitors", "events"],
                                                "dimensions": ["event:goal"]}).json()["results"]
    assert {r["dimensions"][0]: r["metrics"] for r in v2_goals} == {
        g["goal"]: [g["visitors"], g["events"]] for g in goals if g["events"]}


@pytest.mark.parametrize(("filters", "expected"), [
    ([["is", "visit:city", [2950159, 588409]]], 2),  # GeoNames ids as numbers, as Plausible takes them
    ([["is", "visit:city", ["2950159"]]], 1),
    ([["contains", "visit:city", ["2950"]]], 1),
    ([["is_not", "visit:city", [2950159]]], 2),
    ([["matches", "visit:city_name", ["^T"]]], 1),
])
def test_city_filters(api: TestClient, filters: list[Any], expected: int) -> None:
    assert results(api, metrics=["visitors"], filters=filters) == [([], [expected])]


@pytest.mark.parametrize("pattern", ["(?=a)", "(?<!b)c", r"(a)\1", "(?>a)"])
def test_regular_expressions_re2_lacks_are_400(api: TestClient, pattern: str) -> None:
    r = api.post("/api/v2/query", json={"site_id": SITE, "date_range": DAY, "metrics": ["visitors"],
                                        "filters": [["matches", "event:page", [pattern]]]})
    assert r.status_code == 400 and "regular expression" in r.json()["error"], r.text


def test_a_value_duckdb_refuses_is_400_not_500(api: TestClient) -> None:
    # \Z is Python's and not RE2's: the parser lets it through, DuckDB refuses it
    r = api.post("/api/v2/query", json={"site_id": SITE, "date_range": DAY, "metrics": ["visitors"],
                                        "filters": [["matches", "event:page", ["blog\\Z"]]]})
    assert r.status_code == 400 and "Invalid filter value" in r.json()["error"], r.text


@pytest.mark.parametrize("body", [
    {"date_range": ["9999-12-31", "9999-12-31"]},
    {"date_range": ["0001-01-01", "0001-01-02"]},
    {"date_range": ["9999-12-31T00:00:00+00:00", "9999-12-31T23:59:59+00:00"]},
    {"date_range": "month", "date": "9999-12-15"},
    {"date_range": "7d", "date": "0001-01-03"},
])
def test_dates_out_of_range_are_400(api: TestClient, body: dict[str, Any]) -> None:
    r = api.post("/api/v2/query", json={"site_id": SITE, "metrics": ["visitors"], **body})
    assert r.status_code == 400 and "Invalid date" in r.json()["error"], r.text


def test_the_site_id_is_normalised_as_everywhere_else(api: TestClient) -> None:
    # v1, the sites API and the dashboard read `www.V2.Example` as `v2.example`: v2 too
    body = {"metrics": ["visitors"], "date_range": DAY}
    plain = api.post("/api/v2/query", json={"site_id": SITE, **body})
    spelled = api.post("/api/v2/query", json={"site_id": " www." + SITE.upper(), **body})
    assert plain.status_code == spelled.status_code == 200
    assert spelled.json()["results"] == plain.json()["results"] and plain.json()["results"][0]["metrics"][0] > 0
    v1 = api.get("/api/v1/stats/aggregate", params={"site_id": "www." + SITE.upper(), "period": "custom",
                                                    "date": ",".join(DAY), "metrics": "visitors"})
    assert v1.json()["results"]["visitors"]["value"] == plain.json()["results"][0]["metrics"][0]
    for bad in ("x/../..", "exa mple.com"):
        refused = api.post("/api/v2/query", json={"site_id": bad, **body})
        assert refused.status_code == 400 and refused.json()["error"] == "Invalid site ID"
