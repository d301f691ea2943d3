"""Visitor identity in the real browser, end to end through the collector (issue 4):
the server-set cookie after consent, its exact flags, its refresh and its removal;
the cookieless id without consent (stable within a day, no cookie); and GPC / DNT,
which keep a visitor cookieless whatever the page asks or the cookie says.

The pages are served from another loopback port than the collector. Ports do not
make another site (a site is scheme + registrable domain), so the collector's
SameSite=Lax cookie is same-site here and Chromium keeps and sends it, as it would
for a collector on `stats.example.com` serving `www.example.com`."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

pytestmark = pytest.mark.browser

COOKIE = "tg_vid"
# 16 random bytes (the visitor id), then 12 bytes of the MAC that marks it as ours
COOKIE_ID = re.compile(r"^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}$")


def visitor_of(value: str) -> str:
    """The visitor id a cookie value stands for (what rows carry)."""
    return value.partition(".")[0]
COOKIELESS_ID = re.compile(r"^[0-9a-f]{16}$")  # BLAKE2b-64, hex
DAY = 86_400


def collector_cookies(visit: Any) -> list[dict[str, Any]]:
    """The cookies the browser keeps for the collector's origin."""
    return visit.context.cookies(visit.collector.origin)


def set_cookie_headers(response: Any) -> list[str]:
    return [h["value"] for h in response.headers_array() if h["name"].lower() == "set-cookie"]


def attributes(header: str) -> dict[str, str]:
    """`name=value; Attr=x; Flag` as {"name": ..., "value": ..., "attr": "x", "flag": ""}."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    found = {"name": name, "value": value}
    for part in rest:
        key, _, val = part.partition("=")
        found[key.strip().lower()] = val.strip()
    return found


def consent(visit: Any, value: str) -> Any:
    """Calls `traceglider.consent(value)` and returns the collector's answer."""
    with visit.page.expect_response(visit.collector.origin + "/consent", timeout=5000) as answer:
        visit.page.evaluate("v => traceglider.consent(v)", value)
    response = answer.value
    # Not response.json(): the tracker's fetch is `keepalive`, and Playwright cannot
    # read the body of a keepalive request (it waits forever); headers it can.
    assert response.status == 200, response.status
    return response


def track(visit: Any, name: str) -> dict[str, Any]:
    """Sends a custom event and waits until its row is in storage."""
    visit.page.evaluate("n => traceglider.track(n)", name)
    rows = visit.events(where=lambda r: r["name"] == name)
    assert len(rows) == 1, rows
    return rows[0]


def test_cookie_path_consent_sets_the_cookie_events_carry_it_denial_clears_it(visit) -> None:
    # Default mode: before any consent the visitor is counted, cookieless.
    page = visit.open("spa.html")
    before = visit.events(where=lambda r: r["type"] == "pageview")[0]
    assert COOKIELESS_ID.match(before["visitor_id"]), before["visitor_id"]
    assert collector_cookies(visit) == []

    # The grant: the collector's answer sets the cookie, with exactly these flags.
    granted = consent(visit, "granted")
    headers = set_cookie_headers(granted)
    assert len(headers) == 1, headers
    sent = attributes(headers[0])
    assert sent["name"] == COOKIE and COOKIE_ID.match(sent["value"]), headers
    assert "httponly" in sent and sent["samesite"].lower() == "lax" and sent["path"] == "/"
    assert "secure" not in sent and "domain" not in sent  # plain http, TG_COOKIE_DOMAIN unset
    assert 0 < int(sent["max-age"]) <= 400 * DAY
    assert int(sent["max-age"]) == 395 * DAY  # TG_COOKIE_DAYS's default

    # ... and the browser keeps it for the collector's host, out of the page's reach.
    (kept,) = collector_cookies(visit)
    assert kept["name"] == COOKIE and kept["value"] == sent["value"]
    assert kept["domain"] == "127.0.0.1" and kept["path"] == "/"
    assert kept["httpOnly"] is True and kept["secure"] is False and kept["sameSite"] == "Lax"
    assert time.time() < kept["expires"] <= time.time() + 400 * DAY
    assert page.evaluate("document.cookie") == ""

    # Events after the grant carry the cookie's value as their visitor id, and every
    # answer refreshes the cookie (same value, full lifetime again).
    with page.expect_response(lambda r: r.url == visit.collector.origin + "/collect",
                              timeout=5000) as answer:
        row = track(visit, "With the cookie")
    assert answer.value.status == 202
    assert row["visitor_id"] == visitor_of(kept["value"])
    refreshed = [attributes(h) for h in set_cookie_headers(answer.value)]
    assert [(c["name"], c["value"], c["max-age"]) for c in refreshed] == [
        (COOKIE, kept["value"], str(395 * DAY))]

    # A repeated grant keeps the same id: it is the same visitor.
    consent(visit, "granted")
    assert [c["value"] for c in collector_cookies(visit)] == [kept["value"]]

    # The denial clears the cookie, and later events are cookieless again: the same
    # cookieless id as before the grant (same browser, network and day).
    denied = consent(visit, "denied")
    cleared = [attributes(h) for h in set_cookie_headers(denied)]
    assert [(c["name"], c["value"].strip('"'), c["max-age"]) for c in cleared] == [(COOKIE, "", "0")]
    assert collector_cookies(visit) == []
    after = track(visit, "After denial")
    assert after["visitor_id"] != visitor_of(kept["value"])
    assert after["visitor_id"] == before["visitor_id"]


def test_cookie_path_with_consent_required_nothing_before_the_grant(visit) -> None:
    page = visit.open("consent.html", clock=True)
    page.evaluate("traceglider.track('Held until the grant')")
    visit.run_timers(1300)  # past the tracker's 1 s batching delay
    assert visit.collects() == []
    assert collector_cookies(visit) == []

    consent(visit, "granted")
    (kept,) = collector_cookies(visit)
    assert kept["name"] == COOKIE and kept["httpOnly"] and kept["sameSite"] == "Lax"
    rows = visit.events(2, where=lambda r: r["type"] in ("pageview", "custom"))
    assert sorted(r["name"] for r in rows) == ["Held until the grant", "pageview"]
    assert {r["visitor_id"] for r in rows} == {visitor_of(kept["value"])}

    # A second page load in the same context: the cookie travels with the new page's
    # events (after the page's own grant, as a banner that remembers the answer does).
    visit.open("consent.html", "?again=1")
    consent(visit, "granted")
    rows = visit.events(2, where=lambda r: r["type"] == "pageview")
    assert {r["visitor_id"] for r in rows} == {visitor_of(kept["value"])}
    assert [c["value"] for c in collector_cookies(visit)] == [kept["value"]]


def test_cookieless_path_same_id_across_page_loads_and_no_cookie(new_visit) -> None:
    visit = new_visit()
    visit.open("spa.html")
    visit.open("spa.html", "?second=1")
    visit.page.evaluate("traceglider.track('Second page')")
    rows = visit.events(3, where=lambda r: r["type"] in ("pageview", "custom"))
    assert len(rows) == 3, rows
    ids = {r["visitor_id"] for r in rows}
    assert len(ids) == 1, ids
    (cookieless,) = ids
    assert COOKIELESS_ID.match(cookieless), cookieless
    assert collector_cookies(visit) == []
    assert visit.page.evaluate("document.cookie + localStorage.length + sessionStorage.length") == "00"

    # The id is the same browser (user agent) on the same network on the same day,
    # not the context: a fresh context of the same browser is the same visitor ...
    again = new_visit()
    again.open("spa.html")
    assert {r["visitor_id"] for r in again.events(where=lambda r: r["type"] == "pageview")} == {
        cookieless}
    # ... and another browser on the same network is another one.
    firefox = ("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
    other = new_visit(user_agent=firefox)
    other.open("spa.html")
    (row,) = other.events(where=lambda r: r["type"] == "pageview")
    assert COOKIELESS_ID.match(row["visitor_id"]) and row["visitor_id"] != cookieless


@pytest.mark.parametrize("signal", [{"Sec-GPC": "1"}, {"DNT": "1"}], ids=["gpc", "dnt"])
def test_gpc_and_dnt_headers_keep_a_grant_from_setting_a_cookie(new_visit, signal) -> None:
    # Only the request header: the server's reading of it is what is tested here (the
    # script's own navigator.globalPrivacyControl check is for data-gpc="drop").
    visit = new_visit(extra_http_headers=signal)
    visit.open("spa.html")
    answer = consent(visit, "granted")
    assert [attributes(h)["max-age"] for h in set_cookie_headers(answer)] == ["0"]
    assert collector_cookies(visit) == []
    row = track(visit, "After a grant under a privacy signal")
    assert COOKIELESS_ID.match(row["visitor_id"]), row["visitor_id"]
    assert collector_cookies(visit) == []


def test_gpc_turned_on_later_wins_over_an_existing_cookie(visit) -> None:
    visit.open("spa.html")
    consent(visit, "granted")
    (kept,) = collector_cookies(visit)
    assert track(visit, "Before GPC")["visitor_id"] == visitor_of(kept["value"])

    # The visitor turns Global Privacy Control on: the cookie is still in the browser,
    # and sent, but the collector neither reads nor refreshes it.
    visit.context.set_extra_http_headers({"Sec-GPC": "1"})
    with visit.page.expect_response(lambda r: r.url == visit.collector.origin + "/collect",
                                    timeout=5000) as answer:
        row = track(visit, "Under GPC")
    assert COOKIELESS_ID.match(row["visitor_id"]) and row["visitor_id"] != visitor_of(kept["value"])
    assert set_cookie_headers(answer.value) == []
