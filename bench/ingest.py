"""Ingest benchmark: /collect of the real collector (fsync-durable spool) against two
baselines in the same run, same uvicorn, same load generator:

- `bare`: FastAPI that only parses the JSON and answers 202 (bench/bare_app.py);
- `naive`: FastAPI that appends each body to a file and fsyncs it on the event loop
  before answering (bench/naive_app.py), the simplest durable collector;
- `traceglider`: `traceglider serve` with one worker, and `traceglider-2w` with
  TG_WORKERS=2 (how it scales with cores);
- `before` (with `--before DIR`): `traceglider serve` of another checkout (one worker),
  for a before/after comparison in the same rounds.

    .venv/bin/python bench/ingest.py [--seconds 10] [--clients 1,10,50] [--rounds 3] [--before DIR]

Every server runs for the whole benchmark; each round runs each of them at each
client count, the servers of one client count one right after the other (paired
runs: the machine is shared and noisy, so ratios are taken between runs seconds
apart), in an order that changes every time, with the files of the runs before
written back first; the table gives the median of the rounds with min-max. CPU per
request is the servers' whole process tree (utime + stime from /proc, every thread
and worker) divided by the requests answered; "loop" is the part spent on the
event-loop threads (each process's main thread), where requests are parsed, enriched
and answered, the rest is the spool writer, the flusher (Parquet) and other
background threads.
Needs `wrk` (Debian package `wrk`). Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port  # noqa: E402
from tests.server import wait_healthy  # noqa: E402

EVENTS_PER_BATCH = 10
LUA = ROOT / "bench" / "batch.lua"  # builds 10-event batches with unique ids
KINDS = ("bare", "naive", "traceglider", "traceglider-2w")
_TICKS = os.sysconf("SC_CLK_TCK")


def server_env(data: Path) -> dict[str, str]:
    """The environment of every benchmarked server: data in `data`, no rate limit (wrk
    is one address), one site, no compaction during the runs, quiet logs."""
    return {**os.environ, "TG_STORAGE": str(data), "TG_LOG_LEVEL": "WARNING", "TG_RATE_LIMIT": "0",
            "TG_SITES": "example.com", "TG_COMPACT_SECONDS": "0"}


def start(kind: str, port: int, data: Path, before: Path | None = None) -> subprocess.Popen[bytes]:
    python = sys.executable
    env = {**server_env(data), "NAIVE_LOG": str(data) + ".jsonl"}
    uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    if kind == "bare":
        cmd = [*uvicorn, "bench.bare_app:app"]
    elif kind == "naive":
        cmd = [*uvicorn, "bench.naive_app:app"]
    else:
        env["TG_WORKERS"] = "2" if kind.endswith("-2w") else "1"
        cmd = [python, "-m", "traceglider", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cwd = ROOT
    if kind == "before":
        if before is None:
            raise SystemExit("the 'before' server needs --before DIR")
        cwd, env["PYTHONPATH"] = before, str(before)
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    if not wait_healthy(port):
        raise SystemExit(f"{kind} did not become healthy")
    return process


def _stat_cpu(path: Path) -> tuple[int, int]:
    """(session, utime + stime in ticks) from a /proc stat file."""
    fields = path.read_text().rsplit(")", 1)[1].split()
    # after the command: state ppid pgrp session ... utime(12) stime(13)
    return int(fields[3]), int(fields[11]) + int(fields[12])


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """(all, event loops): utime + stime of `pid` and every process of its session
    (uvicorn's workers), and of those processes' main threads alone."""
    total = loops = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            session, ticks = _stat_cpu(entry / "stat")
            if session != pid:
                continue
            _, main = _stat_cpu(entry / "task" / entry.name / "stat")
        except (OSError, IndexError, ValueError):
            continue
        total, loops = total + ticks, loops + main
    return total / _TICKS, loops / _TICKS


def parse_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port: int, clients: int, seconds: int, script: Path) -> dict[str, float]:
    threads = min(2, clients)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/collect"], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "requests": float(requests),
            "non2xx": float(errors.group(1)) if errors else 0.0}


def spool_fsyncs(port: int) -> dict[str, float]:
    """The spool's fsync times over its last 1,024 fsyncs (mostly the run just made),
    from /healthz: every 202 waits for one, so their tail bounds the latency tail.
    Empty for servers that do not report them (the baselines, older checkouts)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            timings = json.load(answer).get("spool_fsync_ms") or {}
    except (OSError, ValueError):
        return {}
    return {f"fsync_{key}": float(timings[key]) for key in ("p50", "p99") if key in timings}


def burst(kind: str, port: int, process: subprocess.Popen[bytes], clients: int, seconds: int,
          round_: int) -> dict[str, float]:
    """One wrk run against a running server, with its CPU per request and fsyncs."""
    # Write back what the servers left dirty (spools, Parquet, the naive log) now:
    # otherwise the kernel does it during this run, whose fsyncs then wait behind it
    # (the server that ran second was 0.5-0.8x the one before it, whichever it was).
    os.sync()
    cpu, loop = tree_cpu_seconds(process.pid)
    result = run_wrk(port, clients, seconds, LUA)
    cpu_after, loop_after = tree_cpu_seconds(process.pid)
    result["cpu_us"] = 1e6 * (cpu_after - cpu) / max(result["requests"], 1)
    result["loop_us"] = 1e6 * (loop_after - loop) / max(result["requests"], 1)
    result.update(spool_fsyncs(port))
    print(f"round {round_} {kind} {clients} clients: {result}", file=sys.stderr, flush=True)
    return result


def measure_all(kinds: list[str], clients: list[int], seconds: int, rounds: int, tmp: Path,
                before: Path | None) -> list[dict[str, dict[int, dict[str, float]]]]:
    """Every server up at once; for each round and client count, one run of each,
    one right after the other in an order that changes every time. The machine's
    load moves within seconds here: runs of the same client count seconds apart
    pair far better than whole servers measured a minute apart."""
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for kind in kinds:
            port = free_port()
            servers[kind] = (port, start(kind, port, tmp / f"data-{kind}", before))
            run_wrk(port, 10, 2, LUA)  # warm up
        out = []
        for r in range(rounds):
            measured: dict[str, dict[int, dict[str, float]]] = {kind: {} for kind in kinds}
            for index, c in enumerate(clients):
                for kind in rotated(kinds, r * len(clients) + index):
                    port, process = servers[kind]
                    measured[kind][c] = burst(kind, port, process, c, seconds, r)
            out.append(measured)
        return out
    finally:
        for _, process in servers.values():
            os.killpg(process.pid, signal.SIGTERM)
        for _, process in servers.values():
            process.wait(timeout=60)


def rotated(kinds: list[str], turn: int) -> list[str]:
    """The servers in a different order each time, so none always runs first."""
    shift = turn % len(kinds)
    return kinds[shift:] + kinds[:shift]


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    med = fmt.format(statistics.median(values))
    return med if len(values) == 1 else f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default=None, help=f"default: {','.join(KINDS)} (and before)")
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout to run as the 'before' server, in the same rounds")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    clients = [int(c) for c in args.clients.split(",")]
    kinds = args.kinds.split(",") if args.kinds else [*KINDS, *(["before"] if args.before else [])]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rounds = measure_all(kinds, clients, args.seconds, args.rounds, Path(tmp), args.before)
    load_after = os.getloadavg()

    def values(kind: str, c: int, key: str) -> list[float]:
        return [rnd[kind][c][key] for rnd in rounds]

    def ratios(kind: str, base: str, c: int) -> list[float]:
        return [rnd[kind][c]["rps"] / rnd[base][c]["rps"] for rnd in rounds]

    print(f"10-event batches, {args.seconds} s per row, {args.rounds} paired rounds, wrk on the same "
          f"machine; median (min-max). Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after.\n")
    def fsyncs(kind: str, c: int) -> str:
        found = [rnd[kind][c] for rnd in rounds if "fsync_p99" in rnd[kind][c]]
        if not found:
            return "-"
        return (f"{spread([r['fsync_p50'] for r in found], '{:.1f}')} / "
                f"{spread([r['fsync_p99'] for r in found], '{:.1f}')}")

    print("| clients | server | req/s | p50 ms | p99 ms | CPU µs/request | of which loop | non-2xx "
          "| spool fsync p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in clients:
        for kind in kinds:
            print(f"| {c} | {kind} | {spread(values(kind, c, 'rps'))} | {spread(values(kind, c, 'p50'), '{:.1f}')} "
                  f"| {spread(values(kind, c, 'p99'), '{:.1f}')} | {spread(values(kind, c, 'cpu_us'))} "
                  f"| {spread(values(kind, c, 'loop_us'))} | {sum(values(kind, c, 'non2xx')):.0f} "
                  f"| {fsyncs(kind, c)} |")
    def against_baselines(kind: str, c: int) -> list[str]:
        return [spread(ratios(kind, base, c), "{:.2f}") if base in kinds else "-" for base in ("bare", "naive")]

    if "traceglider" in kinds:
        print("\n| clients | TraceGlider / bare | TraceGlider / naive fsync | 2 workers / 1 worker |")
        print("|---|---|---|---|")
        for c in clients:
            cells = against_baselines("traceglider", c)
            scale = spread(ratios("traceglider-2w", "traceglider", c), "{:.2f}") if "traceglider-2w" in kinds else "-"
            print(f"| {c} | {cells[0]} | {cells[1]} | {scale} |")
    if "before" in kinds:
        print("\n| clients | before / bare | before / naive fsync | after / before |")
        print("|---|---|---|---|")
        for c in clients:
            cells = against_baselines("before", c)
            print(f"| {c} | {cells[0]} | {cells[1]} | {spread(ratios('traceglider', 'before', c), '{:.2f}')} |")


if __name__ == "__main__":
    main()
