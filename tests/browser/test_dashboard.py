"""The dashboard in real Chromium: log in, filter, change range, no console errors,
and an XSS corpus in event fields stays inert."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.browser.dashboard_page import settle
from tests.helpers import MovableClock, free_port, recent_step_us
from traceglider import demo_data
from traceglider.config import load
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

pytestmark = pytest.mark.browser
SITE = "demo.example"
TOKEN = "browser-token-0123456789"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = [
    "<img src=x onerror=window.__xss=1>",
    "\"><script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    "<svg onload=window.__xss=1>",
]


def _xss_rows(now_us: int) -> list[dict]:
    rows = []
    step = recent_step_us(now_us, len(XSS) + 1)
    for i, payload in enumerate(XSS):
        base = {"site": SITE, "received_at": now_us - (i + 1) * step, "visitor_id": f"x{i}",
                "hostname": SITE, "country": "DE", "device_type": "desktop", "browser": payload,
                "os": payload}
        rows.append({**base, "event_id": f"xss-pv-{i}", "type": "pageview", "name": "pageview",
                     "path": "/" + payload, "title": payload, "referrer": "https://e.example/" + payload,
                     "source": payload, "utm_campaign": payload})
        rows.append({**base, "event_id": f"xss-ev-{i}", "type": "custom", "name": payload,
                     "path": "/", "props": json.dumps({"k": payload})})
    return rows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn
    from fastapi import FastAPI

    from traceglider.dashboard.answers import build_answers
    from traceglider.dashboard.routes import dashboard_router
    from traceglider.stats.api import AppEngine, stats_router

    root = tmp_path_factory.mktemp("dash")
    storage = LocalStorage(root)
    now = time.time()
    demo_data.generate(storage, SITE, 15_000, days=30, seed=5, now=now)
    write_rows(storage, _xss_rows(int(now * 1_000_000)), "xss")
    settings = load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "k" * 32})
    clock = MovableClock()
    engine = AppEngine(settings, storage, clock)
    answers = build_answers(settings, engine, clock)
    SERVED.update(settings=settings, storage=storage, engine=engine, answers=answers, clock=clock)
    app = FastAPI()
    app.include_router(stats_router(settings, engine))
    app.include_router(dashboard_router(settings, storage, engine, answers))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)
    if answers is not None:
        answers.close()  # its refresher thread
    engine.close()


SERVED: dict[str, object] = {}


def _login(page: object, server: str) -> None:
    page.goto(server + "/dashboard")  # type: ignore[attr-defined]
    page.fill("#token", TOKEN)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector(".stat-value")  # type: ignore[attr-defined]
    page.wait_for_selector('[data-panel="pages"] .row')  # type: ignore[attr-defined]


def test_login_filter_range_and_no_console_errors(server: str, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
    resp = page.goto(server + "/dashboard")
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    page.fill("#token", "wrong")
    # the wrong token's 401 is logged by Chromium, as it should be: waited for, so that
    # it cannot arrive after the clear below and be taken for an error of the dashboard
    with page.expect_console_message(lambda m: m.type == "error" and "401" in m.text):
        page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#token").is_visible()
    assert [e for e in errors if "401" not in e] == []
    errors.clear()
    _login(page, server)
    page.wait_for_selector("#chart svg path.line")
    page.screenshot(path="/tmp/tg-dashboard.png", full_page=True)
    visitors_before = page.locator(".stat-value").first.text_content()

    page.locator('[data-panel="countries"] .row').first.click()  # click a row to filter
    page.wait_for_selector(".chip")
    settle(page)
    assert "country" in page.locator(".chip").first.text_content().lower()
    page.wait_for_function("v => document.querySelector('.stat-value').textContent !== v",
                           arg=visitors_before)

    page.locator('[data-panel="pages"] .row').first.click()  # a page filter shows navigation
    page.wait_for_selector('[data-panel="navigation"] h3')
    page.select_option("#period", "7d")
    settle(page)
    assert "period=7d" in page.url
    page.screenshot(path="/tmp/tg-dashboard-filtered.png", full_page=True)

    page.click("#theme")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => innerWidth === 390")
    page.screenshot(path="/tmp/tg-dashboard-phone-dark.png", full_page=True)
    assert errors == []
    context.close()


def test_xss_corpus_stays_inert(server: str, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
    _login(page, server)
    page.select_option("#period", "day")
    settle(page)
    for prop in ("Entry", "Exit"):
        page.locator('[data-panel="pages"] .tab', has_text=prop).click()
    page.locator('[data-panel="devices"] .tab', has_text="Browsers").click()
    page.locator('[data-panel="sources"] .tab', has_text="UTM campaign").click()
    settle(page)
    text = page.locator("body").inner_text()
    assert "<img src=x onerror=window.__xss=1>" in text  # shown as text
    evil = page.locator('[data-panel="events"] .row', has_text="<svg onload")
    evil.first.click()
    page.wait_for_selector('[data-panel="events"] .props h4')
    settle(page)
    page.screenshot(path="/tmp/tg-dashboard-xss.png", full_page=True)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script, main svg:not(#chart svg) *[onload]").count() == 0
    assert errors == []
    context.close()


def test_share_links_are_read_only_and_revocable(server: str, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, server)
    made = page.evaluate("""async () => (await fetch('/dashboard/api/shares?site_id=demo.example',
                              {method: 'POST'})).json()""")
    assert len(made["id"]) >= 32  # 192 random bits, base64url
    viewer = browser.new_context()  # type: ignore[attr-defined]
    vpage = viewer.new_page()
    vpage.goto(server + made["url"])
    vpage.wait_for_selector(".stat-value")
    assert vpage.locator("#share").is_hidden()
    status = vpage.evaluate("async () => (await fetch('/dashboard/api/shares', {method: 'POST'})).status")
    assert status == 403
    page.evaluate(f"async () => fetch('/dashboard/api/shares/{made['id']}', {{method: 'DELETE'}})")
    vpage.reload()
    assert vpage.locator("#token").is_visible()  # revoked: back to the login
    viewer.close()
    context.close()
    assert datetime.now(UTC)


def test_the_default_view_asks_exactly_what_serve_prepares(server: str, browser: object) -> None:
    """The page's requests are `panels.default_requests`, and once prepared none of them
    is computed while the browser waits; the page says how old the answers are."""
    from urllib.parse import parse_qsl, urlsplit

    from traceglider.dashboard.answers import Answers, prepare_dashboards
    from traceglider.dashboard.panels import PREPARED_KINDS, default_requests
    from traceglider.stats.api import AppEngine
    from traceglider.stats.service import site_config

    settings, storage, engine = SERVED["settings"], SERVED["storage"], SERVED["engine"]
    answers, clock = SERVED["answers"], SERVED["clock"]
    assert isinstance(answers, Answers) and isinstance(engine, AppEngine) and isinstance(clock, MovableClock)
    assert prepare_dashboards(settings, storage, answers, engine) == [SITE]  # type: ignore[arg-type]
    answers.refresh_round()  # what the background thread does; here done before the page asks
    computed = answers.computed
    clock.advance(6)  # old enough for the page to show the age (5 s), without waiting for it

    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    asked: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def note(request: object) -> None:
        url = urlsplit(request.url)  # type: ignore[attr-defined]
        kind = url.path.removeprefix("/dashboard/api/")
        if url.path.startswith("/dashboard/api/") and kind in PREPARED_KINDS:
            asked.append((kind, tuple(sorted(parse_qsl(url.query)))))

    page.on("request", note)
    _login(page, server)
    settle(page)
    expected = default_requests(SITE, lambda s: site_config(engine(), s))
    assert sorted(asked) == sorted((k, tuple(sorted(p.items()))) for k, p in expected)
    assert answers.computed == computed  # every panel came ready
    assert page.locator("#age").text_content().startswith("updated ")
    page.screenshot(path="/tmp/tg-dashboard-ready.png")
    context.close()


def test_a_503_that_says_when_is_retried_once_and_a_second_one_shown(server: str, browser: object) -> None:
    # The server answers 503 with Retry-After when files were replaced under a query
    # (compaction) or memory is short for a moment: the page asks again once.
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    refused: dict[str, int] = {"aggregate": 0, "goals": 0}
    busy = '{"error": "the data changed while it was read; please try again"}'

    def answer(route: object, kind: str, times: int) -> None:
        if refused[kind] < times:
            refused[kind] += 1
            route.fulfill(status=503, headers={"Retry-After": "1"}, body=busy,  # type: ignore[attr-defined]
                          content_type="application/json")
        else:
            route.continue_()  # type: ignore[attr-defined]

    page.route("**/dashboard/api/aggregate?*", lambda route: answer(route, "aggregate", 1))
    page.route("**/dashboard/api/goals?*", lambda route: answer(route, "goals", 99))
    _login(page, server)
    page.wait_for_function("() => document.querySelector('.stat-value').textContent.trim().length > 0")
    assert refused["aggregate"] == 1  # refused once, then answered: figures on the page
    page.wait_for_function("() => !document.getElementById('error').hidden")  # goals: refused twice
    assert refused["goals"] == 2
    assert "please try again" in page.locator("#error").text_content()
    context.close()
