"""Plausible's Events API payloads become rows; bad fields are 400s that name them."""

from __future__ import annotations

import re
from typing import Any

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
    ({"name": "pageview", "url": "ftp://example.com/", "domain": "example.com"}, "url: must be an http(s) URL"),
    ({"name": "pageview", "url": "https://example.com/"}, "domain: required"),
    ({"name": "pageview", "url": "https://example.com/", "domain": "not a domain"}, "domain: not a valid"),
    ({"name": 3, "url": "https://example.com/", "domain": "example.com"}, "name: must be a string"),
    ({"name": "x", "url": "https://example.com/" + "a" * 2000, "domain": "example.com"}, "url: longer than"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com", "props": "{"}, "props: must be an object"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com", "p": [1]}, "p: must be an object"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com",
      "revenue": {"amount": 1, "currency": "EURO"}}, "revenue.currency"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com",
      "$": {"amount": "lots", "currency": "EUR"}}, "$.amount: must be a number"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com", "interactive": "no"},
     "interactive: must be true or false"),
    ({"name": "x", "url": "https://example.com/", "domain": "example.com",
      "props": {f"k{i}": i for i in range(31)}}, "props: at most 30"),
])
def test_bad_fields_are_named(document: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_plausible(document, NOW_US)
