"""The SQL builder, table-driven (as Datasette's test_build_where): each filter tree
gives this SQL and these bound values, and a client's value is never SQL text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from traceglider.stats import sql as S
from traceglider.stats.model import And, Condition, Not, Or, Question

Q = Question("s.example", datetime(2026, 1, 1), datetime(2026, 1, 2), ("visitors",))
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
PAGE = Condition("is", "event:page", ("/a",))
IN_RANGE = "e.ts >= $p{} AND e.ts < $p{}"


@pytest.mark.parametrize(("node", "side", "sql", "values"), [
    (PAGE, "event", "(e.path = $p0)", ["/a"]),
    (Condition("is", "event:page", ("/a", "/b")), "event", "(e.path IN ($p0, $p1))", ["/a", "/b"]),
    (Condition("is_not", "event:page", ("/a",)), "event", "NOT coalesce((e.path = $p0), false)", ["/a"]),
    (Condition("is", "event:page", ("",)), "event", "(coalesce(e.path, '') = $p0)", [""]),
    (Condition("contains", "event:page", ("AbC",), True), "event",
     "(contains(lower(coalesce(e.path, '')), $p0))", ["abc"]),
    (Condition("contains_not", "visit:source", ("goo",)), "visit",
     "NOT (contains(coalesce(v.source, ''), $p0))", ["goo"]),
    (Condition("matches", "event:page", ("^/x[0-9]+$",)), "event",
     "(regexp_matches(coalesce(e.path, ''), $p0))", ["^/x[0-9]+$"]),
    (Condition("matches_not", "event:name", ("sign",), True), "event",
     "NOT (regexp_matches(lower(coalesce(e.name, '')), $p0, $p1))", ["sign", "i"]),
    (Condition("matches_wildcard", "event:page", ("/blog/**",)), "event",
     "(regexp_full_match(coalesce(e.path, ''), $p0))", ["/blog/.*"]),
    (Condition("matches_wildcard", "event:page", ("**",)), "event", "(true)", []),
    (Condition("is", "event:props:plan", ("pro",)), "event",
     "(json_extract_string(e.props, $p0) = $p1)", ['$."plan"', "pro"]),
    (Condition("is", "event:goal", ("Visit /x", "Signup")), "event",
     "((e.type = 'pageview' AND (e.path = $p0)) OR (e.type IN ('custom','click','form_submit') AND e.name = $p1))",
     ["/x", "Signup"]),
    # a condition of the other level goes through the visit
    (Condition("is", "visit:country", ("DE",)), "event",
     "e.vkey IN (SELECT v.vkey FROM vi v WHERE (v.country = $p0))", ["DE"]),
    (PAGE, "visit", f"v.vkey IN (SELECT e.vkey FROM ev e WHERE {IN_RANGE.format(1, 2)} AND (e.path = $p0))",
     ["/a", START, END]),
    # event conditions under one `and`: one event must match them all
    (And((PAGE, Condition("is", "event:name", ("x",)))), "visit",
     f"v.vkey IN (SELECT e.vkey FROM ev e WHERE {IN_RANGE.format(2, 3)} AND ((e.path = $p0) AND (e.name = $p1)))",
     ["/a", "x", START, END]),
    (Or((Condition("is", "visit:country", ("DE",)), PAGE)), "event",
     "(e.vkey IN (SELECT v.vkey FROM vi v WHERE (v.country = $p0)) OR (e.path = $p1))", ["DE", "/a"]),
    (And((Condition("is", "visit:country", ("ZZ",)), Or((PAGE, Condition("is", "visit:device", ("Phablet9",)))))),
     "visit", None, None),
    (Not(Condition("is", "visit:source", ("Google",))), "visit", "NOT coalesce((v.source = $p0), false)",
     ["Google"]),
    # hostile values are values
    (Condition("is", "visit:country", ("x'); DROP TABLE t; --",)), "visit", "(v.country = $p0)",
     ["x'); DROP TABLE t; --"]),
    (Condition("is", "event:name", ("a\x00b",)), "event", "(e.name = $p0)", ["a\x00b"]),
])
def test_filter_trees_become_sql_with_bound_values(node, side, sql, values) -> None:  # type: ignore[no-untyped-def]
    p = S.Params()
    got = " AND ".join(S.filter_sql(node, side, Q, p))
    if sql is None:  # mixed levels under `and` and `or`: only that every value is bound
        assert "ZZ" not in got and "Phablet9" not in got and "/a" not in got
        assert set(p.values.values()) >= {"ZZ", "Phablet9", "/a"}
        return
    assert got == sql
    assert list(p.values.values()) == values


@pytest.mark.parametrize(("metrics", "dimensions", "filters", "reads_events", "reads_visits"), [
    # the headline of a day-aligned range without event conditions: the visits alone
    (("visitors", "visits", "pageviews", "bounce_rate"), (), None, False, True),
    (("visitors", "pageviews"), (), Condition("is", "visit:country", ("DE",)), False, True),
    (("visitors", "visits"), ("visit:source",), None, False, True),
    (("visits",), ("time:day",), None, False, True),
    # events when an event condition, an event dimension or a page metric asks for them
    (("visitors",), (), PAGE, True, False),
    (("visits",), (), PAGE, True, True),  # visits having such an event
    (("visitors", "pageviews"), ("event:page",), None, True, False),
    (("visitors", "scroll_depth"), ("event:page",), None, True, False),
    # visitors by time bucket: the visits (a visitor counts in every bucket its visit overlaps)
    (("visitors",), ("time:day",), None, False, True),
    (("visitors",), ("time:hour", "visit:source"), None, False, True),
    (("visitors", "pageviews"), ("time:day",), None, True, False),
    (("visitors",), ("time:day",), PAGE, True, False),
])
def test_each_metric_reads_the_relation_that_answers_it(metrics, dimensions, filters, reads_events,  # type: ignore[no-untyped-def]
                                                        reads_visits) -> None:
    q = Question("s.example", datetime(2026, 1, 1), datetime(2026, 1, 8), metrics, dimensions, filters)
    sql, _ = S.aggregate(q, S.Relations(("e.parquet",), ("v.parquet",)))
    body = sql.split(") SELECT", 1)[0].split("vi AS NOT MATERIALIZED", 1)[1]  # after the two relations
    assert ("FROM ev e" in body or "FROM fe e" in body) == reads_events
    assert ("FROM vi v" in body or "FROM fv" in body) == reads_visits


def test_order_by_an_unknown_name_is_a_clear_400() -> None:
    from traceglider.errors import BadRequest

    q = Question("s.example", datetime(2026, 1, 1), datetime(2026, 1, 2), ("visitors",), ("event:page",),
                 order_by=(("nope", "desc"),))
    with pytest.raises(BadRequest):
        S.aggregate(q, S.Relations())


def test_visit_city_an_integer_is_matched_as_text() -> None:
    p = S.Params()
    got = S.filter_sql(Condition("contains", "visit:city", ("28",)), "visit", Q, p)
    assert got == ["(contains(coalesce(v.city::VARCHAR, ''), $p0))"] and p.values == {"p0": "28"}


@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_time_buckets_by_arithmetic_equal_duckdb_date_trunc(unit: str) -> None:
    """Buckets are integer arithmetic on the epoch (date_trunc on TIMESTAMPTZ is ten
    times slower); they must equal date_trunc in UTC: week starts on Monday, month
    ends, a leap day, the turn of a year, the last microsecond before midnight."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    instants = ["2024-02-29 23:59:59.999999", "2024-03-01 00:00:00", "2026-11-30 12:00:00", "2026-12-31 23:30:00",
                "2027-01-01 00:00:00", "2026-11-02 00:00:00", "2026-11-08 23:59:59", "2026-11-09 00:00:01",
                "1970-01-01 00:00:00", "2030-07-15 06:07:08"]
    ours = S.bucket_time(S.time_bucket(unit, "t"))
    rows = con.execute(f"SELECT {ours} = date_trunc('{unit}', t)::TIMESTAMP, t::VARCHAR "
                       "FROM (SELECT unnest($ts)::TIMESTAMPTZ AS t)", {"ts": instants}).fetchall()
    assert [t for same, t in rows if not same] == []
