"""The dashboard's panels and interactions in real Chromium: the chart (round ticks,
comparison, interval, drawn at its own size), numbers, countries, details views with
search, sort and CSV, site switching, the URL, keyboard shortcuts, realtime, Web
Vitals, JavaScript errors (the XSS corpus), environment, goals and funnels managed
from the page, and the phone layout. One server for the module; every test checks
that the page logged no console error."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.dashboard_page import settle
from tests.helpers import free_port, recent_step_us, row
from traceglider import demo_data
from traceglider.config import load
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

pytestmark = pytest.mark.browser
DEMO = "demo.example"
LAB = "lab.example"  # hand-made rows, no goals configured
TOKEN = "browser-token-0123456789"
XSS = [
    "<img src=x onerror=window.__xss=1>",
    "\"><script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    "<svg onload=window.__xss=1>",
    "=HYPERLINK(\"http://evil.example\")",
]
# LCP samples of /demo/app.html: p75 (linear) 3500 ms, 2 good, 1 needs improvement, 1 poor
LCP = [1000.0, 2000.0, 3000.0, 5000.0]
PAGES = ["/demo/app.html", "/demo/app/billing", "/demo/app/settings"]
SHOTS = "/tmp/tg-dashboard-panels"


def _lab_rows(now_us: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    minute = recent_step_us(now_us, 9)  # rows go back 8 steps
    for i in range(6):  # six visitors in the last few minutes: realtime sees them
        env = {"visitor_id": f"lab-{i}", "country": "DE" if i % 2 else "FR",
               "device_type": "mobile" if i % 2 else "desktop",
               "screen_width": 390 if i % 2 else 1920, "language": "de-DE" if i % 2 else "fr-FR",
               "timezone": "Europe/Berlin" if i % 2 else "Europe/Paris", "browser": "Firefox", "os": "Linux"}
        at = now_us - (i + 2) * minute
        for j, path in enumerate(PAGES):
            rows.append(row(f"lab-pv-{i}-{j}", LAB, at + j * 1_000_000, path=path, hostname=LAB, **env))
        if i < len(LCP):
            rows.append(row(f"lab-lcp-{i}", LAB, at + 500_000, type="vital", name="vital", path=PAGES[0],
                            metric_name="LCP", metric_value=LCP[i], **env))
        rows.append(row(f"lab-cls-{i}", LAB, at + 600_000, type="vital", name="vital", path=PAGES[1],
                        metric_name="CLS", metric_value=0.05 if i < 3 else 0.3, **env))
        payload = XSS[i % len(XSS)]
        rows.append(row(f"lab-err-{i}", LAB, at + 700_000, type="error", name="JS Error", path=PAGES[1],
                        props=json.dumps({"message": payload, "source": "https://x.example/" + payload}), **env))
    rows.append(row("lab-err-dup", LAB, now_us - 3 * minute, type="error", name="JS Error", path=PAGES[2],
                    props=json.dumps({"message": XSS[0]}), visitor_id="lab-0"))
    # attacker-controlled text in a page path, a language and a time zone
    evil = {"visitor_id": "lab-0", "screen_width": 1920, "language": XSS[3], "timezone": XSS[1]}
    rows.append(row("lab-evil-pv", LAB, now_us - 4 * minute, path="/x" + XSS[0], **evil))
    rows.append(row("lab-evil-vital", LAB, now_us - 4 * minute + 1, type="vital", name="vital",
                    path="/x" + XSS[0], metric_name="TTFB", metric_value=900.0, **evil))
    rows.append(row("lab-custom", LAB, now_us - 3 * minute, type="custom", name="Signup", path=PAGES[2],
                    visitor_id="lab-1"))
    return rows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn
    from fastapi import FastAPI

    from traceglider.dashboard.routes import dashboard_router
    from traceglider.stats.api import AppEngine, stats_router

    root = tmp_path_factory.mktemp("dash-panels")
    storage = LocalStorage(root)
    now = time.time()
    demo_data.generate(storage, DEMO, 8_000, days=60, seed=9, now=now)  # two periods: a comparison
    write_rows(storage, _lab_rows(int(now * 1_000_000)), "lab")
    settings = load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "k" * 32,
                         "TG_DASHBOARD_REFRESH": "0"})
    app = FastAPI()
    engine = AppEngine(settings, storage)
    app.include_router(stats_router(settings, engine))
    app.include_router(dashboard_router(settings, storage, engine))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{srv.config.port}"
    srv.should_exit = True
    thread.join(5)
    engine.close()


Page = Any


@pytest.fixture
def open_page(server: str, browser: Any) -> Iterator[Callable[..., Page]]:
    """`open_page(fragment, allow=(...), **context options)`: a logged-in dashboard,
    loaded; at the end, no console error or page error on any of them (but those with
    an `allow` text: a 400 the test asks for, which Chromium logs)."""
    contexts, errors = [], []

    def make(fragment: str = "", allow: tuple[str, ...] = (), **options: Any) -> Page:
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not any(a in m.text for a in allow) else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("dialog", lambda d: (errors.append("dialog " + d.message), d.dismiss()))
        page.goto(server + "/dashboard")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector(".stat-value")
        if fragment:
            page.goto(server + "/dashboard#" + fragment)
            page.reload()
        settle(page)
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], f"console errors: {errors}"


def panel(page: Page, name: str) -> Any:
    return page.locator(f'[data-panel="{name}"]')


def test_chart_round_ticks_comparison_interval_and_real_size(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    ticks = [t.text_content() for t in page.locator("#chart svg text[text-anchor=end]").all()]
    values = [float(t.replace("k", "e3")) for t in ticks]
    step = values[1] - values[0]
    assert values[0] == 0 and len(values) >= 3
    assert all(abs((b - a) - step) < 1e-9 for a, b in zip(values, values[1:], strict=False))
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert mantissa in (1, 2, 2.5, 5), ticks
    assert page.locator("#chart svg path.line-prev").count() == 1  # the 30 days before
    assert page.locator("#legend").is_visible()
    assert page.locator("#chart svg[preserveAspectRatio]").count() == 0
    # drawn at the box's size: one SVG unit is one CSS pixel, text is never stretched
    box = page.evaluate("(() => { const s = document.querySelector('#chart svg'); const r = s.getBoundingClientRect();"
                        " return [r.width, Number(s.getAttribute('width'))]; })()")
    assert abs(box[0] - box[1]) < 1
    days = page.locator("#chart svg rect.hit").count()
    page.select_option("#interval", "week")
    page.wait_for_function("() => document.querySelectorAll('#chart svg rect.hit').length < 10")
    assert "interval=week" in page.url
    assert page.locator("#chart svg rect.hit").count() < days
    page.uncheck("#compare")
    page.wait_for_function("() => document.querySelectorAll('#chart svg path.line-prev').length === 0")
    assert "compare=off" in page.url
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => Math.abs(document.querySelector('#chart svg').getBoundingClientRect().width"
                           " - Number(document.querySelector('#chart svg').getAttribute('width'))) < 1"
                           " && Number(document.querySelector('#chart svg').getAttribute('width')) < 400")


def test_numbers_countries_and_devices_read_well(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    numbers = page.locator(".num, .stat-value").all_text_contents()
    plain = [n for n in numbers if re.fullmatch(r"\d{4,}", n)]
    assert plain == [], f"long numbers shown without k: {plain}"
    assert any(n.endswith("k") for n in numbers)
    scroll = panel(page, "pages").locator(".num-scroll_depth").all_text_contents()
    assert scroll and all(s.endswith("%") for s in scroll)
    countries = panel(page, "countries").locator(".label").all_text_contents()
    # the flag emoji where the fonts draw it (headless Chromium without an emoji font: none)
    flags = page.evaluate("() => window.TG.flagsDrawn")
    assert ("🇺🇸 United States" if flags else "United States") in countries
    assert ("🇩🇪 Germany" if flags else "Germany") in countries
    assert page.evaluate("() => [window.TG.flag('DE'), window.TG.flag('xx')]") == ["🇩🇪", ""]
    devices = panel(page, "devices").locator(".label").all_text_contents()
    assert devices and all(d[0].isupper() for d in devices)
    panel(page, "countries").locator(".tab", has_text="Cities").click()  # the bundled database: no cities
    panel(page, "countries").locator(".empty", has_text="City database").wait_for()
    panel(page, "countries").locator(".tab", has_text="Countries").click()
    panel(page, "countries").locator(".row", has_text="Germany").wait_for()
    # a country's filter chip shows its name, the URL its code
    panel(page, "countries").locator(".row", has_text="Germany").click()
    page.wait_for_selector(".chip")
    assert "Germany" in page.locator(".chip").text_content()
    assert "visit%3Acountry%3D%3DDE" in page.url


def test_no_change_is_shown_against_a_period_without_data(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}")
    changes = page.locator(".stat-change").all_text_contents()
    assert changes and not any("%" in c for c in changes)
    assert "no earlier data" in changes[0]


def test_details_view_searches_sorts_and_downloads_what_it_shows(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    panel(page, "pages").locator(".more", has_text="Details").click()
    rows = page.locator("#details-rows tbody tr")
    page.wait_for_function("() => document.querySelectorAll('#details-rows tbody tr').length > 10")
    assert "details=pages" in page.url
    page.fill("#details-search", "blog")
    page.wait_for_function("() => [...document.querySelectorAll('#details-rows tbody tr')].length > 0 &&"
                           " [...document.querySelectorAll('#details-rows tbody tr:not(.more-row) td:first-child')]"
                           ".every(td => td.textContent.includes('blog'))")
    count = int(page.locator("#details-count").text_content().split()[0])
    assert count > 10  # from the long tail, beyond the card's ten
    if count > 100:  # the first hundred drawn, the rest on request
        assert rows.count() == 101
        page.locator("#details-rows button", has_text=f"Show all {count} rows").click()
    page.wait_for_function(f"() => document.querySelectorAll('#details-rows tbody tr').length === {count}")
    assert page.locator("#details-rows .more-row").count() == 0
    page.locator("#details-rows th button", has_text="Visitors").click()  # most first
    page.locator("#details-rows th button", has_text="Visitors").click()  # then fewest first
    shown = [int(v) for v in page.locator("#details-rows tbody tr td:nth-child(2)").all_text_contents()]
    assert shown == sorted(shown) and shown[0] < shown[-1]
    with page.expect_download() as info:
        page.click("#details-csv")
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Page,Visitors,Views,Scroll"
    assert len(lines) == count + 1
    first = page.locator("#details-rows tbody tr").first.locator("td").all_text_contents()
    assert lines[1].split(",")[0] == first[0] and lines[1].split(",")[1] == first[1]
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('details').hidden")
    assert "details=" not in page.url


def test_a_details_search_answered_after_a_later_one_is_not_shown(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    panel(page, "pages").locator(".more", has_text="Details").click()
    page.wait_for_selector("#details-rows:not(.loading) tbody tr")
    # every JSON answer the page has read, counted once the page's own code had it
    page.evaluate("""() => { window.__answers = 0; const json = Response.prototype.json;
        Response.prototype.json = function () {
          return json.call(this).then(v => { setTimeout(() => { window.__answers++; }); return v; }); }; }""")
    held: list[Any] = []
    pattern = "**/dashboard/api/breakdown?*"
    page.route(pattern, lambda route: held.append(route) if "zzz" in route.request.url else route.continue_())
    page.fill("#details-search", "zzz")  # nothing matches: an empty table, if it were shown
    while not held:
        page.wait_for_timeout(20)
    page.fill("#details-search", "blog")
    blog = ("() => !document.querySelector('#details-rows.loading') && document.querySelectorAll("
            "'#details-rows tbody tr').length > 0 && [...document.querySelectorAll("
            "'#details-rows tbody tr:not(.more-row) td:first-child')].every(td => td.textContent.includes('blog'))")
    page.wait_for_function(blog)
    count = page.locator("#details-count").text_content()
    answers = page.evaluate("window.__answers")
    held[0].continue_()  # the first search's answer, now late
    page.wait_for_function("n => window.__answers > n", arg=answers)
    page.unroute(pattern)
    assert page.evaluate(blog) and page.locator("#details-count").text_content() == count
    assert page.input_value("#details-search") == "blog"


def test_every_list_has_a_details_view(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}&f=event%3Apage%3D%3D%2Fpricing")
    for name in ("pages", "sources", "countries", "devices", "goals", "funnel", "events", "navigation",
                 "vitals", "environment"):
        panel(page, name).locator(".more", has_text="Details").click()
        page.wait_for_selector("#details-rows:not(.loading) tbody tr")
        assert page.locator("#details-title").text_content()
        page.click("#details-close")
        page.wait_for_function("() => document.getElementById('details').hidden")


def test_switching_site_never_shows_the_last_sites_figures(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    demo_visitors = page.locator(".stat-value").first.text_content()
    # The new site's headline is held back; meanwhile every figure under its name is
    # either a placeholder or its own.
    held: list[Any] = []
    pattern = f"**/dashboard/api/aggregate?site_id={LAB}*"
    page.route(pattern, lambda route: held.append(route))
    page.evaluate("""() => { window.__seen = []; new MutationObserver(() => {
        const v = document.querySelector('.stat-value');
        window.__seen.push([document.getElementById('site').value, v ? v.textContent : '']);
      }).observe(document.getElementById('headline'), {subtree: true, childList: true, characterData: true}); }""")
    page.select_option("#site", LAB)
    page.wait_for_function("() => document.querySelector('.stat-value').textContent === '…'")
    while len(held) < 2:  # the period's and the previous period's
        page.wait_for_timeout(20)
    assert page.locator("body[aria-busy=true]").count() == 1  # what settle() waits out
    for route in held:
        route.continue_()
    page.unroute(pattern)
    settle(page)
    lab_visitors = page.locator(".stat-value").first.text_content()
    assert lab_visitors != demo_visitors
    seen = page.evaluate("window.__seen")
    assert seen and all(v in ("…", lab_visitors) for site, v in seen if site == LAB), seen
    assert any(v == "…" for _, v in seen)  # a loading state was shown


def test_a_tabs_answer_that_comes_after_the_view_changed_is_dropped_quietly(
        open_page: Callable[..., Page]) -> None:
    # A tab picked, then a filter before the tab's answer came: that answer is of an
    # old view, and is dropped without an uncaught error (none logged: see open_page).
    page = open_page(f"site={DEMO}")
    uncaught: list[str] = []
    page.on("pageerror", lambda e: uncaught.append(str(e)))
    held: list[Any] = []
    pattern = "**/dashboard/api/breakdown?*property=visit%3Abrowser*"
    page.route(pattern, lambda route: held.append(route))
    panel(page, "devices").locator(".tab", has_text="Browsers").click()
    while not held:
        page.wait_for_timeout(20)
    panel(page, "countries").locator(".row").first.click()  # another view: all redrawn
    page.wait_for_selector(".chip")
    while len(held) < 2:  # the new view's own Browsers tab
        page.wait_for_timeout(20)
    held[0].continue_()
    held[0].request.response()  # the old view's answer, in the page before the new one's
    held[1].continue_()
    page.unroute(pattern)
    settle(page)
    assert uncaught == []
    assert panel(page, "devices").locator(".tab.on").text_content() == "Browsers"


def test_the_url_reproduces_the_view(open_page: Callable[..., Page], server: str) -> None:
    page = open_page(f"site={DEMO}")
    page.select_option("#period", "7d")
    settle(page)
    page.select_option("#interval", "hour")
    page.select_option("#metric", "pageviews")
    panel(page, "devices").locator(".tab", has_text="Browsers").click()
    panel(page, "countries").locator(".row").first.click()
    settle(page)
    panel(page, "sources").locator(".more", has_text="Details").click()
    page.wait_for_selector("#details-rows:not(.loading) tbody tr")
    url = page.url
    other = page.context.new_page()
    other.goto(url)
    settle(other)
    assert other.locator("#period").input_value() == "7d"
    assert other.locator("#interval").input_value() == "hour"
    assert other.locator("#metric").input_value() == "pageviews"
    assert panel(other, "devices").locator(".tab.on").text_content() == "Browsers"
    assert "country" in other.locator(".chip").text_content().lower()
    other.wait_for_selector("#details-rows:not(.loading) tbody tr")
    assert other.locator("#details-title").text_content().startswith("Sources")
    other.close()


def test_keyboard_shortcuts_pick_the_range(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={DEMO}")
    for key, period in (("w", "7d"), ("m", "month"), ("t", "30d"), ("d", "day")):
        page.keyboard.press(key)
        page.wait_for_function(f"() => location.hash.includes('period={period}')")
    page.keyboard.press("e")
    page.wait_for_function("() => document.getElementById('period').value === 'yesterday'")
    page.keyboard.press("ArrowLeft")  # the day before yesterday
    page.wait_for_function("() => document.getElementById('period').value === 'day'")
    page.keyboard.press("c")
    page.wait_for_selector("#from", state="visible")
    page.focus("#from")  # typing in a field is typing, not a shortcut
    page.keyboard.press("w")
    settle(page)
    assert "period=custom" in page.url


def test_realtime_shows_the_last_30_minutes_by_minute(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}")
    page.keyboard.press("r")
    page.wait_for_function("() => document.querySelectorAll('#chart svg rect.hit').length === 30")
    settle(page)
    assert "period=realtime" in page.url
    assert page.locator(".stat-label").first.text_content() == "Current visitors"
    assert page.locator(".stat-value").nth(1).text_content() == "6"  # unique visitors, 30 minutes
    assert "Visitors in the last 30 minutes" in page.locator("#chart-title").text_content()
    labels = panel(page, "pages").locator(".label").all_text_contents()
    assert set(PAGES) <= set(labels)
    assert page.locator("#chart svg path.line-prev").count() == 0


def test_web_vitals_per_metric_and_page_and_filter_from_a_row(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}&period=day")
    vitals = panel(page, "vitals")
    lcp = vitals.locator(".vital", has_text="LCP")
    assert lcp.locator(".vital-value").text_content() == "3.5 s"
    assert "4 samples" in lcp.text_content()
    assert lcp.locator(".shares").get_attribute("title") == "good 50%, needs improvement 25%, poor 25%"
    row_ = vitals.locator(".row", has_text="/demo/app.html")
    assert row_.locator(".num-p75").text_content() == "3.5 s"
    assert row_.locator(".num-good").text_content() == "50%"
    vitals.locator(".vital", has_text="CLS").click()
    page.wait_for_function("() => location.hash.includes('tab.vitals=CLS')")
    vitals.locator(".row", has_text="/demo/app/billing").wait_for()
    assert vitals.locator(".row").count() == 1
    vitals.locator(".row", has_text="/demo/app/billing").click()
    page.wait_for_selector(".chip")
    settle(page)
    assert "/demo/app/billing" in page.locator(".chip").text_content()
    # filtered to that page: no LCP samples there
    assert "no samples" in vitals.locator(".vital", has_text="LCP").text_content()


def test_errors_show_the_xss_corpus_as_text_and_filter(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}&period=day")
    errors = panel(page, "errors")
    messages = errors.locator(".label").all_text_contents()
    assert set(messages) == set(XSS)
    top = errors.locator(".row").first
    assert top.locator(".label").text_content() == XSS[0]
    assert top.locator(".num").all_text_contents()[:3] == ["3", "2", "2"]  # errors, visitors, pages
    assert top.locator(".num-last_seen").text_content().endswith("ago")
    errors.locator(".more", has_text="Details").click()
    page.wait_for_selector("#details-rows:not(.loading) tbody tr")
    with page.expect_download() as info:
        page.click("#details-csv")
    csv_text = Path(info.value.path()).read_text(encoding="utf-8")
    assert "'=HYPERLINK" in csv_text  # a spreadsheet does not run it
    page.click("#details-close")
    top.click()  # its pages
    page.wait_for_function("() => location.hash.includes('tab.errors=page')")
    errors.locator(".row", has_text="/demo/app/settings").click()
    page.wait_for_selector(".chip")
    settle(page)
    # and through the other new panels and their details views
    page.goto(page.url.split("#")[0] + f"#site={LAB}&period=day&tab.vitals=TTFB&tab.environment=language")
    page.reload()
    settle(page)
    assert panel(page, "vitals").locator(".label", has_text=XSS[0]).count() == 1
    assert panel(page, "environment").locator(".label", has_text=XSS[3]).count() == 1
    for name in ("vitals", "environment"):
        panel(page, name).locator(".more", has_text="Details").click()
        page.wait_for_selector("#details-rows:not(.loading) tbody tr")
        page.click("#details-close")
    panel(page, "environment").locator(".tab", has_text="Time zones").click()
    panel(page, "environment").locator(".label", has_text=XSS[1]).wait_for()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script, main [onload], main [onerror]").count() == 0


def test_environment_panel_and_empty_states(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}&period=day")
    env = panel(page, "environment")
    assert set(env.locator(".label").all_text_contents()) == {"Mobile", "Desktop"}
    env.locator(".tab", has_text="Languages").click()
    env.locator(".label", has_text="de-DE").wait_for()
    env.locator(".tab", has_text="Time zones").click()
    env.locator(".label", has_text="Europe/Berlin").wait_for()
    assert "Pick a page in Top pages" in panel(page, "navigation").text_content()
    assert "No goals yet" in panel(page, "goals").text_content()
    assert "No funnel yet" in panel(page, "funnel").text_content()
    page.click("#period")
    page.select_option("#period", "yesterday")
    settle(page)
    assert "No data in this period" in panel(page, "pages").text_content()


def test_screen_language_and_time_zone_rows_filter_the_dashboard(open_page: Callable[..., Page]) -> None:
    page = open_page(f"site={LAB}&period=day")

    def shows_only(label: str) -> None:  # the panel redrawn for the new filter, and at rest
        page.wait_for_function("label => [...document.querySelectorAll('[data-panel=\"environment\"] .label')]"
                               ".map(e => e.textContent).join() === label", arg=label)
        settle(page)

    env = panel(page, "environment")
    env.locator(".label", has_text="Mobile").click()
    page.wait_for_selector(".chip")
    assert "screen" in page.locator(".chip").text_content().lower()
    assert "visit%3Ascreen%3D%3DMobile" in page.url
    shows_only("Mobile")
    env.locator(".tab", has_text="Languages").click()
    shows_only("de-DE")
    env.locator(".label", has_text="de-DE").click()
    page.wait_for_function("() => location.hash.includes('visit%3Alanguage%3D%3Dde-DE')")
    shows_only("de-DE")
    assert page.locator(".chip").count() == 2
    env.locator(".tab", has_text="Time zones").click()
    shows_only("Europe/Berlin")
    env.locator(".label", has_text="Europe/Berlin").click()
    page.wait_for_function("() => decodeURIComponent(location.hash).includes('visit:timezone==Europe/Berlin')")
    shows_only("Europe/Berlin")
    assert page.locator(".chip").count() == 3


def test_goals_and_funnels_are_managed_from_the_page(open_page: Callable[..., Page], server: str) -> None:
    page = open_page(f"site={LAB}&period=day", allow=("status of 400", "status of 415"))
    goals = panel(page, "goals")
    assert "No goals yet" in goals.text_content()  # no configuration: no goal rows at all
    goals.locator("button", has_text="Manage goals").click()
    box = page.locator("#manage")
    box.locator("input[name=value]").fill("pricing")
    box.locator("button[type=submit]").click()
    box.locator(".form-error", has_text="starts with /").wait_for()  # the server's reason
    box.locator("select[name=kind]").select_option("event")
    box.locator("input[name=value]").fill("vital")
    box.locator("button[type=submit]").click()
    box.locator(".form-error", has_text="measures by itself").wait_for()
    box.locator("select[name=kind]").select_option("page")
    box.locator("input[name=value]").fill("/demo/app/**")
    box.locator("button[type=submit]").click()
    box.locator(".manage-item", has_text="Visit /demo/app/**").wait_for()
    box.locator("select[name=kind]").select_option("event")
    box.locator("input[name=value]").fill("Signup")
    box.locator("button[type=submit]").click()
    box.locator(".manage-item", has_text="Signup").wait_for()
    box.locator(".manage-item", has_text="Signup").locator("button", has_text="Edit").click()
    box.locator("input[name=value]").fill("Sign up")
    box.locator("button[type=submit]").click()
    box.locator(".manage-item", has_text="Sign up").wait_for()
    page.click("#manage-close")
    settle(page)
    visit_goal = goals.locator(".row", has_text="Visit /demo/app/**")
    assert visit_goal.locator(".num").first.text_content() == "6"  # counted: six visitors
    assert goals.locator(".row", has_text="Sign up").locator(".num").first.text_content() == "0"
    goals.locator("button", has_text="Manage goals").click()
    item = box.locator(".manage-item", has_text="Sign up")
    item.locator("button", has_text="Delete").click()
    item.locator("button", has_text="Delete?").click()  # asked twice
    box.locator(".manage-item", has_text="Sign up").wait_for(state="detached")
    page.click("#manage-close")

    panel(page, "funnel").locator("button", has_text="Manage funnels").click()
    box.locator("input[name=name]").fill("App")
    box.locator("input[name=step]").first.fill("Visit /demo/app.html")
    box.locator("button[type=submit]").click()
    box.locator(".form-error", has_text="2 to 8 steps").wait_for()
    box.locator("input[name=step]").nth(1).fill("Visit /demo/app/billing")
    box.locator("button", has_text="+ Step").click()
    box.locator("input[name=step]").nth(2).fill("Visit /demo/app/settings")
    box.locator("button[type=submit]").click()
    box.locator(".manage-item", has_text="App").wait_for()
    page.click("#manage-close")
    settle(page)
    steps = panel(page, "funnel").locator(".row")
    assert steps.count() == 3
    assert steps.nth(2).locator(".num").first.text_content() == "6"
    # a form posted from another site (no JSON body) changes nothing
    status = page.evaluate(f"""async () => (await fetch('/dashboard/api/site/goals?site_id={LAB}',
        {{method: 'POST', headers: {{'Content-Type': 'text/plain'}}, body: '{{"goal": "x"}}'}})).status""")
    assert status == 415


def test_the_manage_buttons_show_when_their_script_arrives_after_the_panels(
        open_page: Callable[..., Page]) -> None:
    # Both scripts are deferred: dashboard.js starts drawing as soon as it has run, and
    # manage.js may come later (a slow connection, a loaded server). Held back here
    # until the goals and funnel cards are drawn, it must still give them their buttons.
    page = open_page(f"site={LAB}&period=day")
    held: list[Any] = []
    page.route("**/dashboard/static/manage.js", lambda route: held.append(route))
    page.reload(wait_until="commit")
    while not held:
        page.wait_for_timeout(20)
    drawn = "n => !!document.querySelector(`[data-panel=\"${n}\"] .card-foot`)"
    page.wait_for_function(drawn, arg="goals")
    page.wait_for_function(drawn, arg="funnel")
    assert page.locator("button.manage").count() == 0  # the race, as a slow load has it
    held[0].continue_()
    panel(page, "goals").locator("button", has_text="Manage goals").wait_for()
    panel(page, "funnel").locator("button", has_text="Manage funnels").wait_for()
    settle(page)
    assert page.locator("button.manage").count() == 2
    panel(page, "goals").locator("button", has_text="Manage goals").click()
    page.locator("#manage-title", has_text=f"Goals of {LAB}").wait_for()
    page.click("#manage-close")
    page.wait_for_function("() => document.getElementById('manage').hidden")
    settle(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_layout_tells_paths_apart_and_keeps_headers_in_cards(
        open_page: Callable[..., Page], scheme: str) -> None:
    page = open_page(f"site={LAB}&period=day", viewport={"width": 390, "height": 844}, color_scheme=scheme,
                     is_mobile=True)
    labels = panel(page, "pages").locator(".label")
    for path in PAGES:
        label = labels.filter(has_text=path).first
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth && e.textContent") == path
        assert label.is_visible()
    overflowing = page.evaluate("""() => [...document.querySelectorAll('.card-head, .card, .headline, .top')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className + ':' + e.textContent.slice(0, 40))""")
    assert overflowing == []
    page.screenshot(path=f"{SHOTS}-phone-{scheme}.png", full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_desktop_screenshots(open_page: Callable[..., Page], scheme: str) -> None:
    page = open_page(f"site={DEMO}", color_scheme=scheme)
    overflowing = page.evaluate("""() => [...document.querySelectorAll('.card-head, .card')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className)""")
    assert overflowing == []
    page.screenshot(path=f"{SHOTS}-desktop-{scheme}.png", full_page=True)
