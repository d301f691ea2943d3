"""What `/collect`'s own work costs per request, in-process: parsing the body, the
pipeline (with each step's share by its own clock) and serializing the rows for the
spool. There is no HTTP, no spool and no other thread, so this is the floor of that
work; under load the same code costs more (caches shared with the other threads).

    .venv/bin/python bench/ingest_parts.py [--requests 4000] [--runs 5]

The body is bench/batch.lua's 10-event batch. Requests come from 50 addresses,
whose cookieless keys are derived in a warm-up run first (the server derives an
address's key once a day, on a thread: bench/enrich_pipeline.py gives that cost),
with a user agent already parsed (the server's flusher parses one it has not seen).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from traceglider.app import build_pipeline  # noqa: E402
from traceglider.config import load  # noqa: E402
from traceglider.ingest.enrich.useragent import parse_user_agent  # noqa: E402
from traceglider.ingest.pipeline import Pipeline, RequestInfo  # noqa: E402
from traceglider.ingest.request import parse_body  # noqa: E402
from traceglider.storage.local import LocalStorage  # noqa: E402
from traceglider.storage.salts import SaltStore  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
HEADERS = {"host": "127.0.0.1", "content-type": "text/plain", "user-agent": UA}
ADDRESSES = 50


def body(n: int) -> bytes:
    """bench/batch.lua's batch, with ids unique to request `n`."""
    events = [f'{{"id":"p-{n}-{i}","type":"pageview","url":"https://example.com/page/{i}?utm_source=bench",'
              f'"ref":"https://news.ycombinator.com/","title":"Bench page"}}' for i in range(1, 11)]
    return ('{"site":"example.com","ctx":{"sw":1920,"sh":1080,"vw":1280,"vh":720,"lang":"en-GB",'
            '"tz":"Europe/London"},"events":[' + ",".join(events) + "]}").encode()


def run(pipeline: Pipeline, bodies: list[bytes]) -> tuple[float, float, float]:
    """µs per request: parsing, the pipeline (with its `blocking` check), serializing."""
    parsing = enriching = serializing = 0.0
    clock = time.perf_counter
    for n, raw in enumerate(bodies):
        started = clock()
        now = int(time.time() * 1_000_000)
        site, ctx, rows = parse_body(raw, now)
        parsed = clock()
        info = RequestInfo(site=site, ip=f"81.2.69.{n % ADDRESSES}", user_agent=UA, headers=HEADERS,
                           cookies={}, received_at=now, secure=False, ctx=ctx, defer=True)
        pipeline.blocking(info)  # the route's check; the key is derived already
        kept = pipeline.run(rows, info)
        enriched = clock()
        b"\n".join(map(orjson.dumps, kept))
        parsing += parsed - started
        enriching += enriched - parsed
        serializing += clock() - enriched
    per_request = 1e6 / len(bodies)
    return parsing * per_request, enriching * per_request, serializing * per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        settings = load(env={"TG_SECRET": "bench-secret-bench-secret-0123456789", "TG_STORAGE": root,
                             "TG_SITES": "example.com"})
        warm = build_pipeline(settings, SaltStore(LocalStorage(Path(root))))
        warm.warm_up()
        parse_user_agent(UA)  # known from then on, as after the flusher's first delivery
        bodies = [body(n) for n in range(args.requests)]
        run(warm, bodies)  # derives the addresses' keys, learns the user agent, fills the caches
        pipeline = Pipeline(warm.steps)  # the same steps and caches, a fresh step clock
        results = [run(pipeline, bodies) for _ in range(args.runs)]
    print(f"{args.runs} runs of {args.requests} 10-event requests, µs per request: min / median / max")
    for index, part in enumerate(("parse", "pipeline", "serialize")):
        values = [result[index] for result in results]
        print(f"  {part:10s} {min(values):6.1f} / {statistics.median(values):6.1f} / {max(values):6.1f}")
    print("  pipeline steps by their own clock (mean):")
    for name, status in pipeline.step_status().items():
        print(f"    {name:10s} {1e6 * status['seconds'] / (args.runs * args.requests):6.1f}")
    print(f"  load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
