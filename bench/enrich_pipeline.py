"""Time the enrichment pipeline (split_url through identity) per event, cached user agent.

Usage: python bench/enrich_pipeline.py  (prints µs per event for 1- and 10-event batches,
with the cookieless address key cached, as it is after an address's first request of the
day; then the cost of that first request's derivation, and the load average)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from traceglider.config import load
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.enrich.identity import derive_address_key
from traceglider.ingest.pipeline import Pipeline, RequestInfo
from traceglider.ingest.request import parse_batch
from traceglider.ingest.urls import split_url
from traceglider.storage.local import LocalStorage
from traceglider.storage.salts import SaltStore

UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/142.0.0.0 Safari/537.36")
EVENT = {"type": "pageview", "url": "https://example.com/blog/post?utm_source=hn&fbclid=x",
         "ref": "https://news.ycombinator.com/"}
RUNS = 3000


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        settings = load(env={"TG_SECRET": "bench-secret-bench-secret-0123456789"})
        pipeline = Pipeline([("split_url", split_url)]
                            + build_steps(settings, SaltStore(LocalStorage(root))))
        for size, label in ((1, None), (1, "1-event batches"), (10, "10-event batches")):
            document = {"site": "example.com", "ctx": {"sw": 1920, "platform": "macOS", "mobile": False},
                        "events": [{**EVENT, "id": str(i)} for i in range(size)]}
            now = int(time.time() * 1_000_000)
            _, ctx, template = parse_batch(document, now)
            total = 0.0
            for run in range(RUNS):
                rows = [dict(row) for row in template]
                # Addresses are data only (the geo lookup is offline); 250 distinct ones.
                request = RequestInfo("example.com", f"81.2.69.{run % 250}", UA, {}, {}, now, True, ctx)
                start = time.perf_counter()
                pipeline.run(rows, request)
                total += time.perf_counter() - start
            if label:  # the first round only warms up (loads ua-parser rules, geo database)
                print(f"{label}: {total / RUNS / size * 1e6:.1f} µs per event")
    derivation()


def derivation(rounds: int = 5, per_round: int = 20) -> None:
    """The scrypt derivation of an address's first request of the day, in ms."""
    salt, pepper = os.urandom(32), os.urandom(32)
    times = []
    for r in range(rounds):
        start = time.perf_counter()
        for i in range(per_round):
            derive_address_key(salt, pepper, f"203.0.{r}.{i}")
        times.append((time.perf_counter() - start) / per_round * 1000)
    print(f"address key derivation (first request of an address per day): min "
          f"{min(times):.1f} / median {statistics.median(times):.1f} / max {max(times):.1f} ms "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
