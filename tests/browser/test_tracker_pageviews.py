"""The tracker records pageviews: on load, on every real single-page-app route change,
by hand in manual mode; with clean URLs, the landing referrer and UTM tags."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def paths(rows: list[dict]) -> list[str]:
    """Paths below the test's own /t/<token>/ prefix."""
    return [r["path"].split("/", 3)[3] for r in rows]


def go(page, method: str, path: str) -> None:
    """A router's navigation: the History API with a path below /t/<token>/."""
    page.evaluate("([m, p]) => history[m]({}, '', location.pathname.split('/').slice(0, 3).join('/')"
                  " + '/' + p)", [method, path])


def test_a_page_load_is_one_pageview_with_utm_referrer_and_profile(visit) -> None:
    visit.page.goto(visit.base + "index.html?utm_source=news&utm_medium=social"
                    "&utm_campaign=launch&page=2&email=a%40b.example&token=s3cret#top",
                    referer="https://news.ycombinator.com/")
    [row] = visit.events(where=lambda r: r["type"] == "pageview", settle=0.5)
    assert row["site"] == "tracker.test"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("news", "social", "launch")
    assert "email" not in row["url"] and "s3cret" not in row["url"] and "#" not in row["url"]
    assert row["referrer_host"] == "news.ycombinator.com"
    assert row["title"] == "Home"
    assert row["screen_width"] > 0 and row["viewport_width"] > 0 and row["language"]
    assert row["timezone"]
    batch = visit.sent_batches()[0]
    # Only utm_*, ref and data-query-allow ("page") leave the page; no fragment.
    # (The collector applies its own allowlist, TG_QUERY_ALLOWLIST, on top.)
    assert batch["events"][0]["url"].endswith(
        "/index.html?utm_source=news&utm_medium=social&utm_campaign=launch&page=2")
    assert batch["events"][0]["ref"] == "https://news.ycombinator.com/"
    assert {"sw", "sh", "vw", "vh", "dpr", "lang", "tz", "cs", "touch", "wd"} <= batch["ctx"].keys()
    assert batch["ctx"]["wd"] is False and batch["ctx"]["brands"]


def test_single_page_app_route_changes_are_pageviews(visit) -> None:
    page = visit.open("spa.html")
    go(page, "pushState", "spa/about")
    go(page, "replaceState", "spa/about")  # the same URL: no pageview
    go(page, "replaceState", "spa/pricing")  # a different URL: one
    go(page, "pushState", "spa/pricing?tab=2")  # the query only: none
    go(page, "pushState", "contact")
    page.go_back()  # spa/pricing?tab=2
    page.go_back()  # spa/pricing, the same route without the query: none
    page.go_back()  # spa.html
    page.go_forward()  # spa/pricing
    rows = visit.events(7, where=lambda r: r["type"] == "pageview", settle=1.2)
    assert paths(rows) == ["spa.html", "spa/about", "spa/pricing", "contact", "spa/pricing",
                           "spa.html", "spa/pricing"]


def test_leaving_a_route_sends_its_engagement(visit) -> None:
    page = visit.open("spa.html", clock=True)
    visit.run_timers(300)  # time on the route, moved on the page's clock
    go(page, "pushState", "next")
    [row] = visit.events(where=lambda r: r["type"] == "engagement")
    assert paths([row]) == ["spa.html"]
    assert row["engagement_ms"] >= 250


def test_hash_routing_counts_fragment_changes_when_asked(visit) -> None:
    page = visit.open("hash.html")
    page.click("#to-b")
    page.evaluate("location.hash = '#/c'")
    page.go_back()
    rows = visit.events(4, where=lambda r: r["type"] == "pageview", settle=1.2)
    urls = [r["url"].split("/", 5)[5] for r in rows]
    assert urls == ["hash.html", "hash.html#/b", "hash.html#/c", "hash.html#/b"]


def test_without_hash_routing_a_fragment_change_is_no_pageview(visit) -> None:
    page = visit.open("spa.html")
    page.evaluate("location.hash = '#section'")
    rows = visit.events(where=lambda r: r["type"] == "pageview", settle=1.2)
    assert len(rows) == 1 and "#" not in rows[0]["url"]


def test_manual_mode_sends_only_what_the_page_asks_for(visit) -> None:
    page = visit.open("manual.html")
    go(page, "pushState", "manual/ignored")
    page.evaluate("traceglider.pageview({url: location.href.replace("
                  "'manual/ignored', 'virtual/checkout?step=2&user=me'), props: {step: 2}})")
    [row] = visit.events(where=lambda r: r["type"] == "pageview", settle=1.2)
    assert paths([row]) == ["virtual/checkout"] and "user=me" not in row["url"]
    assert json.loads(row["props"]) == {"step": 2}


def test_excluded_paths_send_nothing(visit) -> None:
    page = visit.open("exclude.html")
    go(page, "pushState", "private/one")
    page.evaluate("traceglider.track('Hidden')")
    go(page, "pushState", "admin")
    go(page, "pushState", "public")
    rows = visit.events(2, where=lambda r: r["type"] in ("pageview", "custom"), settle=1.2)
    assert [(r["type"], p) for r, p in zip(rows, paths(rows), strict=True)] == [
        ("pageview", "exclude.html"), ("pageview", "public")]


def test_a_late_injected_async_tracker_works_and_a_second_copy_is_ignored(new_visit) -> None:
    late = new_visit()
    late.open("late.html")
    assert len(late.events(where=lambda r: r["type"] == "pageview", settle=0.3)) == 1
    twice = new_visit()
    page = twice.open("twice.html")
    page.wait_for_load_state("load")
    assert page.evaluate("Object.keys(window).filter(k => k.startsWith('tracegl'))") == ["traceglider"]
    assert len(twice.events(where=lambda r: r["type"] == "pageview", settle=1.2)) == 1
