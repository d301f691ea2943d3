"""Measures the tracker's main-thread cost in headless Chromium: a page with and without
the script, same content and same interactions; long tasks and scripting time from the
DevTools Performance metrics, medians over many runs, at 1x and 4x CPU throttling.

    .venv/bin/python bench/tracker_cost.py [--runs 15] [--out bench/results/tracker_cost.json]

Everything runs on loopback: a tiny server in this process serves the page, the built
tracker (traceglider/static/t.min.js) and a /collect that answers 202.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
TRACKER = ROOT / "traceglider" / "static" / "t.min.js"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TAG = ('<script defer src="/t.js" data-site="bench.local" data-localhost="true" '
       'data-errors="true"></script>')
# An article of realistic size: 150 paragraphs, links, a form.
ARTICLE = "".join(
    f"<h2>Section {i}</h2><p>{'Lorem ipsum dolor sit amet, consectetur adipiscing elit. ' * 8}"
    f'<a href="#s{i}" class="in">more</a> <a href="https://example.org/{i}" class="out">'
    "elsewhere</a></p>" for i in range(150))
PAGE = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Bench</title>"
        "<link rel=icon href='data:,'>{tag}</head><body><h1>An article</h1>" + ARTICLE
        + "<form id=f action='#'><input name=q><button>Go</button></form></body></html>")
# Long tasks, recorded from the very start of each page.
OBSERVE = """window.__long = [];
new PerformanceObserver(l => l.getEntries().forEach(e => __long.push(e.duration)))
  .observe({type: 'longtask', buffered: true});"""
# The same interactions on both pages: scrolling, clicks that stay, custom events, hiding.
INTERACT = """async () => {
  document.addEventListener('click', e => e.preventDefault());
  for (let i = 0; i < 1000; i++) { scrollTo(0, i * 12); dispatchEvent(new Event('scroll')); }
  await new Promise(r => setTimeout(r, 300));
  for (const a of [...document.querySelectorAll('a')].slice(0, 40)) a.click();
  for (let i = 0; i < 25; i++) window.traceglider && traceglider.track('Bench', {i});
  document.querySelector('#f').dispatchEvent(new Event('submit', {bubbles: true}));
  Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
  await new Promise(r => setTimeout(r, 300));
}"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/t.js"):
            self.send(200, TRACKER.read_bytes(), "application/javascript")
        elif self.path.startswith("/with"):
            self.send(200, PAGE.format(tag=TAG).encode(), "text/html; charset=utf-8")
        else:
            self.send(200, PAGE.format(tag="").encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send(202, b'{"accepted":1}', "application/json")


def measure(browser: Any, url: str, throttle: float) -> dict[str, float]:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(OBSERVE)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    page.evaluate(INTERACT)
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    long_tasks = page.evaluate("__long")
    context.close()
    return {
        "script_ms": metrics["ScriptDuration"] * 1000,
        "task_ms": metrics["TaskDuration"] * 1000,
        "layouts": metrics["LayoutCount"],
        "long_tasks": len(long_tasks),
        "long_task_ms": sum(long_tasks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tracker_cost.json")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    results: dict[str, Any] = {"runs": args.runs, "tracker_bytes": TRACKER.stat().st_size,
                               "when": time.strftime("%Y-%m-%d"), "throttle": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        results["browser"] = browser.version
        for throttle in (1, 4):
            samples: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
            measure(browser, base + "/without", throttle)  # warm up
            for i in range(args.runs):
                for variant in (("without", "with") if i % 2 else ("with", "without")):
                    samples[variant].append(measure(browser, f"{base}/{variant}", throttle))
            summary = {}
            for variant, runs in samples.items():
                summary[variant] = {k: round(statistics.median(r[k] for r in runs), 2)
                                    for k in runs[0]}
                summary[variant]["max_long_tasks"] = max(r["long_tasks"] for r in runs)
            summary["delta"] = {k: round(summary["with"][k] - summary["without"][k], 2)
                                for k in ("script_ms", "task_ms", "layouts", "long_tasks")}
            results["throttle"][f"{throttle}x"] = summary
        browser.close()
    server.shutdown()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Chromium {results['browser']}, median of {args.runs} runs, page with 1,000 scroll "
          "events, 40 link clicks, 25 custom events, a form submit and a hide")
    print("| CPU | scripting without | with | delta | long tasks with (max) | layouts delta |")
    print("|---|---|---|---|---|---|")
    for throttle, s in results["throttle"].items():
        print(f"| {throttle} | {s['without']['script_ms']} ms | {s['with']['script_ms']} ms | "
              f"{s['delta']['script_ms']} ms | {s['with']['long_tasks']} "
              f"({s['with']['max_long_tasks']}) | {s['delta']['layouts']} |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
