"""Parsing Plausible v1 parameters: table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from traceglider.errors import BadRequest
from traceglider.stats.query import Filter, parse, parse_filters
from traceglider.stats.sql import glob_regex

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    ("event:page==/blog/**", (Filter("event:page", "==", ("/blog/**",)),)),
    ("visit:country==DE|FR;event:page!=/", (Filter("visit:country", "==", ("DE", "FR")),
                                           Filter("event:page", "!=", ("/",)))),
    ("visit:source~goo", (Filter("visit:source", "~", ("goo",)),)),
    ("event:props:plan==pro", (Filter("event:props:plan", "==", ("pro",)),)),
    (r"event:page==/a\|b", (Filter("event:page", "==", ("/a|b",)),)),
    ("", ()),
])
def test_filters_parse(raw: str, expected: tuple) -> None:
    assert parse_filters(raw) == expected


@pytest.mark.parametrize("raw", ["event:nope==1", "visit:country", "country==DE",
                                 "event:props:bad'key==1", "visit:country=DE"])
def test_bad_filters_are_400(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_filters(raw)


@pytest.mark.parametrize(("period", "date", "start", "end"), [
    ("day", None, "2026-11-27", "2026-11-28"),
    ("7d", None, "2026-11-21", "2026-11-28"),
    ("30d", "2026-11-10", "2026-10-12", "2026-11-11"),
    ("month", "2026-02-10", "2026-02-01", "2026-03-01"),
    ("6mo", None, "2026-06-01", "2026-12-01"),
    ("12mo", None, "2025-12-01", "2026-12-01"),
    ("custom", "2026-01-01,2026-01-31", "2026-01-01", "2026-02-01"),
])
def test_periods(period: str, date: str | None, start: str, end: str) -> None:
    params = {"site_id": "x.com", "period": period}
    if date:
        params["date"] = date
    q = parse(params, NOW)
    assert (q.start.date().isoformat(), q.end.date().isoformat()) == (start, end)


@pytest.mark.parametrize(("params", "message"), [
    ({}, "Missing site ID"),
    ({"site_id": "x.com", "metrics": "visitors,foo"}, "The metric `foo` is not recognized"),
    ({"site_id": "x.com", "period": "2y"}, "invalid period"),
    ({"site_id": "x.com", "interval": "minute"}, "invalid interval"),
    ({"site_id": "x.com", "period": "custom"}, "required for a custom period"),
    ({"site_id": "x.com", "limit": "5000"}, "limit"),
    ({"site_id": "x.com", "property": "visit:nope"}, "Invalid property"),
])
def test_bad_parameters_are_400_with_a_message(params: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse(params, NOW)


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("/blog/**", "/blog/a/b", True), ("/blog/*", "/blog/a/b", True), ("/blog*", "/blogging", True),
    ("/a.b", "/aXb", False), ("**/x", "/q/x", True),
])
def test_globs(pattern: str, path: str, hit: bool) -> None:
    import re

    assert bool(re.fullmatch(glob_regex(pattern), path)) is hit


def test_demo_data_just_after_midnight_writes_the_past_days_only(tmp_path):
    """Minutes into a UTC day no visit of today has started yet; that must not fail."""
    from datetime import datetime

    from traceglider.demo_data import generate
    from traceglider.storage.local import LocalStorage
    from traceglider.storage.parquet import list_partitions

    storage = LocalStorage(tmp_path)
    just_after_midnight = datetime(2026, 11, 28, 0, 1, tzinfo=UTC).timestamp()
    assert generate(storage, "example.com", 200_000, days=3, now=just_after_midnight) > 0
    assert {date for _site, date in list_partitions(storage)} <= {"2026-11-26", "2026-11-27", "2026-11-28"}
