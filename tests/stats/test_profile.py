"""Web Vitals, JavaScript errors, environment and the last 30 minutes
(`stats/profile.py`) against hand-computed answers, filters included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from traceglider.errors import BadRequest
from traceglider.stats import profile
from traceglider.stats import query as Q
from traceglider.stats.engine import Engine
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

SITE = "p.example"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def us(hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime(2026, 11, 22, hh, mm, ss, tzinfo=UTC).timestamp() * 1_000_000)


def ev(eid: str, visitor: str, t: int, path: str, type_: str = "pageview", **extra: object) -> dict:
    return {"event_id": eid, "site": SITE, "type": type_, "name": extra.pop("name", type_), "received_at": t,
            "path": path, "hostname": SITE, "visitor_id": visitor, **extra}


def vital(eid: str, visitor: str, t: int, path: str, metric: str, value: float, **extra: object) -> dict:
    return ev(eid, visitor, t, path, "vital", name="vital", metric_name=metric, metric_value=value, **extra)


def error(eid: str, visitor: str, t: int, path: str, message: str) -> dict:
    return ev(eid, visitor, t, path, "error", name="JS Error", props=json.dumps({"message": message}))


ROWS = [
    ev("a1", "A", us(10, 0), "/", country="DE", screen_width=390, language="de-DE", timezone="Europe/Berlin"),
    ev("b1", "B", us(10, 1), "/", country="FR", screen_width=1920, language="fr-FR", timezone="Europe/Paris"),
    ev("c1", "C", us(10, 2), "/shop", country="FR", screen_width=800, language="fr-FR", timezone="Europe/Paris"),
    # LCP on /: 1000, 2000, 3000, 5000 -> p75 3500; 2 good, 1 needs improvement, 1 poor
    vital("v1", "A", us(10, 0, 5), "/", "LCP", 1000.0), vital("v2", "B", us(10, 1, 5), "/", "LCP", 2000.0),
    vital("v3", "A", us(10, 0, 6), "/", "LCP", 3000.0), vital("v4", "B", us(10, 1, 6), "/", "LCP", 5000.0),
    vital("v4", "B", us(10, 1, 6), "/", "LCP", 5000.0),  # the same event stored twice (a retry): once
    vital("v5", "C", us(10, 2, 5), "/shop", "LCP", 2500.0),  # 2500 is good: the threshold is inclusive
    vital("v6", "C", us(10, 2, 6), "/shop", "CLS", 0.26),
    error("e1", "A", us(10, 0, 7), "/", "boom"), error("e2", "A", us(10, 0, 8), "/", "boom"),
    error("e3", "C", us(10, 2, 7), "/shop", "boom"), error("e4", "C", us(10, 2, 8), "/shop", "<b>x</b>"),
    ev("x1", "C", us(11, 50), "/shop"),  # in the last 30 minutes
    ev("x2", "A", us(11, 58), "/", "engagement", name="engagement"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    storage = LocalStorage(tmp_path_factory.mktemp("profile"))
    write_rows(storage, ROWS, "p")
    return Engine(storage, clock=NOW.timestamp)


def q(filters: str = "", period: str = "day") -> Q.Query:
    return Q.parse({"site_id": SITE, "period": period, "filters": filters}, NOW)


def test_vitals_give_the_75th_percentile_and_googles_shares_per_metric_and_page(engine: Engine) -> None:
    out = profile.vitals(engine, q(), "LCP")
    lcp = next(m for m in out["metrics"] if m["metric"] == "LCP")
    # five samples (v4 stored twice is one): 1000, 2000, 2500, 3000, 5000
    assert lcp == {"metric": "LCP", "p75": 3000.0, "rating": "ni", "good": 60.0, "ni": 20.0, "poor": 20.0,
                   "samples": 5}
    cls = next(m for m in out["metrics"] if m["metric"] == "CLS")
    assert cls["p75"] == 0.26 and cls["rating"] == "poor" and cls["poor"] == 100.0
    assert next(m for m in out["metrics"] if m["metric"] == "INP") == {
        "metric": "INP", "p75": None, "rating": None, "good": 0.0, "ni": 0.0, "poor": 0.0, "samples": 0}
    assert out["pages"] == [
        {"page": "/", "metric": "LCP", "p75": 3500.0, "rating": "ni", "good": 50.0, "ni": 25.0, "poor": 25.0,
         "samples": 4},
        {"page": "/shop", "metric": "LCP", "p75": 2500.0, "rating": "good", "good": 100.0, "ni": 0.0, "poor": 0.0,
         "samples": 1},
    ]


@pytest.mark.parametrize(("filters", "samples"), [
    ("event:page==/shop", 1),  # the vitals of that page
    ("visit:country==DE", 2),  # of visitors from Germany (A)
    ("visit:country!=DE;event:page==/", 2),  # B on /
    ("event:goal==Visit /shop", 1),  # visitors who converted (C)
])
def test_vitals_follow_the_dashboard_filters(engine: Engine, filters: str, samples: int) -> None:
    lcp = next(m for m in profile.vitals(engine, q(filters))["metrics"] if m["metric"] == "LCP")
    assert lcp["samples"] == samples


def test_errors_by_message_and_by_page(engine: Engine) -> None:
    out = profile.errors(engine, q())["results"]
    assert out == [
        {"message": "boom", "count": 3, "visitors": 2, "pages": 2, "last_seen": "2026-11-22T10:02:07"},
        {"message": "<b>x</b>", "count": 1, "visitors": 1, "pages": 1, "last_seen": "2026-11-22T10:02:08"},
    ]
    pages = profile.errors(engine, q(), message="boom", by="page")["results"]
    assert [(p["page"], p["count"], p["visitors"]) for p in pages] == [("/", 2, 1), ("/shop", 1, 1)]
    assert profile.errors(engine, q("visit:country==FR"))["results"][0]["count"] == 1


def test_environment_by_screen_class_language_and_time_zone(engine: Engine) -> None:
    screens = profile.environment(engine, q(), "screen")["results"]
    assert sorted((r["screen"], r["visitors"]) for r in screens) == [
        ("(none)", 1), ("Desktop", 1), ("Mobile", 1), ("Tablet", 1)]  # x1 has no screen width
    assert profile.environment(engine, q(), "language")["results"][0] == {"language": "fr-FR", "visitors": 2}
    assert profile.environment(engine, q("visit:country==DE"), "timezone")["results"] == [
        {"timezone": "Europe/Berlin", "visitors": 1}]


def test_live_counts_each_of_the_last_30_minutes(engine: Engine) -> None:
    minutes = profile.live(engine, q(period="realtime"), NOW.replace(tzinfo=None))["minutes"]
    assert len(minutes) == 30 and minutes[-1]["date"] == "2026-11-22 12:00:00"
    assert {m["date"][11:16]: m["visitors"] for m in minutes if m["visitors"]} == {"11:50": 1, "11:58": 1}


@pytest.mark.parametrize(("call", "message"), [
    (lambda e: profile.vitals(e, q(), "XYZ"), "metric: one of LCP"),
    (lambda e: profile.environment(e, q(), "os"), "group: one of screen"),
    (lambda e: profile.errors(e, q(), by="visitor"), "by: message or page"),
])
def test_bad_parameters_are_a_400(engine: Engine, call: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        call(engine)  # type: ignore[operator]


def test_a_site_without_files_answers_empty(engine: Engine) -> None:
    empty = Q.parse({"site_id": "none.example", "period": "day"}, NOW)
    assert profile.errors(engine, empty) == {"results": []}
    assert all(m["samples"] == 0 for m in profile.vitals(engine, empty)["metrics"])


def test_without_configured_goals_the_measurements_are_never_goals(engine: Engine) -> None:
    from traceglider.stats import service

    # the period holds vitals, errors and an engagement, and no custom event
    assert service.goal_rows(engine, q(), []) == []
