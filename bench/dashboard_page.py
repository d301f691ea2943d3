"""What the dashboard page adds of its own to each view: the page in Chromium against
the same requests sent without it.

    .venv/bin/python bench/dashboard_page.py --data /tmp/tg-bench/page-1000000 --events 1000000 --rounds 5

`traceglider serve` on a demo dataset (made once under --data). For each view (the
default one, a country filter, the CLS tab of Web Vitals, the pages' details view,
realtime, and switching to another site), one round is: open the view in headless
Chromium (`page.goto` of its URL, timed until the headline, the chart and every panel
are drawn), noting the API requests it made; then send those same requests from
Python, `config` first and the rest six at a time as Chromium does, timed until the
last answer (the baseline: the server's work and HTTP, without the page). What the
page adds of its own is its main thread's work (Chromium's ThreadTime, CPU seconds:
parsing its HTML, script and style, building the requests, drawing the answers), with
the difference of the two wall times (which on a shared box is mostly noise in the
server's answers). Rounds alternate the two, warm (every answer has been computed
once, as for a person coming back to a view); min / median / max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.markdown import table  # noqa: E402
from tests.helpers import free_port  # noqa: E402

TOKEN = "bench-token-0123456789"
SITE, OTHER = "bench.example", "other.example"
SETTLED = ("() => document.querySelectorAll('.stat').length > 0"
           " && document.querySelectorAll('[data-panel].loading, .stat.loading').length === 0"
           " && !!document.querySelector('#chart svg')"
           " && !document.querySelector('.stat-value')?.textContent.includes('…')")


def views() -> list[tuple[str, str]]:
    return [
        ("default view (30 days)", f"site={SITE}&period=30d"),
        ("filtered by a country", f"site={SITE}&period=30d&f=visit%3Acountry%3D%3DDE"),
        ("Web Vitals, CLS tab", f"site={SITE}&period=30d&tab.vitals=CLS"),
        ("pages' details view", f"site={SITE}&period=30d&details=pages"),
        ("realtime", f"site={SITE}&period=realtime"),
        ("another site", f"site={OTHER}&period=30d"),
    ]


def ensure_data(root: Path, events: int) -> None:
    if (root / "events").exists():
        return
    for site, n in ((SITE, events), (OTHER, max(1000, events // 10))):
        subprocess.run([sys.executable, "-m", "traceglider", "demo-data", "--site", site, "--events", str(n),
                        "--storage", str(root), "--no-progress"], check=True)


def replay(base: str, cookies: dict[str, str], urls: list[str]) -> float:
    """The page's requests without the page: config first, then six at a time."""
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())

    def fetch(url: str) -> None:
        with urllib.request.urlopen(urllib.request.Request(base + url, headers={"Cookie": header}), timeout=120) as r:
            r.read()

    started = time.perf_counter()
    first = [u for u in urls if "/api/config?" in u]
    for u in first:
        fetch(u)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(fetch, [u for u in urls if u not in first]))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/tg-bench/page-1000000"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ensure_data(args.data, args.events)
    port = free_port()
    env = dict(os.environ, TG_API_TOKEN=TOKEN, TG_SECRET="b" * 32, TG_LOG_LEVEL="WARNING", TG_COMPACT_SECONDS="0",
               TG_STORAGE=str(args.data))
    server = subprocess.Popen([sys.executable, "-m", "traceglider", "serve", "--host", "127.0.0.1",
                               "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    rows: list[list[str]] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("serve did not start")
            time.sleep(0.2)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless=new", "--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(300_000)  # the first load builds the tables on a busy box
            page.goto(base + "/dashboard")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector(".stat-value")
            cookies = {c["name"]: c["value"] for c in context.cookies()}
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def busy() -> float:
                """CPU seconds of the renderer's main thread (script, style, layout, paint):
                its own work, whatever else the box is busy with."""
                metrics = cdp.send("Performance.getMetrics")["metrics"]
                return float(next(m["value"] for m in metrics if m["name"] == "ThreadTime"))

            for name, fragment in views():
                asked: list[str] = []
                page.on("request", lambda r, asked=asked: asked.append(r.url.removeprefix(base))
                        if "/dashboard/api/" in r.url else None)

                def load(fragment: str = fragment, asked: list[str] = asked) -> tuple[float, float]:
                    """(wall seconds, CPU seconds of the page's main thread)."""
                    asked.clear()
                    page.evaluate("f => { location.hash = f; }", fragment)
                    started = time.perf_counter()
                    page.reload()
                    # every panel drawn (not "networkidle": it waits 0.5 s more by itself)
                    page.wait_for_function(SETTLED, polling=50)  # not every frame: that is work of its own
                    if "details=" in fragment:
                        page.wait_for_selector("#details-rows tbody tr")
                    wall = time.perf_counter() - started
                    # Chromium counts per document: the reload's document starts from 0
                    return wall, busy()

                load()  # every answer computed once: the rounds are warm
                pages, requests, work = [], [], []
                for _ in range(args.rounds):
                    wall, cpu = load()
                    pages.append(wall)
                    work.append(cpu)
                    urls = [u for u in asked if "/api/me" not in u]
                    requests.append(replay(base, cookies, urls))
                own = [a - b for a, b in zip(pages, requests, strict=True)]
                rows.append([name, str(len(urls)), *(f"{f(pages):.3f}" for f in (min, statistics.median, max)),
                             *(f"{f(requests):.3f}" for f in (min, statistics.median, max)),
                             f"{statistics.median(own):.3f}",
                             *(f"{f(work):.3f}" for f in (min, statistics.median, max))])
                print(rows[-1], flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    load1, load5, _ = os.getloadavg()
    print(f"\n{args.events:,} events, {args.rounds} rounds, load average {load1:.1f} / {load5:.1f}\n")
    print(table([["view", "requests", "page min s", "page median s", "page max s", "requests alone min s",
                  "requests alone median s", "requests alone max s", "difference median s",
                  "page's main thread CPU min s", "median s", "max s"], *rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
