"""Metric definitions against hand-computed answers on a hand-built dataset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from traceglider.stats import query as Q
from traceglider.stats import service
from traceglider.stats.engine import Engine
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

SITE = "t.example"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def us(day: int, hh: int, mm: int) -> int:
    return int(datetime(2026, 11, day, hh, mm, tzinfo=UTC).timestamp() * 1_000_000)


def ev(eid: str, visitor: str, t: int, path: str, type_: str = "pageview", **extra: object) -> dict:
    row = {"event_id": eid, "site": SITE, "type": type_, "name": extra.pop("name", type_),
           "received_at": t, "path": path, "hostname": SITE, "visitor_id": visitor}
    row.update(extra)
    return row


ROWS = [
    # A: two visits on the 20th; the first has two pages, the second bounces
    ev("a1", "A", us(20, 10, 0), "/", source="Google", country="DE", device_type="desktop"),
    ev("a2", "A", us(20, 10, 5), "/pricing", country="DE", device_type="desktop"),
    ev("a3", "A", us(20, 12, 0), "/blog/x", source="Hacker News", country="DE", device_type="desktop"),
    # B: one visit across midnight
    ev("b1", "B", us(20, 23, 50), "/", country="FR", device_type="mobile"),
    ev("b2", "B", us(21, 0, 10), "/pricing", country="FR", device_type="mobile"),
    ev("b3", "B", us(21, 0, 12), "/pricing", "custom", name="Signup", props='{"plan":"pro"}',
       country="FR", device_type="mobile"),
    # C: a bounce whose event was written twice (a retry)
    ev("c1", "C", us(20, 15, 0), "/blog/y", country="DE", device_type="desktop"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    storage = LocalStorage(tmp_path_factory.mktemp("metrics"))
    write_rows(storage, ROWS, "batch-1")
    write_rows(storage, [ROWS[-1]], "batch-retry")
    return Engine(storage, clock=NOW.timestamp)


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    """The hand-built dataset, not compacted, for one test."""
    local = LocalStorage(tmp_path)
    write_rows(local, ROWS, "batch-1")
    return local


def table_names(engine: Engine) -> set[str]:
    return {r[0] for r in engine.fetch("SELECT table_name FROM duckdb_tables()")}


def agg(engine: Engine, **params: str) -> dict:
    q = Q.parse({"site_id": SITE, "metrics": "visitors,visits,pageviews,events,bounce_rate,"
                 "visit_duration,views_per_visit", **params}, NOW)
    return {k: v["value"] for k, v in service.aggregate(engine, q)["results"].items()}


def test_a_visitor_with_two_visits_a_bounce_and_a_visit_over_midnight(engine: Engine) -> None:
    got = agg(engine, period="custom", date="2026-11-20,2026-11-21")
    # visits: A1, A2, B, C; bounces: A2, C; durations 300, 0, 1320, 0
    assert got == {"visitors": 3, "visits": 4, "pageviews": 6, "events": 7, "bounce_rate": 50,
                   "visit_duration": 405, "views_per_visit": 1.5}


def test_a_visit_belongs_to_the_day_it_started(engine: Engine) -> None:
    day2 = agg(engine, period="day", date="2026-11-21")
    assert day2["visits"] == 0 and day2["pageviews"] == 1 and day2["visitors"] == 1
    day1 = agg(engine, period="day", date="2026-11-20")
    assert day1["visits"] == 4 and day1["visit_duration"] == 405  # B's whole visit


def test_duplicate_event_ids_count_once(engine: Engine) -> None:
    got = agg(engine, period="day", date="2026-11-20", filters="event:page==/blog/y")
    assert got["pageviews"] == 1 and got["visits"] == 1


def test_recomputed_visits_match_independent_sql(engine: Engine) -> None:
    import duckdb

    files = engine.uris([k for k, _ in engine.files(SITE, datetime(2026, 11, 19), datetime(2026, 11, 23))])
    con = duckdb.connect()
    (visits,) = con.execute(
        """WITH d AS (SELECT DISTINCT event_id, visitor_id, epoch(received_at) AS t FROM read_parquet($f)),
           g AS (SELECT visitor_id, t - lag(t) OVER (PARTITION BY visitor_id ORDER BY t) AS gap FROM d)
           SELECT count(*) FILTER (WHERE gap IS NULL OR gap > 1800) FROM g""", {"f": files}).fetchone()
    assert agg(engine, period="custom", date="2026-11-19,2026-11-22")["visits"] == visits == 4


@pytest.mark.parametrize(("prop", "key", "expected"), [
    ("event:page", "page", [{"page": "/", "visitors": 2}, {"page": "/pricing", "visitors": 2},
                            {"page": "/blog/x", "visitors": 1}, {"page": "/blog/y", "visitors": 1}]),
    ("visit:source", "source", [{"source": "Direct / None", "visitors": 2}, {"source": "Google", "visitors": 1},
                                {"source": "Hacker News", "visitors": 1}]),
    ("visit:country", "country", [{"country": "DE", "visitors": 2}, {"country": "FR", "visitors": 1}]),
    ("event:props:plan", "plan", [{"plan": "pro", "visitors": 1}]),
])
def test_breakdowns(engine: Engine, prop: str, key: str, expected: list) -> None:
    params = {"site_id": SITE, "period": "custom", "date": "2026-11-20,2026-11-21", "property": prop}
    if prop.startswith("event:props"):
        params["filters"] = "event:name==Signup"
    got = service.breakdown(engine, Q.parse(params, NOW))["results"]
    assert got == expected


def test_visit_filter_restricts_events_to_those_visits(engine: Engine) -> None:
    got = agg(engine, period="day", date="2026-11-20", filters="visit:source==Google")
    assert got["visits"] == 1 and got["pageviews"] == 2 and got["visitors"] == 1


def test_funnel_and_navigation(engine: Engine) -> None:
    q = Q.parse({"site_id": SITE, "period": "custom", "date": "2026-11-20,2026-11-21"}, NOW)
    f = service.funnel(engine, q, ["Visit /", "Visit /pricing", "Signup"])
    assert [s["visitors"] for s in f["steps"]] == [2, 2, 1]
    nav = service.navigation(engine, q, "/pricing")
    assert nav["previous"] == [{"page": "/", "pageviews": 2}]
    assert {n["page"] for n in nav["next"]} == {"(exit)", "/pricing"} or nav["next"][0]["page"] == "(exit)"


def test_timeseries_has_every_bucket(engine: Engine) -> None:
    q = Q.parse({"site_id": SITE, "period": "7d", "date": "2026-11-21", "metrics": "visitors,visits"}, NOW)
    res = service.timeseries(engine, q)["results"]
    assert len(res) == 7 and res[-2] == {"date": "2026-11-20", "visitors": 3, "visits": 4}


@pytest.mark.parametrize("compacted", ["all", "day before only"])
def test_compacted_partitions_give_the_same_answers(tmp_path, compacted: str) -> None:
    from traceglider.storage.compact import compact

    storage = LocalStorage(tmp_path)
    write_rows(storage, ROWS, "batch-1")
    write_rows(storage, [ROWS[-1]], "batch-retry")
    # "day before only": the 21st stays raw, so B's visit continues from stored ids
    compact(storage, date=None if compacted == "all" else "2026-11-20")
    if compacted != "all":
        write_rows(storage, [ev("b4", "B", us(21, 0, 20), "/docs")], "batch-2")
    eng = Engine(storage, clock=NOW.timestamp)
    plan = eng.plan(SITE, datetime(2026, 11, 19, 23, 30), datetime(2026, 11, 22, 0, 30))
    assert bool(plan.slow) == (compacted != "all") and plan.fast
    got = agg(eng, period="custom", date="2026-11-20,2026-11-21")
    pageviews = 6 if compacted == "all" else 7
    assert got["visits"] == 4 and got["visitors"] == 3 and got["pageviews"] == pageviews
    assert agg(eng, period="day", date="2026-11-21")["visits"] == 0  # B's visit began on the 20th
    eng.close()


def test_late_data_for_a_compacted_day_is_counted_until_compaction_catches_up(storage: LocalStorage) -> None:
    from traceglider.storage.compact import compact

    compact(storage)
    write_rows(storage, [ev("b0", "B", us(20, 23, 55), "/late")], "late")  # inside B's visit
    eng = Engine(storage, clock=NOW.timestamp)
    plan = eng.plan(SITE, datetime(2026, 11, 19, 23, 30), datetime(2026, 11, 22, 0, 30))
    assert len(plan.slow) == 3  # the 20th (two files) and the 21st, whose visits continue from it
    expected = {"visitors": 3, "visits": 4, "pageviews": 7, "events": 8, "bounce_rate": 50,
                "visit_duration": 405, "views_per_visit": 1.75}
    assert agg(eng, period="custom", date="2026-11-20,2026-11-21") == expected
    eng.close()
    compact(storage)
    eng = Engine(storage, clock=NOW.timestamp)
    assert not eng.plan(SITE, datetime(2026, 11, 19, 23, 30), datetime(2026, 11, 22, 0, 30)).slow
    assert agg(eng, period="custom", date="2026-11-20,2026-11-21") == expected
    eng.close()


def test_cached_answers_change_when_new_files_land(tmp_path, monkeypatch) -> None:
    from traceglider.stats import engine as engine_module

    monkeypatch.setattr(engine_module, "LIST_TTL_SECONDS", 0.0)
    storage = LocalStorage(tmp_path)
    write_rows(storage, ROWS, "batch-1")
    eng = Engine(storage, clock=NOW.timestamp)
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5  # from the answer cache
    write_rows(storage, [ev("d1", "D", us(20, 18, 0), "/new")], "batch-2")
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 6
    eng.close()


def test_pages_are_ordered_by_their_text_on_ties(engine: Engine) -> None:
    # page and event name are stored as ENUMs whose order is the sorted text
    q = Q.parse({"site_id": SITE, "period": "custom", "date": "2026-11-20,2026-11-21",
                 "property": "event:page", "metrics": "pageviews"}, NOW)
    rows = service.breakdown(engine, q)["results"]
    assert [(r["page"], r["pageviews"]) for r in rows] == [("/", 2), ("/pricing", 2), ("/blog/x", 1), ("/blog/y", 1)]


def test_unfiltered_counts_from_the_visits_table_match_the_events(demo_root) -> None:
    """Visitors, pageviews and events without an event filter come from each visit's
    counts of the period's events; an event filter matching every event makes the same
    query read the events table. Periods cutting through visits at both ends included."""
    engine = Engine(LocalStorage(demo_root))
    now = datetime.fromtimestamp(1_764_244_800, tz=UTC)
    every_event = "event:page!=/never-seen"
    periods = [{"period": "day"}, {"period": "7d"}, {"period": "30d"},
               {"period": "custom", "date": "2025-11-10,2025-11-12"}, {"period": "day", "date": "2025-11-20"}]
    for extra in periods:
        for visit_filter in ("", "visit:device==Mobile"):
            base = {"site_id": "demo.example", "metrics": "visitors,pageviews,events", **extra}
            fast = Q.parse({**base, "filters": visit_filter} if visit_filter else base, now)
            slow = Q.parse({**base, "filters": ";".join(f for f in (visit_filter, every_event) if f)}, now)
            a, b = service.aggregate(engine, fast), service.aggregate(engine, slow)
            assert a == b, (extra, visit_filter)
            assert a["results"]["visitors"]["value"] > 0
            total = service.goal_rows(engine, fast, ["Visit /"])[0]
            assert total == service.goal_rows(engine, slow, ["Visit /"])[0]
    engine.close()


def test_compacted_days_are_answered_from_their_files_with_no_copy_in_memory(storage: LocalStorage) -> None:
    from traceglider.storage.compact import compact

    compact(storage)
    eng = Engine(storage, clock=NOW.timestamp, result_entries=0)
    assert agg(eng, period="custom", date="2026-11-20,2026-11-21")["visits"] == 4
    q = Q.parse({"site_id": SITE, "period": "custom", "date": "2026-11-20,2026-11-21",
                 "property": "visit:country", "metrics": "visitors,visits"}, NOW)
    assert service.breakdown(eng, q)["results"] == [{"country": "DE", "visitors": 2, "visits": 3},
                                                    {"country": "FR", "visitors": 1, "visits": 1}]
    assert table_names(eng) == set()  # read straight from the events and visits files
    eng.close()


def test_files_not_compacted_are_sessionised_once_and_new_files_replace_them(storage: LocalStorage) -> None:
    eng = Engine(storage, clock=NOW.timestamp, result_entries=0, run_entries=1)
    eng.retire_seconds = 0
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5
    first = table_names(eng)
    assert len(first) == 2  # the run's events and visits
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5
    assert table_names(eng) == first  # not made again
    write_rows(storage, [ev("d1", "D", us(20, 18, 0), "/new")], "batch-2")
    eng._listing.clear()  # the listing is cached for a moment
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 6
    eng._retire([])  # the old run, evicted, is dropped once no query may read it
    assert len(table_names(eng)) == 2 and not table_names(eng) & first
    eng.close()


def test_a_run_asked_again_while_its_evicted_tables_wait_to_be_dropped_is_made_anew(storage: LocalStorage) -> None:
    """An evicted run's tables live on for `retire_seconds` (a query may still read
    them); the same files asked again meanwhile must not collide with them (CI saw
    "Table ... already exists" as a 500 on the realtime panel)."""
    eng = Engine(storage, clock=NOW.timestamp, result_entries=0, run_entries=1)
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5
    keys = write_rows(storage, [ev("d1", "D", us(20, 18, 0), "/new")], "batch-2")
    eng._listing.clear()
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 6  # evicts the first run
    storage.delete(keys)
    eng._listing.clear()
    assert agg(eng, period="day", date="2026-11-20")["pageviews"] == 5  # the first run's files again
    eng.close()



def test_the_next_page_of_a_breakdown_is_cut_from_the_answer_already_read(storage: LocalStorage) -> None:
    eng = Engine(storage, clock=NOW.timestamp)
    scans = []
    cursor = eng.cursor
    eng.cursor = lambda: scans.append(1) or cursor()  # type: ignore[method-assign]

    def pages(page: int, limit: int) -> list[str]:
        q = Q.parse({"site_id": SITE, "period": "7d", "date": "2026-11-21", "property": "event:page",
                     "limit": str(limit), "page": str(page), "metrics": "visitors,pageviews"})
        return [r["page"] for r in service.breakdown(eng, q)["results"]]

    everything = pages(1, 50)
    assert len(everything) == 4
    scans.clear()
    assert pages(1, 2) + pages(2, 2) + pages(3, 2) == everything
    assert scans == []  # every page of the first 100 rows: one answer, read once
    eng.close()
