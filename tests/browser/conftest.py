"""Fixtures for the tracker's browser tests: one real collector, one page server on
another loopback port (cross-origin, as in production) and one headless Chromium,
each started once per session; every test gets a fresh browser context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_sync
import pyarrow.parquet as pq
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).with_name("pages")
SITE = "tracker.test"
# The page origin (127.0.0.1) must be an accepted site for the collector's origin check.
SITES = f"127.0.0.1,{SITE},demo.traceglider.local"
CHROMIUM = os.environ.get("TG_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium says "HeadlessChrome" in its user agent, which the bot filter drops.
# A browser-wide flag, not a context option: a beacon sent while a page unloads leaves
# with the browser's own user agent, not the context's.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/150.0.0.0 Safari/537.36")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Without this navigator.webdriver is true and the collector rightly drops us as a bot.
    "--disable-blink-features=AutomationControlled",
    f"--user-agent={USER_AGENT}",
]
# What a strict site allows: scripts and connections to the collector, nothing else.
SETTLED = "?tg-settled="  # `Visit.settle`'s own requests
CSP = "default-src 'none'; script-src {c}; connect-src {c}; style-src 'unsafe-inline'"


@dataclass
class Collector:
    origin: str
    storage: Path
    process: subprocess.Popen[bytes]
    _seen: dict[Path, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Every stored event so far (files are immutable once renamed into place)."""
        for path in sorted(self.storage.glob("events/site=*/date=*/*.parquet")):
            if path not in self._seen:
                try:
                    table = pq.read_table(path)
                except (OSError, ValueError):
                    continue  # still being written
                site = path.parent.parent.name.removeprefix("site=")
                self._seen[path] = [dict(r, site=site) for r in table.to_pylist()]
        return [row for rows in self._seen.values() for row in rows]

    def events(self, token: str, count: int = 1, timeout: float = 6.0,
               where: Callable[[dict[str, Any]], bool] = lambda r: True,
               settle: float = 0.0, sleep: Callable[[float], None] = time.sleep,
               ) -> list[dict[str, Any]]:
        """Wait until at least `count` events of the test (`token` in the path) match
        `where`; then wait `settle` seconds more so that extra, unwanted events show."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.rows() if token in (r.get("path") or "") and where(r)]
            if len({r["event_id"] for r in found}) >= count or time.monotonic() > deadline:
                break
            sleep(0.1)
        if settle:
            sleep(settle)
            found = [r for r in self.rows() if token in (r.get("path") or "") and where(r)]
        # Delivery is at least once (a request cancelled by a navigation after it
        # arrived goes again in the beacon); readers count each event id once, as here.
        unique = {r["event_id"]: r for r in found}
        return sorted(unique.values(), key=lambda r: (r.get("client_ts") or 0, r["event_id"]))


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    port = free_port()
    storage = tmp_path_factory.mktemp("tg-storage")
    # no maintenance round: tests read the files this server writes while it runs
    env = dict(os.environ, TG_FLUSH_SECONDS="0.2", TG_SITES=SITES, TG_RATE_LIMIT="0",
               TG_LOG_LEVEL="WARNING", TG_COMPACT_SECONDS="0")
    env.pop("TG_CONFIG", None)
    log = open(storage.parent / "collector.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "traceglider", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--storage", str(storage)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(origin + "/healthz", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            pytest.fail("the collector did not start:\n"
                        + (storage.parent / "collector.log").read_text(errors="replace")[-3000:])
        time.sleep(0.1)
    yield Collector(origin, storage, process)
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


class PageHandler(SimpleHTTPRequestHandler):
    """Serves tests/browser/pages under /t/<token>/, so every test's events carry
    its own token in their path; fills in the collector's origin ({{C}}) and another
    origin ({{OTHER}}); and sends a strict
    Content-Security-Policy with pages whose name starts with "csp"."""

    collector_origin = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = self.path.split("?", 1)[0].split("/")
        if self.path.startswith("/favicon.ico"):
            self.send_response(204)
            self.end_headers()
            return
        if len(parts) < 4 or parts[1] != "t":
            self.send_error(404)
            return
        name = "/".join(parts[3:]) or "index.html"
        file = (PAGES / name).resolve()
        if PAGES not in file.parents or not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        kind = self.guess_type(str(file))
        if file.suffix == ".html":
            body = body.replace(b"{{C}}", self.collector_origin.encode())
            # Another origin on loopback, for links that leave the site.
            other = f"http://localhost:{self.server.server_port}"  # type: ignore[attr-defined]
            body = body.replace(b"{{OTHER}}", other.encode())
            kind = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if file.name.startswith("csp"):
            self.send_header("Content-Security-Policy", CSP.format(c=self.collector_origin))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="session")
def pages(collector: Collector) -> Iterator[str]:
    handler = type("Handler", (PageHandler,), {"collector_origin": collector.origin})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """One test's browser context and page, its token, and what the page said."""

    context: Any
    page: Any
    token: str
    base: str  # the page server's URL prefix for this test, ending in /
    collector: Collector
    console_errors: list[str] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    expect_page_errors: bool = False
    allowed_errors: list[str] = field(default_factory=list)  # substrings of expected ones
    settled: int = 0

    def open(self, name: str, query: str = "", *, clock: bool = False) -> Any:
        """Load a test page; `clock`: with Playwright's clock installed first, so that
        `run_timers` can fire the tracker's timers at once (time flows as usual besides)."""
        if clock:
            self.page.clock.install()
        self.page.goto(self.base + name + query)
        self.page.wait_for_function("() => window.traceglider !== undefined")
        return self.page

    def run_timers(self, ms: float) -> None:
        """Move the page's clock `ms` ahead, firing every timer due (the tracker's 1 s
        batching delay, its 250 ms scroll read), then `settle`: what a fixed wait of
        `ms` would show, without the wait. The page must be opened with `clock=True`."""
        self.page.clock.run_for(ms)
        self.settle()

    def settle(self) -> None:
        """Return once every request the page made so far has been seen here: a request
        of its own, made last, arrives after them. A test that nothing was sent checks
        after this, not after a fixed wait."""
        self.settled += 1
        # the collector's origin: the one a strict page's CSP lets it reach (not recorded)
        marker = f"{self.collector.origin}/favicon.ico{SETTLED}{self.settled}"
        with self.page.expect_request(marker, timeout=10_000):
            self.page.evaluate("url => { fetch(url, {mode: 'no-cors'}).catch(() => 0) }", marker)

    def sleep(self, seconds: float) -> None:
        """Waits while letting Playwright deliver its events (requests, console)."""
        try:
            self.page.wait_for_timeout(seconds * 1000)
        except playwright_sync.Error:  # the test closed the page
            time.sleep(seconds)

    def collects(self) -> list[Any]:
        """The requests the page made to the collector's /collect."""
        self.sleep(0)
        return [r for r in self.requests if r.url.startswith(self.collector.origin + "/collect")]

    def sent_batches(self) -> list[dict[str, Any]]:
        return [json.loads(r.post_data) for r in self.collects() if r.post_data]

    def hide(self) -> None:
        """What the browser does when the tab goes to the background; headless
        Chromium never hides a page by itself."""
        self.page.evaluate("""() => {
            Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
            Object.defineProperty(document, 'hidden', {value: true, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""")

    def events(self, count: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
        return self.collector.events(self.token, count, sleep=self.sleep, **kwargs)


@pytest.fixture
def new_visit(browser: Any, collector: Collector, pages: str) -> Iterator[Callable[..., Visit]]:
    """Makes visits: `new_visit(**context_options)`; checks at the end that no page
    logged a console error or threw, unless the test expects page errors."""
    visits: list[Visit] = []

    def make(**options: Any) -> Visit:
        context = browser.new_context(**options)
        page = context.new_page()
        token = uuid.uuid4().hex[:12]
        visit = Visit(context, page, token, f"{pages}/t/{token}/", collector)

        def on_console(message: Any) -> None:
            if message.type == "error":
                visit.console_errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda e: visit.console_errors.append(f"pageerror: {e}"))
        context.on("request", lambda r: SETTLED not in r.url and visit.requests.append(r))
        visits.append(visit)
        return visit

    yield make
    for visit in visits:
        visit.context.close()
    for visit in visits:
        if not visit.expect_page_errors:
            errors = [e for e in visit.console_errors
                      if not any(allowed in e for allowed in visit.allowed_errors)]
            assert errors == [], f"console errors: {errors}"


@pytest.fixture
def visit(new_visit: Callable[..., Visit]) -> Visit:
    return new_visit()
