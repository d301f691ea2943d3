"""Time the enrichment pipeline (split_url through identity) per event, cached user agent.

Usage: python bench/enrich_pipeline.py  (prints µs per event for 1- and 10-event batches)
"""

from __future__ import annotations

import tempfile
import time

from traceglider.config import load
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.pipeline import Pipeline, RequestInfo
from traceglider.ingest.request import parse_batch
from traceglider.ingest.urls import split_url
from traceglider.storage.local import LocalStorage

UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/142.0.0.0 Safari/537.36")
EVENT = {"type": "pageview", "url": "https://example.com/blog/post?utm_source=hn&fbclid=x",
         "ref": "https://news.ycombinator.com/"}
RUNS = 3000


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        pipeline = Pipeline([("split_url", split_url)] + build_steps(load(env={}), LocalStorage(root)))
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


if __name__ == "__main__":
    main()
