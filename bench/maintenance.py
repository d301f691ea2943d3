"""The maintenance round `serve` runs every TG_COMPACT_SECONDS (traceglider/maintenance.py):
what it costs, and what it saves the dashboard.

Takes two full days (as yesterday and today) of a raw dataset made by bench_stats.py
(`<dir>/raw-<n>`, many small files per day, as the collector writes them), then:

1. a first round, as on a server started on that backlog: both days compacted;
2. a round with nothing to do;
3. the steady state: an hour of new files for today (1/24 of the day's files, their
   events given new ids), compacted with the rest of today.

Baseline in the same run: the stats engine reading today (`period=day`, every panel
of the dashboard's default view) on the files as the collector wrote them, and again
after the first round.

    .venv/bin/python bench/maintenance.py --raw /tmp/tg-bench/raw-10000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.markdown import table  # noqa: E402
from traceglider.stats.engine import Engine  # noqa: E402
from traceglider.storage.local import LocalStorage  # noqa: E402

SITE = "bench.example"


_ROUND = """
import json, sys, time, datetime as dt
from traceglider.maintenance import run_maintenance
from traceglider.storage.local import LocalStorage
storage = LocalStorage(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
summary = run_maintenance(storage, None, today=dt.date.fromisoformat(sys.argv[2]))
print(json.dumps({"summary": summary, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "rss_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                                 if line.startswith("VmHWM")) / 1024}))
"""


def maintenance_round(root: Path, today: str) -> dict:
    """One round in a process of its own, so that its peak memory is its own (VmHWM:
    ru_maxrss would count the memory of this process, forked before the exec)."""
    run = subprocess.run([sys.executable, "-c", _ROUND, str(root), today], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return dict(json.loads(run.stdout))


def dashboard_day(storage: LocalStorage, day: date) -> float:
    """Every request of the dashboard's default view for `day`, on a new engine."""
    from traceglider.dashboard.panels import default_requests
    from traceglider.stats.api import handle

    engine = Engine(storage)
    try:
        started = time.perf_counter()
        for kind, params in default_requests(SITE, lambda site: {}):
            handle(kind, engine, {**params, "period": "day", "date": day.isoformat()})
        return time.perf_counter() - started
    finally:
        engine.close()


def files(root: Path, day: str) -> int:
    return len(list((root / "events" / f"site={SITE}" / f"date={day}").glob("*.parquet")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True, help="a raw dataset of bench_stats.py, e.g. /tmp/tg-bench/raw-1000000")
    args = ap.parse_args()
    source = Path(args.raw) / "events" / f"site={SITE}"
    # the last day of demo data stops at the time it was made: take the two days before
    yesterday, today = sorted(p.name.removeprefix("date=") for p in source.iterdir())[-3:-1]
    root = Path(tempfile.mkdtemp(prefix="tg-maint-"))
    try:
        for day in (yesterday, today):
            shutil.copytree(source / f"date={day}", root / "events" / f"site={SITE}" / f"date={day}")
        storage = LocalStorage(str(root))
        run_date = date.fromisoformat(today)
        rows: list[list[str]] = [["round", "files before", "events", "wall s", "CPU s", "peak RSS MB"]]
        before_files = files(root, today)
        both_files = before_files + files(root, yesterday)
        raw_dashboard = dashboard_day(storage, run_date)

        first = maintenance_round(root, today)
        events = sum(r["rows_after"] for day in first["summary"]["compacted"].values() for r in day)
        rows.append(["first round: yesterday and today", str(both_files), f"{events:,}",
                     f"{first['wall']:.2f}", f"{first['cpu']:.2f}", f"{first['rss_mb']:.0f}"])
        compacted_dashboard = dashboard_day(storage, run_date)

        idle = maintenance_round(root, today)
        rows.append(["a round with nothing to do", "2", "0", f"{idle['wall']:.3f}", f"{idle['cpu']:.3f}",
                     f"{idle['rss_mb']:.0f}"])

        # an hour of traffic: 1/24 of the day's raw files, as new events
        raw_today = sorted((source / f"date={today}").glob("*.parquet"))
        hour = raw_today[::24]  # spread over the day: the early hours are quiet
        target = root / "events" / f"site={SITE}" / f"date={today}"
        added = 0
        for n, path in enumerate(hour):
            data = pq.read_table(path)
            ids = pc.binary_join_element_wise(data.column("event_id"), f"-h{n}", "")
            pq.write_table(data.set_column(data.schema.get_field_index("event_id"), "event_id", ids),
                           target / f"{time.time_ns()}-bench-hour-{n}.parquet", compression="zstd")
            added += data.num_rows
        steady = maintenance_round(root, today)
        (result,) = steady["summary"]["compacted"][today]
        rows.append([f"steady state: today plus an hour ({added:,} new events)", str(result["files_before"]),
                     f"{result['rows_after']:,}", f"{steady['wall']:.2f}", f"{steady['cpu']:.2f}",
                     f"{steady['rss_mb']:.0f}"])

        print(f"# maintenance round, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.raw}\n")
        print(table(rows))
        print()
        print(table([["dashboard's default view of today, new engine", "seconds"],
                      [f"on the collector's files ({before_files})", f"{raw_dashboard:.2f}"],
                      ["after the first round (1 file)", f"{compacted_dashboard:.2f}"]]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
