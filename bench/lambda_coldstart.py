"""Lambda cold start: what importing the handler costs, and how long the first request
through it takes, against a moto S3 server on a loopback port.

    python bench/lambda_coldstart.py            # measure, print, update docs/benchmarks.md
    python bench/lambda_coldstart.py --check    # one run, print JSON only (used by tests)

Import cost is `python -X importtime` summed over the top-level imports (cumulative
microseconds), median of several fresh interpreters; first-request time is measured in
a fresh interpreter per run (import, then the first `/collect`, which builds the app),
so nothing is warm except the operating system's file cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Lambda cold start"
BUDGET_MS = 400.0
HEAVY = ("fastapi", "pydantic", "starlette", "boto3", "botocore", "pyarrow", "duckdb", "mangum")


def import_ms(statement: str) -> float:
    """Sum of `-X importtime` cumulative times of the top-level imports, in ms."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    total = 0
    for line in run.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and not match.group(3):  # no indent: imported at top level
            total += int(match.group(2))
    return total / 1000


def median_import_ms(statement: str, runs: int) -> float:
    import_ms(statement)  # the first run may write bytecode caches
    return statistics.median(import_ms(statement) for _ in range(runs))


CHILD = r"""
import base64, json, sys, time
t0 = time.perf_counter()
import traceglider.aws as aws
t1 = time.perf_counter()
loaded = set(sys.modules)

def event(ids):
    body = json.dumps({"site": "example.com", "events": [
        {"id": i, "type": "pageview", "ts": int(time.time() * 1000),
         "url": "https://example.com/pricing?utm_source=bench", "ref": "https://duckduckgo.com/"}
        for i in ids]}).encode()
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/collect", "rawQueryString": "",
            "cookies": ["tg_vid=bench"],
            "headers": {"content-type": "text/plain;charset=UTF-8", "origin": "https://example.com",
                        "host": "bench.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https",
                        "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
            "requestContext": {"http": {"method": "POST", "path": "/collect", "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "bench"},
                               "requestId": "bench", "routeKey": "$default", "stage": "$default"},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}

run = sys.argv[1]
first = aws.handler(event([run + "-1", run + "-2", run + "-3", run + "-4", run + "-5"]), None)
t2 = time.perf_counter()
warm = []
for n in range(20):
    tw = time.perf_counter()
    aws.handler(event([run + f"-w{n}-{k}" for k in range(5)]), None)
    warm.append(time.perf_counter() - tw)
import resource
print(json.dumps({
    "status": first["statusCode"],
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "import_ms": (t1 - t0) * 1000,
    "first_request_ms": (t2 - t1) * 1000,
    "warm_request_ms": sorted(warm)[len(warm) // 2] * 1000,
    "imported_after_first_request": sorted(
        m for m in set(sys.modules) - loaded if m.split(".")[0] in __HEAVY__ and "." not in m),
}))
""".replace("__HEAVY__", repr(HEAVY))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def first_requests(runs: int) -> list[dict]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as home:
            credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1",
                           "AWS_CONFIG_FILE": os.path.join(home, "config"),
                           "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials")}
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                         aws_access_key_id="bench", aws_secret_access_key="bench",
                         ).create_bucket(Bucket="bench")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TG_", "AWS_"))}
            env.update(credentials)
            env.update({"TG_STORAGE": "s3://bench/tg", "TG_S3_ENDPOINT_URL": endpoint,
                        "TG_SITES": "example.com", "TG_SPOOL_DIR": os.path.join(home, "spool"),
                        "PYTHONPATH": str(ROOT)})
            results = []
            for run in range(runs):
                # No TG_SECRET, as in a template deployed without one: the first request
                # also reads (or on the very first run creates) the secret in the bucket.
                out = subprocess.run([sys.executable, "-c", CHILD, f"r{run}"], env=env,
                                     capture_output=True, text=True, cwd=home, check=True)
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            return results
    finally:
        server.stop()


def measure(runs: int) -> dict:
    handler_only = median_import_ms("import traceglider.aws", runs)
    collect_path = median_import_ms(
        "import traceglider.aws, traceglider.app, traceglider.storage.s3, mangum", runs)
    firsts = first_requests(runs)
    return {
        "import_handler_ms": handler_only,
        "import_collect_path_ms": collect_path,
        "first_request_ms": statistics.median(r["first_request_ms"] for r in firsts),
        "warm_request_ms": statistics.median(r["warm_request_ms"] for r in firsts),
        "max_rss_mb": max(r["max_rss_mb"] for r in firsts),
        "statuses": sorted({r["status"] for r in firsts}),
        "imported_after_first_request": firsts[0]["imported_after_first_request"],
        "runs": runs,
    }


def section(result: dict) -> str:
    verdict = "within" if result["import_handler_ms"] <= BUDGET_MS else "OVER"
    imported = ", ".join(result["imported_after_first_request"]) or "nothing heavy"
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    return f"""{SECTION}

Measured by `python bench/lambda_coldstart.py` on {time.strftime('%Y-%m-%d')} ({machine}),
medians of {result['runs']} fresh interpreters each; S3 is a moto server on a loopback port.

| what | ms |
|---|---|
| `python -X importtime -c "import traceglider.aws"` (summed top-level imports; \
budget {BUDGET_MS:.0f} ms) | {result['import_handler_ms']:.0f} ({verdict} budget) |
| imports of the `/collect` path (`traceglider.app`, `traceglider.storage.s3`, \
`mangum`) | {result['import_collect_path_ms']:.0f} |
| first request through `handler` (a 5-event batch: builds the app, reads the secret \
from S3, writes the batch) | {result['first_request_ms']:.0f} |
| a warm request (5 events, written to S3 before the answer) | {result['warm_request_ms']:.1f} |
| peak memory (RSS) of the process after 21 requests | {result['max_rss_mb']:.0f} MB |

Importing the handler module loads none of FastAPI, boto3, pyarrow or DuckDB; they are
imported when the first event arrives. The first request loaded:
{imported}. DuckDB is never imported on the `/collect` path (only the stats routes import it). On Lambda the
first-request time is part of the cold start; a 512 MB function has about 0.3 of a
vCPU, so expect it 2-3 times the figure above there (plus the image's start), and look
for `Init Duration` and `Duration` in the function's `REPORT` log lines. The handler
module is within the {BUDGET_MS:.0f} ms budget; the `/collect` path is not (FastAPI and
pydantic, pyarrow and boto3 make most of it), which is why it is deferred to the first
event. The figures vary by a factor of two with the machine's load.
"""


def update_doc(text: str) -> None:
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    DOC.write_text(updated.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="one run, JSON out, no doc update")
    args = parser.parse_args()
    if args.check:
        (result,) = first_requests(1)
        print(json.dumps(result))
        return 0 if result["status"] == 202 else 1
    result = measure(args.runs)
    print(json.dumps(result, indent=2))
    if result["statuses"] != [202]:
        print("a first request did not answer 202", file=sys.stderr)
        return 1
    update_doc(section(result))
    print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
