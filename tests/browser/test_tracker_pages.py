"""Web Vitals, opt-in errors, a strict Content-Security-Policy, and not one console
error on any test page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PAGES = sorted(p.name for p in (Path(__file__).parent / "pages").glob("*.html"))
CATCH_CSP = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => __violations.push(e.violatedDirective + ' ' + e.blockedURI));"""


# Entries the page's own observers saw: the tracker's (registered after) see them too.
SEEN_ENTRIES = """window.__seen = {'layout-shift': 0, event: 0};
for (const type of Object.keys(__seen))
  new PerformanceObserver(list => { __seen[type] += list.getEntries().length })
    .observe({type, buffered: true, durationThreshold: 16});"""


def test_web_vitals_are_measured_and_sent_when_the_page_is_hidden(visit) -> None:
    visit.page.add_init_script(SEEN_ENTRIES)
    page = visit.open("vitals.html")
    page.wait_for_function("() => document.getElementById('ad').style.height === '240px'")  # the late ad slot
    page.wait_for_function("() => __seen['layout-shift'] > 0")  # and its layout-shift entry
    page.click("#slow")
    page.wait_for_function("() => __seen.event > 0")  # the slow click's event timing
    visit.hide()
    rows = visit.events(5, where=lambda r: r["type"] == "vital")
    vitals = {r["metric_name"]: r["metric_value"] for r in rows}
    assert sorted(vitals) == ["CLS", "FCP", "INP", "LCP", "TTFB"]
    assert vitals["CLS"] > 0.05
    assert vitals["INP"] >= 60
    assert 0 < vitals["TTFB"] <= vitals["FCP"] <= vitals["LCP"]
    assert all(r["path"].endswith("/vitals.html") for r in rows)


def test_errors_are_sent_only_when_opted_in_and_capped(new_visit) -> None:
    quiet = new_visit()
    quiet.expect_page_errors = True
    quiet.open("spa.html").evaluate("setTimeout(() => { throw new Error('not reported') })")
    loud = new_visit()
    loud.expect_page_errors = True
    page = loud.open("errors.html")
    page.evaluate("""() => new Promise(seen => {  // once the tracker's listener (added first) had it
        addEventListener('unhandledrejection', () => setTimeout(seen), {once: true});
        Promise.reject(new Error('rejected'));
    })""")
    page.evaluate("for (let i = 0; i < 15; i++) setTimeout(() => { throw new Error('boom ' + i) })")
    rows = loud.events(10, where=lambda r: r["type"] == "error", settle=1.2)
    assert len(rows) == 10 and {r["name"] for r in rows} == {"JS Error"}
    props = [json.loads(r["props"]) for r in rows]
    assert any(p["message"] == "Error: rejected" for p in props)
    assert any(p["message"] == "Uncaught Error: boom 0" and p["line"] >= 1 for p in props)
    assert quiet.events(where=lambda r: r["type"] == "error", timeout=0.1) == []


def test_a_page_with_a_strict_csp_allowing_only_the_collector_works(visit) -> None:
    visit.page.add_init_script(CATCH_CSP)
    response = visit.page.goto(visit.base + "csp.html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = visit.page
    page.wait_for_function("() => window.traceglider !== undefined")
    page.click("#cta")
    page.click("#out")  # leaves the page: the queue goes out in a beacon
    rows = visit.events(3, where=lambda r: r["type"] in ("pageview", "click"))
    assert sorted(r["name"] for r in rows) == ["CTA", "Outbound Link: Click", "pageview"]


def test_strict_csp_reports_no_violation(visit) -> None:
    visit.page.add_init_script(CATCH_CSP)
    page = visit.open("csp.html")
    page.click("#cta")
    visit.hide()
    visit.events(2, where=lambda r: r["type"] in ("pageview", "click"))
    assert page.evaluate("__violations") == []


@pytest.mark.parametrize("name", [p for p in PAGES if p != "errors.html"])
def test_no_console_error_on_any_page(visit, name: str) -> None:
    page = visit.page
    page.clock.install()
    page.goto(visit.base + name)
    page.wait_for_load_state("load")
    page.mouse.wheel(0, 500)
    visit.run_timers(300)  # the scroll read's timer, fired at once
    if page.evaluate("!!window.traceglider"):
        page.evaluate("traceglider.track('Console check', {page: location.pathname})")
        visit.hide()
    visit.run_timers(1300)  # the batch sent, its answer seen
    # the fixture fails the test on any console error or uncaught exception
