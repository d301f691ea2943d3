"""What the Lambda deployment costs per million events, in both delivery modes, from the
requests a moto server counts while simulated traffic goes through the real handler.

For each mode (`direct`: a Parquet object per request; `firehose`: a Firehose record
per request) and batch size, N events go through `traceglider.aws.handler` as API
Gateway events, then the scheduled compaction runs once. The server counts every
request by operation and what it wrote (tests/aws_server.py); the sizes of the
Firehose records are kept (Firehose bills each rounded up to 5 KB). The counts are
scaled to a million events and priced with the list prices in `PRICES`.

    python bench/lambda_costs.py                # measure, print, update docs/costs.md
    python bench/lambda_costs.py --events 200   # events per mode and batch size

tests/test_aws_firehose.py runs `observe` and checks the counts the model uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "costs.md"
BUCKET = "tg-costs"
SITE = "example.com"

# us-east-1 list prices, on-demand, as known to the author on 2026-11-27 (docs/costs.md).
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm": 0.0000133334,
    "http_api_request": 1.00 / 1e6,
    "cloudfront_request": 0.0100 / 1e4,  # HTTPS, North America and Europe; 10 M a month free
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "firehose_gb": 0.029,  # Direct PUT, first 500 TB a month; each record rounded up to 5 KB
    "logs_gb": 0.50,
    "s3_gb_month": 0.023,
}
FIREHOSE_UNIT = 5 * 1024
# Billed Lambda milliseconds per request on a 512 MB arm64 function (assumed; the
# in-process warm figures of bench/lambda_coldstart.py are the local measurement).
BILLED_MS = {"direct": {1: 50, 5: 60, 20: 80}, "firehose": {1: 30, 5: 35, 20: 45}}
MEMORY_GB = 0.5
COMPACT_GB = 2.0
LOG_BYTES_PER_REQUEST = 260  # START, END, REPORT (0 with PlatformLogs=WARN)
STORED_BYTES_PER_EVENT = 50
MONTHS_KEPT = 25
# Real Firehose delivers one object per stream per 15 minutes at these volumes (moto
# delivers one per call): 2,880 a month, each read, converted (a PUT per partition it
# touches) and deleted by the compaction.
DELIVERED_OBJECTS_A_MONTH = 4 * 24 * 30


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def observe(server: Any, delivery: str, batch: int, events: int) -> dict[str, Any]:
    """Send `events` events in batches of `batch` through the handler in `delivery`
    mode, then compact: what the server counted for each phase."""
    import boto3

    from tests.test_aws import batch as make_batch
    from tests.test_aws import http_api_event
    from traceglider import aws

    prefix = f"{delivery}-{batch}-{uuid.uuid4().hex[:6]}"
    firehose = boto3.client("firehose", endpoint_url=server.endpoint, region_name="us-east-1")
    stream = f"tg-{uuid.uuid4().hex[:10]}"
    firehose.create_delivery_stream(
        DeliveryStreamName=stream, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": f"{prefix}/incoming/"})
    with tempfile.TemporaryDirectory() as home, environment({
        "TG_STORAGE": f"s3://{BUCKET}/{prefix}", "TG_S3_ENDPOINT_URL": server.endpoint, "TG_SITES": SITE,
        "TG_SECRET": "cost-bench-secret-cost-bench-secret-0123", "TG_MODE": "lambda",
        "TG_DELIVERY": delivery, "TG_FIREHOSE_STREAM": stream, "TG_FIREHOSE_ENDPOINT_URL": server.endpoint,
        "TG_SPOOL_DIR": os.path.join(home, "spool"), "TG_RATE_LIMIT": "0",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.path.join(home, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
    }):
        aws.reset()
        server.counter.reset_counts()
        requests = math.ceil(events / batch)
        started = time.perf_counter()
        for n in range(requests):
            ids = [f"{prefix}-{n}-{k}" for k in range(min(batch, events - n * batch))]
            body = json.dumps(make_batch(*ids)).encode()
            response = aws.handler(http_api_event("POST", "/collect", body), None)
            assert response["statusCode"] == 202, response
        intake_seconds = time.perf_counter() - started
        intake = {"counts": dict(server.counter.counts), "objects": dict(server.counter.objects),
                  "record_bytes": list(server.counter.firehose_bytes)}
        sample = _delivered_sample(server, prefix) if delivery == "firehose" else []
        server.counter.reset_counts()
        started = time.perf_counter()
        summary = aws.compact_handler({}, None)
        compact_seconds = time.perf_counter() - started
        compaction = {"counts": dict(server.counter.counts), "objects": dict(server.counter.objects)}
        aws.reset()
    return {"delivery": delivery, "batch": batch, "events": events, "requests": requests,
            "intake": intake, "compaction": compaction, "intake_seconds": intake_seconds,
            "compact_seconds": compact_seconds, "delivered": summary.get("delivered"), "sample": sample}


def _delivered_sample(server: Any, prefix: str) -> list[dict[str, Any]]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/incoming/", MaxKeys=5)
    return [json.loads(line) for item in listing.get("Contents", [])
            for line in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines() if line]


def per_million(observed: dict[str, Any], frontend: str = "api", platform_logs: bool = True) -> dict[str, float]:
    """Dollars per million events, line by line, from one observation."""
    scale = 1e6 / observed["events"]
    requests = observed["requests"] * scale
    delivery, batch = observed["delivery"], observed["batch"]
    intake, compaction = observed["intake"], observed["compaction"]
    lines = {
        "Lambda requests": requests * PRICES["lambda_request"],
        "Lambda duration": requests * BILLED_MS[delivery][batch] / 1000 * MEMORY_GB * PRICES["lambda_gb_second_arm"],
        "front end": requests * {"api": PRICES["http_api_request"], "cloudfront": PRICES["cloudfront_request"],
                                 "url": 0.0}[frontend],
        "S3 PUT at intake": intake["objects"].get("s3:PutObject:events", 0) * scale * PRICES["s3_put"],
        "Firehose": sum(math.ceil(b / FIREHOSE_UNIT) * FIREHOSE_UNIT for b in intake["record_bytes"])
        * scale / 2**30 * PRICES["firehose_gb"],
        "compaction S3 requests": (compaction["counts"].get("s3:GetObject", 0) * PRICES["s3_get"]
                                   + compaction["counts"].get("s3:PutObject", 0) * PRICES["s3_put"]) * scale
        if delivery == "direct" else 0.0,
        # Per event, measured on a day of delivered rows (a round's fixed cost is monthly, below);
        # direct mode also waits for one GET per small object (assumed 15 ms each on S3).
        "compaction Lambda": (observed["compact_seconds_per_event"] * 1e6
                              + (observed["requests"] * scale * 0.015 if delivery == "direct" else 0.0))
        * COMPACT_GB * PRICES["lambda_gb_second_arm"],
        "CloudWatch Logs": requests * LOG_BYTES_PER_REQUEST / 1e9 * PRICES["logs_gb"] if platform_logs else 0.0,
        "S3 storage, 25 months": STORED_BYTES_PER_EVENT * 1e6 / 1e9 * PRICES["s3_gb_month"] * MONTHS_KEPT,
    }
    lines["total"] = sum(lines.values())
    return lines


def compaction_seconds_per_event(rows: list[dict[str, Any]], events: int = 20_000) -> float:
    """Seconds a maintenance round spends per event on `events` delivered rows (copies
    of `rows` with new ids, in one delivered object on local disk), less an empty round."""
    import orjson

    from traceglider.maintenance import run_maintenance
    from traceglider.storage.local import LocalStorage

    with tempfile.TemporaryDirectory() as root:
        storage = LocalStorage(root)
        run_maintenance(storage, None)  # an empty round: imports, lock, listings
        started = time.perf_counter()
        run_maintenance(storage, None)
        empty = time.perf_counter() - started
        body = b"".join(orjson.dumps({**rows[n % len(rows)], "event_id": f"c-{n}"}) + b"\n" for n in range(events))
        storage.put("incoming/2026/12/01/00/stream-1", body)
        started = time.perf_counter()
        summary = run_maintenance(storage, None)
        busy = time.perf_counter() - started
        assert summary["delivered"]["events"] == events, summary
    return max(busy - empty, 0.0) / events


def delivered_objects_monthly() -> float:
    """Firehose's delivered objects: a GET, a PUT per partition (one site assumed) and
    a LIST page per 1,000, whatever the volume."""
    return DELIVERED_OBJECTS_A_MONTH * (PRICES["s3_get"] + PRICES["s3_put"] * 2)


def section(observations: list[dict[str, Any]], load: tuple[float, float]) -> str:
    from bench.markdown import table

    batches = sorted({o["batch"] for o in observations})
    find = {(o["delivery"], o["batch"]): o for o in observations}
    counted = [["observed on the moto server, per request", *[f"{b} event{'s' if b > 1 else ''}/request"
                                                             for b in batches]]]
    for delivery in ("direct", "firehose"):
        o = {b: find[(delivery, b)] for b in batches}
        counted.append([f"{delivery}: S3 PUTs of event objects",
                        *[f"{o[b]['intake']['objects'].get('s3:PutObject:events', 0) / o[b]['requests']:.2f}"
                          for b in batches]])
        counted.append([f"{delivery}: Firehose PutRecordBatch calls",
                        *[f"{o[b]['intake']['counts'].get('firehose:PutRecordBatch', 0) / o[b]['requests']:.2f}"
                          for b in batches]])
        if delivery == "firehose":
            counted.append(["firehose: record size, median bytes (billed in 5 KB units)",
                            *[f"{sorted(o[b]['intake']['record_bytes'])[len(o[b]['intake']['record_bytes']) // 2]:,}"
                              for b in batches]])
        if delivery == "direct":  # (moto's Firehose delivers an object per call; Firehose per 15 min)
            counted.append([f"{delivery}: compaction GETs per request",
                            *[f"{o[b]['compaction']['counts'].get('s3:GetObject', 0) / o[b]['requests']:.2f}"
                              for b in batches]])
    money = [["$ per million events", *[f"{b} event{'s' if b > 1 else ''}/request" for b in batches]]]
    for delivery, frontend, logs, label in [
        ("direct", "api", True, "direct, HTTP API (before this change)"),
        ("firehose", "api", True, "**firehose, HTTP API**"),
        ("firehose", "api", False, "firehose, HTTP API, PlatformLogs=WARN"),
        ("firehose", "cloudfront", True, "firehose, CloudFront + function URL, past the free 10 M"),
        ("firehose", "url", True, "**firehose, function URL** (or CloudFront within its free 10 M)"),
        ("firehose", "url", False, "firehose, function URL, PlatformLogs=WARN"),
    ]:
        money.append([label, *[f"${per_million(find[(delivery, b)], frontend, logs)['total']:.2f}"
                               for b in batches]])
    lines = [["line (firehose, HTTP API)", *[f"{b}/request" for b in batches]]]
    names = list(per_million(find[("firehose", batches[0])]))
    for name in names:
        lines.append([name, *[f"${per_million(find[('firehose', b)])[name]:.3f}" for b in batches]])
    events = observations[0]["events"]
    per_event_us = observations[0]["compact_seconds_per_event"] * 1e6
    return f"""<!-- lambda-costs:start -->
Generated by `python bench/lambda_costs.py --events {events}` on {time.strftime('%Y-%m-%d')}
(load average {load[0]:.2f} before, {load[1]:.2f} after): {events} events per mode and
batch size through `traceglider.aws.handler`, then one scheduled compaction, against
moto's S3 and Firehose on a loopback port, which counted every request.

{table(counted)}

{table(money)}

{table(lines)}

Compaction's Lambda time per event is measured here ({per_event_us:.0f} µs per event for a
round over {20_000:,} delivered events, less an empty round). Plus, per month whatever
the volume: in firehose mode Firehose's delivered objects (one per 15 minutes:
{DELIVERED_OBJECTS_A_MONTH:,} read, converted and deleted) about
${delivered_objects_monthly():.2f}; in both modes the hourly rounds' fixed cost (720
rounds of a few seconds at 2 GB: about $0.05).
<!-- lambda-costs:end -->"""


def update_doc(text: str) -> None:
    current = DOC.read_text()
    pattern = re.compile(r"<!-- lambda-costs:start -->.*?<!-- lambda-costs:end -->", re.S)
    if not pattern.search(current):
        raise SystemExit(f"{DOC} has no lambda-costs markers")
    DOC.write_text(pattern.sub(lambda _: text, current))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from tests.aws_server import CountingMotoServer

    server = CountingMotoServer()
    server.start()
    load_before = os.getloadavg()[0]
    try:
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        observations = [observe(server, delivery, batch, args.events)
                        for delivery in ("direct", "firehose") for batch in (1, 5, 20)]
        per_event = compaction_seconds_per_event([r for o in observations for r in o["sample"]])
        for o in observations:
            o["compact_seconds_per_event"] = per_event
    finally:
        server.stop()
    text = section(observations, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_doc:
        update_doc(text)
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
