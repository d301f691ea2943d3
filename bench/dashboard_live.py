"""The dashboard as a person sees it: `traceglider serve` on a big dataset, events
arriving all the time, and the default view loaded again and again over HTTP.

    .venv/bin/python bench/dashboard_live.py --data /tmp/tg-bench/local-10000000 --seconds 120

Two runs on the same data (hard-linked into a scratch copy, which receives the live
events): "computed on request" (TG_DASHBOARD_REFRESH=0, the baseline: every load after
new events computes every panel) and "kept ready" (the defaults: the panels are
prepared at start and recomputed in the background). Each load fetches the default
view's requests (`traceglider.dashboard.panels`) six at a time, as a browser does, and
is timed until the last answer. Reported: time from start until the first load can be
served, load times, the oldest answer seen, and the server's CPU seconds per minute.
The first two runs leave out serve's maintenance round (TG_COMPACT_SECONDS=0; its
first round would come after 5 minutes anyway); `--compact-every N` adds a kept-ready
run with a round every N seconds, the first one N seconds after start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.markdown import table  # noqa: E402
from tests.helpers import (
    BROWSER_UA,  # noqa: E402
    free_port,  # noqa: E402
)
from traceglider.dashboard.panels import default_requests  # noqa: E402
from traceglider.stats.service import SITE_CONFIG_PREFIX  # noqa: E402

TOKEN = "bench-token-0123456789"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_events(base: str, site: str, rate: float, stop: threading.Event) -> None:
    """`rate` pageviews a second in 5-event batches, as browsers would send them."""
    with httpx.Client(base_url=base, headers={"user-agent": BROWSER_UA, "content-type": "text/plain"}) as c:
        while not stop.is_set():
            events = [{"id": uuid.uuid4().hex, "type": "pageview", "url": f"https://{site}/live/{i}"}
                      for i in range(5)]
            c.post("/collect", content=json.dumps({"site": site, "events": events}))
            stop.wait(5 / rate)


def load(client: httpx.Client, requests: list[tuple[str, dict[str, str]]]) -> tuple[float, int]:
    """One dashboard load: (seconds until the last answer, oldest Age)."""
    def one(req: tuple[str, dict[str, str]]) -> int:
        kind, params = req
        for attempt in range(3):
            try:
                r = client.get(f"/dashboard/api/{kind}?{urlencode(params)}", timeout=300)
                break
            except httpx.TransportError:
                # a kept-alive connection the server closed as it was reused (uvicorn
                # closes them after 5 idle seconds); browsers retry such a GET too
                if attempt == 2:
                    raise
        r.raise_for_status()
        return int(r.headers.get("age", 0))

    started = time.perf_counter()
    with ThreadPoolExecutor(6) as pool:
        ages = list(pool.map(one, requests))
    return time.perf_counter() - started, max(ages)


def run(label: str, data: Path, site: str, seconds: float, rate: float, every: float, env: dict[str, str]) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "data"
        shutil.copytree(data, copy, copy_function=os.link)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        with open(Path(tmp) / "server.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(
                [sys.executable, "-m", "traceglider", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env={**os.environ, "TG_STORAGE": str(copy), "TG_SITES": site, "TG_API_TOKEN": TOKEN,
                     "TG_SECRET": "b" * 32, "TG_RATE_LIMIT": "0", "TG_LOG_LEVEL": "WARNING", **env},
                stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()
        try:
            client = httpx.Client(base_url=base)
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            client.post("/dashboard/login", data={"token": TOKEN})
            config = json.loads((copy / f"{SITE_CONFIG_PREFIX}{site}.json").read_text()) \
                if (copy / f"{SITE_CONFIG_PREFIX}{site}.json").exists() else {}
            requests = default_requests(site, lambda s: config)
            if env.get("TG_DASHBOARD_PREPARE", "true") != "false":
                while client.get("/healthz").json().get("dashboard", {}).get("pending", 1):
                    time.sleep(0.2)
            ready = time.perf_counter() - started
            sender = threading.Thread(target=send_events, args=(base, site, rate, stop), daemon=True)
            sender.start()
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            times, ages = [], []
            while time.perf_counter() - t0 < seconds:
                took, age = load(client, requests)
                times.append(took)
                ages.append(age)
                time.sleep(max(0.0, every - took))
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0) * 60
            maintenance = client.get("/healthz").json().get("maintenance")
            if maintenance and maintenance["rounds"]:
                print(f"{label}: {maintenance['rounds']} maintenance rounds, the last {maintenance['last']}",
                      file=sys.stderr)
        except Exception:
            print("server exit", proc.poll(), (Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop.set()
            proc.terminate()
            proc.wait(30)
    first = times[0]
    return [label, f"{ready:.1f}", f"{first:.2f}", f"{statistics.median(times):.2f}",
            f"{max(times):.2f}", str(len(times)), str(max(ages)), f"{cpu:.0f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a storage directory (e.g. from bench_stats.py)")
    ap.add_argument("--site", default="bench.example")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--rate", type=float, default=20, help="live events per second")
    ap.add_argument("--every", type=float, default=5, help="seconds between dashboard loads")
    ap.add_argument("--compact-every", type=float, default=0,
                    help="also a kept-ready run with serve's maintenance round every this many seconds")
    args = ap.parse_args()
    rows = [["mode", "ready after start s", "first load s", "median load s", "slowest load s", "loads",
             "oldest answer s", "server CPU s/min"]]
    rows.append(run("computed on request (baseline)", Path(args.data), args.site, args.seconds, args.rate,
                    args.every, {"TG_DASHBOARD_REFRESH": "0", "TG_DASHBOARD_PREPARE": "false",
                                 "TG_COMPACT_SECONDS": "0"}))
    rows.append(run("kept ready (default)", Path(args.data), args.site, args.seconds, args.rate, args.every,
                    {"TG_COMPACT_SECONDS": "0"}))
    if args.compact_every:
        rows.append(run(f"kept ready, compacting every {args.compact_every:g} s", Path(args.data), args.site,
                        args.seconds, args.rate, args.every, {"TG_COMPACT_SECONDS": str(args.compact_every)}))
    print(table(rows))


if __name__ == "__main__":
    main()
