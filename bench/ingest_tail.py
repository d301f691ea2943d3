"""Where the ingest latency tail comes from: `traceglider serve` (one worker) under wrk,
with the event loop's stalls, the garbage collector's pauses and the flusher's
deliveries recorded on one clock, so the worst answers can be matched to a cause.

    .venv/bin/python bench/ingest_tail.py [--clients 50] [--seconds 10] [--runs 3]
        [--gc off] [--no-delivery] [--delivery-niceness N] [--switch-interval S]

`--gc off` disables the automatic collector once the load starts; `--no-delivery`
keeps the flusher from delivering during the run (everything stays spooled). Run the
variants one after the other and compare their p99: what moves it is the cause.
The probe itself (a 1 ms timer on the loop) costs some throughput, so compare runs of
this script with each other, not with bench/ingest.py's.
Needs `wrk` (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import LUA, run_wrk, server_env, spool_fsyncs  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.server import wait_healthy  # noqa: E402

STALL_MS = 5.0  # loop stalls and collections shorter than this are not recorded


def serve_with_probes(out: Path) -> None:
    """The child: `serve` with the probes installed; the timeline goes to `out` on SIGTERM."""
    import asyncio
    import gc
    import threading

    from traceglider.config import load
    from traceglider.ingest import collect
    from traceglider.serve import serve
    from traceglider.spool import flusher

    if "PROBE_SWITCH" in os.environ:
        sys.setswitchinterval(float(os.environ["PROBE_SWITCH"]))
    if "PROBE_NICENESS" in os.environ:
        flusher.DELIVERY_NICENESS = int(os.environ["PROBE_NICENESS"])
    timeline: list[tuple[str, float, float]] = []  # (what, at: monotonic s, lasted ms)
    gc_started = [0.0]
    watching: list[asyncio.Task[None]] = []  # the loop's watch, started by the first request

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        lasted = 1000 * (time.perf_counter() - gc_started[0])
        if watching and lasted >= STALL_MS and threading.current_thread() is threading.main_thread():
            timeline.append((f"gc{info['generation']}", time.monotonic() - lasted / 1000, lasted))

    gc.callbacks.append(on_gc)

    deliver = flusher.Flusher.flush_once

    def timed_flush(self: flusher.Flusher) -> bool:
        started = time.monotonic()
        try:
            return deliver(self)
        finally:
            timeline.append(("delivery", started, 1000 * (time.monotonic() - started)))

    flusher.Flusher.flush_once = timed_flush  # type: ignore[method-assign]

    async def watch_loop() -> None:
        if os.environ.get("PROBE_GC") == "off":
            gc.disable()
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(0.001)
            late = 1000 * (loop.time() - asked) - 1.0
            if late >= STALL_MS:
                timeline.append(("stall", asked, late))

    answer = collect.Collect.answer
    async def first_answer_starts_watch(self: collect.Collect, scope, receive):  # type: ignore[no-untyped-def]
        if not watching:
            watching.append(asyncio.get_running_loop().create_task(watch_loop()))
        return await answer(self, scope, receive)

    collect.Collect.answer = first_answer_starts_watch  # type: ignore[method-assign]

    def write_out(*_: object) -> None:
        out.write_text(json.dumps(timeline))
        os._exit(0)

    signal.signal(signal.SIGTERM, write_out)
    serve(load())


def one_run(clients: int, seconds: int, gc_off: bool, no_delivery: bool, niceness: int | None,
            switch: float | None, tmp: Path) -> dict[str, object]:
    port, out = free_port(), tmp / "timeline.json"
    env = {**server_env(tmp / "data"), "TG_WORKERS": "1", "TG_HOST": "127.0.0.1", "TG_PORT": str(port),
           "PROBE_GC": "off" if gc_off else "on"}
    if niceness is not None:
        env["PROBE_NICENESS"] = str(niceness)
    if switch is not None:
        env["PROBE_SWITCH"] = str(switch)
    if no_delivery:
        env.update(TG_FLUSH_SECONDS="100000", TG_FLUSH_EVENTS="1000000000")
    process = subprocess.Popen([sys.executable, __file__, "--child", str(out)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_healthy(port):
            raise SystemExit("serve did not become healthy")
        run_wrk(port, 10, 2, LUA)  # warm up (and start the probe)
        os.sync()
        # CLOCK_MONOTONIC is the machine's, so the child's timeline and this window agree.
        began = time.monotonic()
        result: dict[str, object] = {**run_wrk(port, clients, seconds, LUA)}
        ended = time.monotonic()
        result.update(spool_fsyncs(port))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # Only what overlapped the measured run: not the start-up, the warm-up or the stop.
    timeline = [(what, at, lasted) for what, at, lasted in json.loads(out.read_text())
                if at <= ended and at + lasted / 1000 >= began]
    stalls = sorted((e for e in timeline if e[0] == "stall"), key=lambda e: -e[2])
    others = [e for e in timeline if e[0] != "stall"]  # collections first: the more specific cause
    others.sort(key=lambda e: e[0] == "delivery")
    delivering = sum(min(ended, at + lasted / 1000) - max(began, at) for what, at, lasted in others
                     if what == "delivery")

    def cause(stall: tuple[str, float, float]) -> str:
        """A collection or a delivery going on during the stall, if any."""
        _, at, lasted = stall
        return next((what for what, start, took in others
                     if start <= at + lasted / 1000 and at <= start + took / 1000), "-")

    result.update(stalls=len(stalls), worst_stalls=[(round(s[2]), cause(s)) for s in stalls[:5]],
                  collections_ms=[round(e[2]) for e in others if e[0] != "delivery"],
                  deliveries=sum(e[0] == "delivery" for e in others),
                  delivering_share=round(delivering / (ended - began), 2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gc", choices=("on", "off"), default="on")
    parser.add_argument("--no-delivery", action="store_true")
    parser.add_argument("--delivery-niceness", type=int, default=None,
                        help="the flusher thread's nice increment (default: spool.flusher.DELIVERY_NICENESS)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval in the server, seconds (Python's default 0.005)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve_with_probes(args.child)
        return
    load = os.getloadavg()[0]
    results = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_run(args.clients, args.seconds, args.gc == "off", args.no_delivery,
                                   args.delivery_niceness, args.switch_interval, Path(tmp)))
        print(f"run {n}: {results[-1]}", file=sys.stderr, flush=True)
    p99 = [float(r["p99"]) for r in results]  # type: ignore[arg-type]
    rps = [float(r["rps"]) for r in results]  # type: ignore[arg-type]
    print(f"{args.clients} clients, gc {args.gc}, delivery {'off' if args.no_delivery else 'on'} "
          f"(niceness {'default' if args.delivery_niceness is None else args.delivery_niceness}), "
          f"switch interval {args.switch_interval or 'default'}, "
          f"{args.runs} runs of {args.seconds} s, load {load:.1f} -> {os.getloadavg()[0]:.1f}: "
          f"req/s {statistics.median(rps):.0f} ({min(rps):.0f}-{max(rps):.0f}), "
          f"p99 {statistics.median(p99):.1f} ms ({min(p99):.1f}-{max(p99):.1f})")
    for r in results:
        print(f"  worst stalls ms (cause): {r['worst_stalls']}; collections >= {STALL_MS:.0f} ms: "
              f"{r['collections_ms']}; delivering {r['delivering_share']:.0%} of the time")


if __name__ == "__main__":
    main()
