"""Plausible's own tracker, from npm (`@plausible-analytics/tracker`, a devDependency
in tracker/package.json), sending to the collector's `POST /api/event` in the real
browser: the "change one URL" promise of the contract, tested with the real script.

The package is ESM; the test bundles it into an IIFE with the esbuild that tracker/
already has (a local build from tracker/node_modules, nothing downloaded), and a
small page server on another loopback port serves it with a page that calls
`init({domain, endpoint})`."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT, SITE

pytestmark = pytest.mark.browser

TRACKER = ROOT / "tracker"
PACKAGE = "@plausible-analytics/tracker"
GLOBAL = "PlausibleNpm"
COOKIELESS_ID = re.compile(r"^[0-9a-f]{16}$")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plausible's tracker</title>
<link rel="icon" href="data:,">
<script src="/plausible.js"></script>
<script>
  {g}.init(Object.assign({{domain: {site}, endpoint: {endpoint}, captureOnLocalhost: true}}, {extra}))
</script>
</head><body><h1>Plausible's own script, sending to TraceGlider</h1>{body}</body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="module")
def plausible_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(origin, root) of a page server whose /plausible.js is the npm package bundled
    as an IIFE exposing `PlausibleNpm.init` and `PlausibleNpm.track`."""
    esbuild = TRACKER / "node_modules" / ".bin" / "esbuild"
    if not (TRACKER / "node_modules" / PACKAGE / "package.json").is_file() or not esbuild.exists():
        pytest.fail(f"{PACKAGE} or esbuild missing in tracker/node_modules: "
                    "run `npm ci --prefix tracker` (`make test` does)")
    root = tmp_path_factory.mktemp("plausible-site")
    # The entry comes on stdin, so the import resolves from tracker/ (its node_modules).
    built = subprocess.run(
        [str(esbuild), "--bundle", "--format=iife", f"--global-name={GLOBAL}",
         "--target=es2019", "--log-level=warning", f"--outfile={root / 'plausible.js'}"],
        input=f"export {{ init, track }} from '{PACKAGE}'\n", text=True,
        cwd=TRACKER, capture_output=True, timeout=60, check=False)
    assert built.returncode == 0, built.stderr
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def open_page(visit: Any, plausible_site: tuple[str, Path], body: str = "", **options: Any) -> Any:
    """Writes this test's page under /p/<token>/ (so its rows carry the token in their
    path) and opens it; `options` are more of Plausible's `init` options."""
    origin, root = plausible_site
    folder = root / "p" / visit.token
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(PAGE.format(
        g=GLOBAL, site=json.dumps(SITE), endpoint=json.dumps(visit.collector.origin + "/api/event"),
        extra=json.dumps(options), body=body))
    visit.page.goto(f"{origin}/p/{visit.token}/index.html")
    visit.page.wait_for_function("() => window.plausible !== undefined")
    return visit.page


def track(page: Any, name: str, options: dict[str, Any]) -> Any:
    """Plausible's `track(name, options)`; returns what its callback was given."""
    return page.evaluate(
        f"([n, o]) => new Promise(done => {GLOBAL}.track(n, {{...o, callback: done}}))",
        [name, options])


def test_plausibles_npm_tracker_sends_pageviews_and_custom_events_here(visit, plausible_site) -> None:
    page = open_page(visit, plausible_site)
    path = f"/p/{visit.token}/index.html"

    # The automatic pageview on load.
    (pageview,) = visit.events(where=lambda r: r["type"] == "pageview")
    assert pageview["name"] == "pageview" and pageview["site"] == SITE
    assert pageview["path"] == path and pageview["hostname"] == "127.0.0.1"
    assert pageview["url"] == plausible_site[0] + path
    # Enriched like any event (and not taken for a bot): Chromium's client hints name it.
    assert pageview["browser"] in ("Chrome", "Chromium") and pageview["device_type"] == "Desktop"
    # Plausible's fetch sends no credentials: the visitor is counted cookieless.
    assert COOKIELESS_ID.match(pageview["visitor_id"]), pageview["visitor_id"]

    # A custom event with props, and one with revenue; the collector answers 202.
    assert track(page, "Signup", {"props": {"plan": "pro", "seats": "3"}}) == {"status": 202}
    assert track(page, "Purchase", {"revenue": {"amount": 15.99, "currency": "USD"},
                                    "props": {"sku": "A-1"}}) == {"status": 202}
    rows = visit.events(2, where=lambda r: r["type"] == "custom")
    # (Plausible's payload has no client time, so order by name, not by client_ts.)
    by_name = {r["name"]: r for r in rows}
    assert len(rows) == 2 and sorted(by_name) == ["Purchase", "Signup"], rows
    assert by_name["Signup"]["path"] == by_name["Purchase"]["path"] == path
    assert json.loads(by_name["Signup"]["props"]) == {"plan": "pro", "seats": "3"}
    assert json.loads(by_name["Purchase"]["props"]) == {"sku": "A-1"}
    assert json.loads(by_name["Purchase"]["revenue"]) == {"amount": "15.99", "currency": "USD"}
    assert by_name["Signup"]["revenue"] is None
    assert {r["visitor_id"] for r in rows} == {pageview["visitor_id"]}
    assert {r["session_id"] for r in rows} == {pageview["session_id"]}

    # Plausible's SPA support: a History API navigation is another pageview.
    page.evaluate("history.pushState({}, '', 'checkout')")
    rows = visit.events(2, where=lambda r: r["type"] == "pageview")
    assert sorted(r["path"] for r in rows) == [f"/p/{visit.token}/checkout", path]

    # Everything went to /api/event, as text/plain (no CORS preflight), nothing to /collect.
    sent = [r for r in visit.requests if r.url.startswith(visit.collector.origin)]
    assert sent and {r.url for r in sent} == {visit.collector.origin + "/api/event"}
    assert {r.headers.get("content-type") for r in sent} == {"text/plain"}


def test_plausibles_hash_based_routing_keeps_the_route(visit, plausible_site) -> None:
    page = open_page(visit, plausible_site, hashBasedRouting=True, autoCapturePageviews=True)
    visit.events(where=lambda r: r["type"] == "pageview")
    page.evaluate("location.hash = '#/settings'")
    rows = visit.events(2, where=lambda r: r["type"] == "pageview")
    assert sorted(r["url"] for r in rows) == [
        f"{plausible_site[0]}/p/{visit.token}/index.html",
        f"{plausible_site[0]}/p/{visit.token}/index.html#/settings",
    ]


TAGGED = """
<button id="signup" class="plausible-event-name=Signup plausible-event-plan=pro">Sign up</button>
<button id="buy" class="plausible-event-name=Purchase plausible-revenue-amount=9.99
  plausible-revenue-currency=EUR">Buy</button>
"""


def test_plausibles_tagged_elements_are_recorded(visit, plausible_site) -> None:
    # The npm tracker sends `"$":{}` for an element tagged with an event name but no
    # revenue (issue #11: that was a 400 and the event was lost); with revenue classes
    # it sends the amount as text.
    page = open_page(visit, plausible_site, body=TAGGED)
    visit.events(where=lambda r: r["type"] == "pageview")
    sent = []
    page.on("request", lambda r: sent.append(r.post_data) if r.url.endswith("/api/event") else None)
    page.click("#signup")
    page.click("#buy")
    rows = visit.events(2, where=lambda r: r["type"] == "custom")
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == ["Purchase", "Signup"], rows
    assert json.loads(by_name["Signup"]["props"]) == {"plan": "pro"} and by_name["Signup"]["revenue"] is None
    assert json.loads(by_name["Purchase"]["revenue"]) == {"amount": "9.99", "currency": "EUR"}
    assert any(json.loads(body).get("$") == {} for body in sent if body), sent
