"""Lambda cold start: what importing the handler and the `/collect` path costs, and how
long the first request through it takes, in both delivery modes, side by side with the
naive stack (FastAPI + Mangum + boto3 + pyarrow), against moto's S3 and Firehose on a
loopback port.

    python bench/lambda_coldstart.py            # measure, print, update docs/benchmarks.md
    python bench/lambda_coldstart.py --check [--delivery firehose]
                                                # one first request, JSON only (tests)

Import cost is `python -X importtime` summed over the top-level imports (cumulative
microseconds), one fresh interpreter per figure, the statements interleaved run by run
so that the machine's load falls on all of them alike; first-request time is measured
in a fresh interpreter per run (import, then the first `/collect`, which builds what it
needs), so nothing is warm except the operating system's file cache.
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


def import_ms(statement: str) -> tuple[float, float]:
    """(sum of `-X importtime` cumulative times of the top-level imports, CPU time of
    the whole interpreter), in ms. Wall-clock import times swing tenfold when other
    work shares the CPUs; the process's own CPU time much less."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = 0
    for line in run.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and not match.group(3):  # no indent: imported at top level
            total += int(match.group(2))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return total / 1000, cpu * 1000


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


STATEMENTS = {
    "startup": "pass",  # the interpreter's own start (site, encodings): subtracted from the others
    "naive": "import fastapi, mangum, boto3, pyarrow",
    "handler": "import traceglider.aws",
    "direct": "import traceglider.aws, traceglider.app, traceglider.storage.s3, mangum",
    "firehose": ("import traceglider.aws, traceglider.lambda_collect, traceglider.firehose, "
                 "traceglider.storage.s3_http"),
}


def first_requests(runs: int, deliveries: tuple[str, ...] = ("direct",)) -> dict[str, list[dict]]:
    """`runs` first requests in fresh interpreters per delivery mode, interleaved."""
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
            clients = {name: boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="bench", aws_secret_access_key="bench")
                       for name in ("s3", "firehose")}
            clients["s3"].create_bucket(Bucket="bench")
            clients["firehose"].create_delivery_stream(
                DeliveryStreamName="bench", DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/bench", "BucketARN": "arn:aws:s3:::bench",
                    "Prefix": "tg/incoming/"})
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TG_", "AWS_"))}
            env.update(credentials)
            env.update({"TG_STORAGE": "s3://bench/tg", "TG_S3_ENDPOINT_URL": endpoint,
                        "TG_SITES": "example.com", "TG_SPOOL_DIR": os.path.join(home, "spool"),
                        "TG_FIREHOSE_STREAM": "bench", "TG_FIREHOSE_ENDPOINT_URL": endpoint,
                        "PYTHONPATH": str(ROOT)})
            results: dict[str, list[dict]] = {d: [] for d in deliveries}
            for run in range(runs):
                for delivery in deliveries:
                    # No TG_SECRET, as in a template deployed without one: the first request
                    # also reads (or on the very first run creates) the secret in the bucket.
                    out = subprocess.run([sys.executable, "-c", CHILD, f"{delivery}{run}"],
                                         env={**env, "TG_DELIVERY": delivery},
                                         capture_output=True, text=True, cwd=home, check=True)
                    results[delivery].append(json.loads(out.stdout.strip().splitlines()[-1]))
            return results
    finally:
        server.stop()


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def measure(runs: int) -> dict:
    load_before = os.getloadavg()
    for statement in STATEMENTS.values():
        import_ms(statement)  # the first run may write bytecode caches
    imports: dict[str, list[float]] = {name: [] for name in STATEMENTS if name != "startup"}
    cpu: dict[str, list[float]] = {name: [] for name in imports}
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for _ in range(runs):
        measured = {name: import_ms(statement) for name, statement in STATEMENTS.items()}
        base_wall, base_cpu = measured.pop("startup")
        for name, (wall, used) in measured.items():
            imports[name].append(max(wall - base_wall, 0.0))
            cpu[name].append(max(used - base_cpu, 0.0))
        ratios.append(imports["firehose"][-1] / imports["naive"][-1])
        cpu_ratios.append(cpu["firehose"][-1] / cpu["naive"][-1])
    firsts = first_requests(runs, ("direct", "firehose"))
    load_after = os.getloadavg()
    return {
        "imports_ms": {name: spread(values) for name, values in imports.items()},
        "imports_cpu_ms": {name: spread(values) for name, values in cpu.items()},
        "firehose_over_naive": spread(ratios),
        "firehose_over_naive_cpu": spread(cpu_ratios),
        "first_request_ms": {d: spread([r["first_request_ms"] for r in rs]) for d, rs in firsts.items()},
        "first_over_direct": spread([f["first_request_ms"] / d["first_request_ms"]
                                     for d, f in zip(firsts["direct"], firsts["firehose"], strict=True)]),
        "warm_request_ms": {d: statistics.median(r["warm_request_ms"] for r in rs) for d, rs in firsts.items()},
        "max_rss_mb": {d: max(r["max_rss_mb"] for r in rs) for d, rs in firsts.items()},
        "statuses": sorted({r["status"] for rs in firsts.values() for r in rs}),
        "imported_after_first_request": {d: rs[0]["imported_after_first_request"] for d, rs in firsts.items()},
        "runs": runs,
        "load": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def _row(label: str, figures: dict[str, float], digits: int = 0) -> str:
    return f"| {label} | {figures['min']:.{digits}f} | {figures['median']:.{digits}f} | {figures['max']:.{digits}f} |"


def _row2(label: str, wall: dict[str, float], cpu: dict[str, float], digits: int = 0) -> str:
    cells = [f"{figures[k]:.{digits}f}" for figures in (wall, cpu) for k in ("min", "median", "max")]
    return f"| {label} | " + " | ".join(cells) + " |"


def section(result: dict) -> str:
    imports, firsts, cpu = result["imports_ms"], result["first_request_ms"], result["imports_cpu_ms"]
    handler = imports["handler"]["median"]
    verdict = "within" if handler <= BUDGET_MS else "OVER"
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs shared with other "
               f"work, Python {platform.python_version()}, load average {result['load'][0]:.2f} before "
               f"and {result['load'][1]:.2f} after")
    ratio = result["firehose_over_naive"]
    warm, rss = result["warm_request_ms"], result["max_rss_mb"]
    loaded = {d: ", ".join(mods) or "nothing heavy" for d, mods in result["imported_after_first_request"].items()}
    return f"""{SECTION}

Measured by `python bench/lambda_coldstart.py --runs {result['runs']}` on {time.strftime('%Y-%m-%d')}
({machine}); {result['runs']} fresh interpreters per figure, the statements interleaved
run by run. S3 and Firehose are a moto server on a loopback port.

Imports, ms: `python -X importtime -c "<statement>"` (the top-level cumulative times
summed), and the CPU time of the same interpreter (user + system), each less the same
figure for `python -c pass` in the same run (the interpreter's own start). The CPU
times are the steadier figure on a loaded machine.

| statement | importtime min | median | max | CPU min | median | max |
|---|---:|---:|---:|---:|---:|---:|
{_row2("naive stack: `import fastapi, mangum, boto3, pyarrow`", imports["naive"], cpu["naive"])}
{_row2(f"`import traceglider.aws`, the handler module (budget {BUDGET_MS:.0f} ms: {verdict})",
       imports["handler"], cpu["handler"])}
{_row2("/collect path, `TG_DELIVERY=direct` (`traceglider.app`, `storage.s3`, `mangum`)",
       imports["direct"], cpu["direct"])}
{_row2("/collect path, `TG_DELIVERY=firehose` (`lambda_collect`, `firehose`, `storage.s3_http`)",
       imports["firehose"], cpu["firehose"])}
{_row2("ratio firehose path / naive stack, run by run", ratio, result["firehose_over_naive_cpu"], 2)}

First request through `handler` in a fresh interpreter (import, build, read the secret
and the day's salt from S3, a 5-event batch kept before the answer), ms:

| delivery | min | median | max |
|---|---:|---:|---:|
{_row("direct (Parquet object to S3)", firsts["direct"])}
{_row("firehose (PutRecordBatch)", firsts["firehose"])}
{_row("ratio firehose / direct, run by run", result["first_over_direct"], 2)}

| | direct | firehose |
|---|---:|---:|
| warm request, median of 20 (5 events), ms | {warm['direct']:.1f} | {warm['firehose']:.1f} |
| peak memory (RSS) after 21 requests, MB | {rss['direct']:.0f} | {rss['firehose']:.0f} |

Loaded by the first request: direct: {loaded['direct']}; firehose: {loaded['firehose']}.
The firehose path answers `/collect` without FastAPI, boto3 or pyarrow
(`traceglider/lambda_collect.py`, signed requests from `traceglider/awsapi.py`); the
app is built only when another route is called. The largest single part of its first
request is the user-agent resolver building its regex set (about 0.4 s unloaded; it
reads ua-parser's lazy matchers, so no Python regex is compiled). DuckDB is never
imported on either path. On Lambda the first-request time is part of the cold start;
a 512 MB function has about 0.3 of a vCPU, so expect it 2-3 times the figures above there (plus the
image's start), and look for `Init Duration` and `Duration` in the function's `REPORT`
log lines. The figures vary by a factor of two with the machine's load; the ratios,
taken run by run, vary much less.
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
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="one run, JSON out, no doc update")
    parser.add_argument("--delivery", choices=("direct", "firehose"), default="direct",
                        help="the mode of --check")
    args = parser.parse_args()
    if args.check:
        (result,) = first_requests(1, (args.delivery,))[args.delivery]
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
