"""The demo site the collector serves at /demo shows the whole loop working."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

DEMO_SITE = "demo.traceglider.local"


def demo_rows(visit, count: int, where) -> list[dict]:
    return visit.collector.events("/demo/", count, where=lambda r: r["site"] == DEMO_SITE and where(r),
                                  sleep=visit.sleep)


def test_the_demo_pages_record_a_visit_without_a_console_error(visit) -> None:
    page = visit.page
    marker = visit.token
    page.goto(visit.collector.origin + "/demo/")
    page.wait_for_function("() => window.traceglider !== undefined")
    page.click("#cheer")
    page.click("text=Sign up (free)")
    page.click("text=About")
    page.wait_for_url("**/demo/about.html")
    page.mouse.wheel(0, 20000)
    page.click("text=Contact")
    page.fill("input[name=email]", f"{marker}@example.com")
    page.click("form button")
    page.wait_for_url("**/demo/thanks.html?*")
    page.click("header >> text=App")
    page.click("text=Billing")
    page.go_back()
    visit.hide()
    demo_rows(visit, 1, lambda r: r["path"] == "/demo/app.html" and r["type"] == "engagement")
    rows = demo_rows(visit, 10, lambda r: True)
    names = {r["name"] for r in rows}
    assert {"pageview", "Cheer", "Signup", "Form: Submit", "engagement"} <= names
    paths = {r["path"] for r in rows if r["type"] == "pageview"}
    assert {"/demo/", "/demo/about.html", "/demo/thanks.html", "/demo/app/billing"} <= paths
    assert marker not in json.dumps(rows, default=str)  # the e-mail in the URL stayed home
