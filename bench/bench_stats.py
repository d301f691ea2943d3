"""Analytics query benchmark: the dashboard's full set of queries over 30 days of demo
data, cold (a new engine) and warm, before and after compaction, on local disk and on
a moto S3 server. Warm = the same panels again (their answers are cached per set of
files); "warm, tables only" = again with the answer cache off, on the cached tables.

    .venv/bin/python bench/bench_stats.py --events 1000000 10000000 [--s3] [--files-per-day 48]
    .venv/bin/python bench/bench_stats.py --events 10000000 --existing   # local-<n> as it is

Generated data is kept under `--dir` (raw-<n>) and copied for each run, so a rerun
skips generation; pass `--fresh` to generate again. Compaction time is reported too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.markdown import table  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from traceglider import demo_data  # noqa: E402
from traceglider.stats import service  # noqa: E402
from traceglider.stats.engine import Engine  # noqa: E402
from traceglider.storage.local import LocalStorage  # noqa: E402

SITE = "bench.example"


def dashboard(engine: Engine, now: datetime) -> float:
    """Every request of the dashboard's default view (`dashboard/panels.py`, the same
    the page makes), plus realtime visitors."""
    from traceglider.dashboard.panels import default_requests
    from traceglider.stats.api import handle

    requests = default_requests(SITE, lambda site: service.site_config(engine, site))
    started = time.perf_counter()
    for kind, params in requests:
        handle(kind, engine, params)
    service.realtime_visitors(engine, SITE)
    return time.perf_counter() - started


def measure(storage: object, label: str, now: datetime, endpoint: str | None = None) -> list[str]:
    engine = Engine(storage)  # type: ignore[arg-type]
    files = len(engine.partitions(SITE))
    cold = dashboard(engine, now)
    warm = min(dashboard(engine, now) for _ in range(2))
    engine.result_entries = 0  # the same queries run again on the cached tables
    tables = min(dashboard(engine, now) for _ in range(2))
    engine.close()
    return [label, str(files), f"{cold:.2f}", f"{warm:.2f}", f"{tables:.2f}"]


def stats_cli_seconds(root: Path) -> str:
    """`traceglider stats --site S --storage DIR` (period 7d), start-up included."""
    cli = Path(sys.executable).parent / "traceglider"
    cmd = [str(cli), "stats", "--site", SITE, "--storage", str(root)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return f"{time.perf_counter() - started:.2f}"


def compact(storage: object) -> bool:
    try:
        from traceglider.storage import compact as module
    except ImportError:
        return False
    run = getattr(module, "compact_partitions", None) or getattr(module, "compact", None)
    if run is None:
        return False
    started = time.perf_counter()
    run(storage, site=SITE)
    print(f"compacted in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--files-per-day", type=int, default=48)
    ap.add_argument("--s3", action="store_true", help="also run on a moto S3 server")
    ap.add_argument("--dir", default="/tmp/tg-bench")
    ap.add_argument("--fresh", action="store_true", help="generate the data again")
    ap.add_argument("--existing", action="store_true",
                    help="measure <dir>/local-<n> as it is (compacted by an earlier run): no copy, no compaction")
    args = ap.parse_args()
    now = datetime.now(UTC)
    rows = [["events", "storage / state", "files", "cold s", "warm s", "warm, tables only s",
             "`stats` CLI s"]]
    for n in args.events:
        raw, root = Path(args.dir) / f"raw-{n}", Path(args.dir) / f"local-{n}"
        if args.existing:
            rows.append([f"{n:,}", *measure(LocalStorage(root), "local, as it is", now), stats_cli_seconds(root)])
            continue
        if args.fresh or not raw.exists():
            shutil.rmtree(raw, ignore_errors=True)
            t = time.perf_counter()
            demo_data.generate(LocalStorage(raw), SITE, n, files_per_day=args.files_per_day,
                               duplicate_rate=0.001)
            print(f"generated {n} events in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(raw, root)
        storage = LocalStorage(root)
        rows.append([f"{n:,}", *measure(storage, "local, before compaction", now), stats_cli_seconds(root)])
        if compact(storage):
            rows.append([f"{n:,}", *measure(storage, "local, after compaction", now), stats_cli_seconds(root)])
        if args.s3:
            from moto.server import ThreadedMotoServer

            from traceglider.storage.s3 import S3Storage

            port = free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
            server.start()
            os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                               "AWS_DEFAULT_REGION": "us-east-1"})
            endpoint = f"http://127.0.0.1:{port}"
            s3 = S3Storage("s3://tg-bench/data", endpoint_url=endpoint)
            s3.client.create_bucket(Bucket="tg-bench")
            for info in storage.list("events/"):
                s3.put(info.key, storage.get(info.key))
            s3.put(f"_sites/{SITE}.json", storage.get(f"_sites/{SITE}.json"))
            label = "moto S3" + (", after compaction" if compact(s3) else "")
            rows.append([f"{n:,}", *measure(s3, label, now, endpoint), "–"])
            server.stop()
    print(table(rows))


if __name__ == "__main__":
    main()
