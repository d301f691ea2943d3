"""Ingest benchmark: /collect of the real collector (fsync-durable spool) against a
bare FastAPI endpoint that only parses the JSON, same uvicorn, same load generator.

    .venv/bin/python bench/ingest.py [--seconds 10] [--clients 1,10,50]

Needs `wrk` (Debian package `wrk`). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server import wait_healthy  # noqa: E402

EVENTS_PER_BATCH = 10
LUA = ROOT / "bench" / "batch.lua"  # builds 10-event batches with unique ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(kind: str, port: int, data: Path) -> subprocess.Popen[bytes]:
    python = sys.executable
    env = {**os.environ, "TG_STORAGE": str(data), "TG_LOG_LEVEL": "WARNING", "TG_RATE_LIMIT": "0",
           "TG_SITES": "example.com"}
    if kind == "bare":
        cmd = [python, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    else:
        cmd = [python, "-m", "traceglider", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_healthy(port):
        raise SystemExit(f"{kind} did not become healthy")
    return process


def parse_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port: int, clients: int, seconds: int, script: Path) -> dict[str, float]:
    threads = min(2, clients)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/collect"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", default="1,10,50")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    clients = [int(c) for c in args.clients.split(",")]
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = LUA
        for kind in ("bare", "traceglider"):
            port = free_port()
            process = start(kind, port, Path(tmp) / f"data-{kind}")
            try:
                run_wrk(port, 10, 2, script)  # warm up
                for c in clients:
                    results[(kind, c)] = run_wrk(port, c, args.seconds, script)
                    print(kind, c, results[(kind, c)], file=sys.stderr, flush=True)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    print(f"10-event batches, {args.seconds} s per row, wrk on the same 2-core machine, one uvicorn worker.\n")
    print("| clients | bare req/s | TraceGlider req/s | events/s | ratio | bare p50 / p99 ms "
          "| TraceGlider p50 / p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|---|---|")
    for c in clients:
        bare, tg = results[("bare", c)], results[("traceglider", c)]
        print(f"| {c} | {bare['rps']:.0f} | {tg['rps']:.0f} | {tg['rps'] * EVENTS_PER_BATCH:.0f} "
              f"| {tg['rps'] / bare['rps']:.0%} | {bare['p50']:.1f} / {bare['p99']:.1f} "
              f"| {tg['p50']:.1f} / {tg['p99']:.1f} | {tg['non2xx']:.0f} |")


if __name__ == "__main__":
    main()
