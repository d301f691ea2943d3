"""Privacy in the script: nothing stored in the browser by the tracker, GPC and DNT
honoured, consent asked of the server, and silence on localhost unless asked."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"


def cookie_names(visit) -> list[str]:
    return sorted(c["name"] for c in visit.context.cookies())


def consent(visit, value: str) -> None:
    with visit.page.expect_response(visit.collector.origin + "/consent", timeout=5000) as answer:
        visit.page.evaluate("v => traceglider.consent(v)", value)
    assert answer.value.status < 300, answer.value.text()


def test_the_tracker_writes_no_cookie_and_no_storage(visit) -> None:
    page = visit.open("index.html")
    page.evaluate("traceglider.track('Something')")
    visit.events(2)
    assert page.evaluate("document.cookie + localStorage.length + sessionStorage.length") == "00"
    assert cookie_names(visit) == []  # and, without consent, the collector sets none either


def test_nothing_is_sent_from_localhost_unless_the_site_asks(visit) -> None:
    page = visit.open("nolocal.html", clock=True)
    page.evaluate("traceglider.track('Ignored'); traceglider.consent('granted')")
    visit.run_timers(1300)  # past the tracker's 1 s batching delay
    visit.hide()
    visit.settle()
    assert [r.url for r in visit.requests if r.url.startswith(visit.collector.origin)] == [
        visit.collector.origin + "/t.js"]


def test_gpc_with_data_gpc_drop_sends_nothing_at_all(new_visit) -> None:
    visit = new_visit(extra_http_headers={"Sec-GPC": "1"})
    visit.page.add_init_script(GPC_ON)
    page = visit.open("gpc-drop.html", clock=True)
    page.evaluate("traceglider.track('Ignored'); traceglider.consent('granted')")
    visit.run_timers(1300)  # past the tracker's 1 s batching delay
    visit.hide()
    visit.settle()
    assert [r.url for r in visit.requests if r.url.startswith(visit.collector.origin)] == [
        visit.collector.origin + "/t.js"]


def test_a_gpc_visitor_is_counted_without_a_cookie_even_after_consent(new_visit) -> None:
    visit = new_visit(extra_http_headers={"Sec-GPC": "1"})
    visit.page.add_init_script(GPC_ON)
    visit.open("spa.html")
    consent(visit, "granted")
    visit.page.evaluate("traceglider.track('After consent')")
    rows = visit.events(2, where=lambda r: r["type"] in ("pageview", "custom"))
    assert cookie_names(visit) == []
    assert len({r["visitor_id"] for r in rows}) == 1


def test_consent_required_sends_nothing_until_granted_then_the_queue(visit) -> None:
    page = visit.open("consent.html", clock=True)
    page.evaluate("traceglider.track('Before consent')")
    visit.run_timers(1300)  # past the tracker's 1 s batching delay
    assert visit.collects() == []
    consent(visit, "granted")
    consent_request = next(r for r in visit.requests if r.url.endswith("/consent"))
    assert json.loads(consent_request.post_data) == {"site": "tracker.test", "consent": "granted"}
    assert cookie_names(visit) == ["tg_vid"]  # set by the collector, not the script
    rows = visit.events(2, where=lambda r: r["type"] in ("pageview", "custom"))
    assert sorted(r["name"] for r in rows) == ["Before consent", "pageview"]
    # the cookie is the visitor id and the collector's MAC of it; the id is stored
    visitor_id, _, mac = visit.context.cookies()[0]["value"].partition(".")
    assert mac and {r["visitor_id"] for r in rows} == {visitor_id}

    consent(visit, "denied")
    assert cookie_names(visit) == []
    sent = len(visit.collects())
    page.evaluate("traceglider.track('After denial')")
    visit.hide()
    visit.run_timers(1300)
    assert len(visit.collects()) == sent


def test_consent_in_the_default_mode_turns_the_cookie_on_and_off(visit) -> None:
    visit.open("spa.html")
    consent(visit, "granted")
    assert cookie_names(visit) == ["tg_vid"]
    consent(visit, "denied")
    assert cookie_names(visit) == []
    visit.page.evaluate("traceglider.track('Still counted')")
    assert visit.events(where=lambda r: r["name"] == "Still counted")
