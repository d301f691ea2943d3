"""Plausible's Events API payloads become rows; bad fields are 400s that name them."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from traceglider.errors import BadRequest
from traceglider.ingest.plausible import parse_plausible

NOW_US = 1_764_280_000_000_000


def parse(**document: Any) -> list[dict[str, Any]]:
    return parse_plausible(document, NOW_US)[1]


def test_a_pageview_from_the_api() -> None:
    site, rows = parse_plausible({"name": "pageview", "url": "https://example.com/a?x=1",
                                  "domain": "example.com", "referrer": "https://t.co/x"}, NOW_US)
    assert site == "example.com"
    [row] = rows
    assert (row["type"], row["name"], row["url"], row["referrer"], row["received_at"]) == (
        "pageview", "pageview", "https://example.com/a?x=1", "https://t.co/x", NOW_US)
    assert len(row["event_id"]) == 32 and row["ctx"] is None


def test_the_short_keys_of_plausibles_script() -> None:
    [row] = parse(n="Signup", u="https://example.com/", d="example.com", r=None, w=1440,
                  p={"plan": "pro", "seats": 3, "nested": {"x": 1}}, i=False)
    assert (row["type"], row["name"], row["screen_width"]) == ("custom", "Signup", 1440)
    assert row["props"] == '{"plan":"pro","seats":3}'
    assert row["ctx"] == '{"interactive":false}'


def test_the_fragment_is_part_of_the_page_only_in_hash_mode() -> None:
    url = "https://example.com/app#/settings"
    assert parse(n="pageview", u=url, d="example.com")[0]["url"] == "https://example.com/app"
    assert parse(n="pageview", u=url, d="example.com", h=1)[0]["url"] == url


@pytest.mark.parametrize(("name", "kind"), [
    ("pageview", "pageview"), ("engagement", "engagement"), ("Outbound Link: Click", "click"),
    ("File Download", "click"), ("404", "custom"), ("Purchase", "custom"),
])
def test_event_names_map_to_types(name: str, kind: str) -> None:
    assert parse(name=name, url="https://example.com/", domain="example.com")[0]["type"] == kind


def test_engagement_carries_scroll_depth_and_time() -> None:
    [row] = parse(n="engagement", u="https://example.com/", d="example.com", sd=140, e=5300)
    assert (row["scroll_depth"], row["engagement_ms"]) == (100, 5300)


def test_meta_as_json_text_and_revenue() -> None:
    [row] = parse(name="Purchase", url="https://example.com/", domain="example.com",
                  meta='{"sku":"A1"}', revenue={"amount": "19.90", "currency": "eur"})
    assert row["props"] == '{"sku":"A1"}'
    assert row["revenue"] == '{"amount":"19.90","currency":"EUR"}'


def test_several_domains_fan_out() -> None:
    site, rows = parse_plausible({"name": "pageview", "url": "https://example.com/",
                                  "domain": "example.com, www.rollup.example.org,example.com"}, NOW_US)
    assert site == "example.com"
    assert [r["site"] for r in rows] == ["example.com", "rollup.example.org"]
    assert rows[0]["event_id"] != rows[1]["event_id"]


@pytest.mark.parametrize(("document", "message"), [
    ([], "body: must be a JSON object"),
    ({"url": "https://example.com/", "domain": "example.com"}, "name: required"),
    ({"n": "pageview", "d": "example.com"}, "url: required"),
    ({"name": "pageview", "url": "data:text/html,hi", "domain": "example.com"}, "url: scheme is not allowed"),
    ({"name": "pageview", "url": "/relative"}, "domain: required"),
    ({"name": "pageview", "url": "https://example.com/", "domain": "not a domain"}, "domain: not a valid"),
    ({"name": 3, "url": "https://example.com/", "domain": "example.com"}, "name: must be a string"),
    ({"name": "x", "url": "https://example.com/" + "a" * 2000, "domain": "example.com"}, "url: longer than"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com", "props": "{"}, "props: must be an object"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com", "p": [1]}, "p: must be an object"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com",
      "props": {"k" * 301: "v"}}, "props: property names must be 1 to 300"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com",
      "props": {"k": "v" * 2001}}, "props.k: longer than 2000"),
])
def test_bad_fields_are_named(document: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_plausible(document, NOW_US)


# -- Plausible's leniency: the bad part is dropped, the event kept ---------------------

@pytest.mark.parametrize("revenue", [
    {},  # what @plausible-analytics/tracker sends for an element tagged with an event name
    {"amount": 1, "currency": "EURO"}, {"amount": 1, "currency": "XXY"},
    {"amount": "lots", "currency": "EUR"}, {"amount": True, "currency": "EUR"},
    {"amount": "1e400", "currency": "EUR"}, {"amount": "NaN", "currency": "EUR"},
    {"currency": "EUR"}, "not json", [1, 2], 12,
])
def test_invalid_revenue_is_dropped_and_the_event_kept(revenue: Any) -> None:
    [row] = parse(n="Purchase", u="https://example.com/", d="example.com", **{"$": revenue})
    assert row["name"] == "Purchase" and row["revenue"] is None


def test_revenue_as_json_text_and_in_lower_case_is_kept() -> None:
    [row] = parse(n="Purchase", u="https://example.com/", d="example.com",
                  revenue='{"amount": 12.5, "currency": "usd"}')
    assert row["revenue"] == '{"amount":"12.5","currency":"USD"}'


def test_an_app_url_keeps_its_host_and_path() -> None:
    # Plausible's advice for mobile apps, and what the PyPI client plausible-events sends.
    [row] = parse(name="pageview", url="app://localhost/login", domain="example.com")
    assert row["url"] == "app://localhost/login" and "hostname" not in row


def test_a_relative_url_has_no_host() -> None:
    [row] = parse(name="pageview", url="/blog?utm_source=x", domain="example.com")
    assert (row["url"], row["hostname"]) == ("/blog?utm_source=x", "(none)")


def test_without_a_domain_the_site_is_the_urls_host() -> None:
    site, [row] = parse_plausible({"n": "pageview", "u": "https://www.example.com/a"}, NOW_US)
    assert site == row["site"] == "example.com"


def test_more_than_30_props_keep_the_first_30_usable_ones() -> None:
    props = {"empty": "", "blank": "  ", "list": [1], "object": {"a": 1},
             **{f"k{i:02}": f"v{i}" for i in range(40)}}
    [row] = parse(n="Signup", u="https://example.com/", d="example.com", p=props)
    kept = orjson.loads(row["props"])
    assert list(kept) == [f"k{i:02}" for i in range(30)]


def test_interactive_that_is_not_a_boolean_is_ignored() -> None:
    [row] = parse(n="Signup", u="https://example.com/", d="example.com", i="no")
    assert row["ctx"] is None
