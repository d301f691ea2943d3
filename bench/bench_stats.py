"""Analytics read path against plain DuckDB SQL over the same files, in the same run.

Every measurement runs in a fresh process (nothing warm: no engine, no DuckDB, no OS
page cache beyond what the machine keeps), repeated, reported as min/median/max with
the load average. "plain DuckDB" is hand-written SQL over the same visits and events
files (`plain()`): the physical limit of answering from this layout.

    .venv/bin/python bench/bench_stats.py --store /work/data-10m/local [--repeat 5] [--s3 [--latency-ms 20]]
    .venv/bin/python bench/bench_stats.py --generate 10000000 --store /work/data-10m/local

With `--s3` the store is copied to a moto server on loopback and the default view is
read from there; its baseline is plain DuckDB reading every column that view needs
once (`plain_scan`), over the same S3 and on local disk.

`--generate N` writes N demo events over 30 days as `demo-data` does (past days
compacted, visits written), into `--store`. The figures are written as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.markdown import table  # noqa: E402

SITE = "bench.example"
ROOT = Path(__file__).resolve().parents[1]
FILTERS = {"a country": "visit:country==DE", "a page": "event:page==/pricing", "a source": "visit:source==Google"}


# -- what a fresh process measures (`--child`) ------------------------------------

def child_dashboard(store: str, endpoint: str | None) -> dict:
    """Every request of the dashboard's default view and realtime, on a new engine."""
    started = time.perf_counter()
    from traceglider.dashboard.panels import default_requests
    from traceglider.stats import service
    from traceglider.stats.api import handle
    from traceglider.stats.engine import Engine

    threads = int(os.environ.get("BENCH_THREADS", "0")) or None  # None: the product's choice
    engine = Engine(_storage(store, endpoint), threads=threads)
    requests = default_requests(SITE, lambda site: service.site_config(engine, site))
    t0 = time.perf_counter()
    for kind, params in requests:
        handle(kind, engine, params)
    service.realtime_visitors(engine, SITE)
    cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    for kind, params in requests:
        handle(kind, engine, params)
    warm = time.perf_counter() - t1
    return {"cold": cold, "warm": warm, "process": time.perf_counter() - started, "requests": len(requests)}


def child_filtered(store: str, filters: str) -> dict:
    """A filtered view's first request (headline + top pages), then the same again and
    the next page of the breakdown, on a new engine."""
    from traceglider.stats.api import handle
    from traceglider.stats.engine import Engine
    from traceglider.storage.local import LocalStorage

    engine = Engine(LocalStorage(store))
    base = {"site_id": SITE, "period": "30d", "filters": filters}
    headline = {**base, "metrics": "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration"}
    pages = {**base, "property": "event:page", "limit": "10", "metrics": "visitors,pageviews"}
    t0 = time.perf_counter()
    handle("aggregate", engine, headline)
    handle("breakdown", engine, pages)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    handle("aggregate", engine, headline)
    handle("breakdown", engine, pages)
    again = time.perf_counter() - t1
    t2 = time.perf_counter()
    handle("breakdown", engine, {**pages, "page": "2"})
    next_page = time.perf_counter() - t2
    return {"first": first, "again": again, "next_page": next_page}


def child_plain(store: str, filters: str) -> dict:
    """The same question in hand-written DuckDB SQL over the same files: a page's
    visitors are those with any event on it (its engagement and clicks too), as the
    metrics define them; pageviews are its pageview events."""
    import duckdb

    from traceglider.stats.engine import Engine
    from traceglider.storage.local import LocalStorage

    engine = Engine(LocalStorage(store))  # only for the file list (listing and plan)
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) + timedelta(days=1)
    start = end - timedelta(days=30)
    sources = engine.plan(SITE, start, end)
    ev, vi = engine.uris(sources.event_files), engine.uris(sources.visit_files)
    raw = engine.uris(sources.slow)
    engine.close()
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    prop, _, value = filters.partition("==")
    col = {"visit:country": "country", "visit:source": "source", "event:page": "path"}[prop]
    values = {"ev": ev, "vi": vi, "s": start.replace(tzinfo=UTC), "e": end.replace(tzinfo=UTC), "x": value}

    def run(sql: str) -> list:
        import re

        names = set(re.findall(r"\$(\w+)", sql))
        return con.execute(sql, {k: v for k, v in values.items() if k in names}).fetchall()
    # today's files (not compacted) joined in as they are: plain SQL has no visits for them
    today = (f"UNION ALL SELECT visitor_id, visit_id, type, path, received_at FROM read_parquet({raw!r}) "
             if raw else "")
    events = f"(SELECT visitor_id, visit_id, type, path, received_at FROM read_parquet($ev) {today})"
    if prop.startswith("visit:"):
        visits = f"(SELECT * FROM read_parquet($vi) WHERE {col} = $x AND start >= $s AND start < $e)"
        run(f"SELECT count(DISTINCT visitor_hash), count(*), sum(pageviews), avg(bounce::INT), "
            f"avg(duration) FROM {visits}")
        run(f"SELECT path, count(DISTINCT visitor_id), count(*) FILTER (WHERE type = 'pageview') FROM {events} "
            f"WHERE received_at >= $s AND received_at < $e AND visit_id IN "
            f"(SELECT visit_id FROM read_parquet($vi) WHERE {col} = $x) GROUP BY path "
            f"ORDER BY 2 DESC LIMIT 10")
    else:
        run(f"SELECT count(DISTINCT visitor_id), count(*) FILTER (WHERE type = 'pageview') FROM {events} "
            f"WHERE path = $x AND received_at >= $s AND received_at < $e")
        run(f"SELECT count(*), avg(bounce::INT), avg(duration) FROM read_parquet($vi) WHERE start >= $s "
            f"AND start < $e AND visit_id IN (SELECT visit_id FROM {events} WHERE path = $x "
            f"AND received_at >= $s AND received_at < $e)")
        run(f"SELECT path, count(DISTINCT visitor_id), count(*) FILTER (WHERE type = 'pageview') FROM {events} "
            f"WHERE path = $x AND received_at >= $s AND received_at < $e GROUP BY path")
    return {"first": time.perf_counter() - t0}


def child_plain_dashboard(store: str) -> dict:
    """Every question of the default view in hand-written DuckDB SQL over the same
    compacted files, as a person would write it (exact counts, like the engine's): the
    floor for answering that view from this layout on this machine. Today's files are
    left out (they need sessionising, which plain SQL has not got): slightly less work."""
    import duckdb

    from traceglider.stats.engine import Engine
    from traceglider.storage.local import LocalStorage

    engine = Engine(LocalStorage(store))  # only for the file lists (listing and plan)
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start, before = end - timedelta(days=30), end - timedelta(days=60)
    now, earlier = engine.plan(SITE, start, end), engine.plan(SITE, before, start)
    engine.close()
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    inter = "('custom', 'click', 'form_submit')"
    for sources, s, e in ((now, start, end), (earlier, before, start)):
        if not sources.visit_files:
            continue
        values = {"vi": engine.uris(sources.visit_files), "s": s, "e": e}
        visits = "read_parquet($vi) WHERE start >= $s AND start < $e"
        con.execute(f"SELECT count(DISTINCT visitor_hash), count(*), sum(pageviews), avg(bounce::INT), "
                    f"avg(duration) FROM {visits}", values).fetchall()
        con.execute(f"SELECT epoch_us(date_trunc('day', start)) AS d, count(DISTINCT visitor_hash) FROM {visits} "
                    f"GROUP BY d", values).fetchall()
    values = {"ev": engine.uris(now.event_files), "vi": engine.uris(now.visit_files), "s": start, "e": end}
    visits = "read_parquet($vi) WHERE start >= $s AND start < $e"
    events = "read_parquet($ev) WHERE received_at >= $s AND received_at < $e"
    queries = [
        f"""WITH e AS (SELECT * FROM {events}),
            pv AS (SELECT path, count(DISTINCT visitor_id) AS visitors,
                          count(*) FILTER (WHERE type = 'pageview') AS pageviews FROM e GROUP BY path),
            sc AS (SELECT path, avg(scroll) AS scroll FROM (SELECT path, visit_id, max(scroll_depth) AS scroll
                   FROM e WHERE type = 'engagement' GROUP BY path, visit_id) GROUP BY path)
            SELECT * FROM pv LEFT JOIN sc USING (path) ORDER BY visitors DESC LIMIT 10""",
        *(f"SELECT {c}, count(DISTINCT visitor_hash) AS n FROM {visits} GROUP BY {c} ORDER BY n DESC LIMIT 10"
          for c in ("source", "country", "device_type")),
        f"""SELECT name, count(DISTINCT visitor_id) AS n, count(*) FROM {events} AND type IN {inter}
            AND name NOT IN ('engagement', 'vital', 'JS Error') GROUP BY name ORDER BY n DESC LIMIT 10""",
        f"""SELECT g, count(DISTINCT visitor_id), count(*) FROM (SELECT visitor_id, CASE
              WHEN type = 'pageview' AND path = '/pricing' THEN 'Visit /pricing'
              WHEN type = 'pageview' AND path = '/signup' THEN 'Visit /signup'
              WHEN type IN {inter} AND name IN ('Signup', 'Newsletter', 'Outbound Link: Click', 'File Download')
              THEN name END AS g FROM {events}) WHERE g IS NOT NULL GROUP BY g""",
        f"""WITH f AS (SELECT visit_id, visitor_id, received_at AS t, type = 'pageview' AND path = '/' AS c0,
                       type = 'pageview' AND path = '/pricing' AS c1, type = 'pageview' AND path = '/signup' AS c2,
                       type IN {inter} AND name = 'Signup' AS c3 FROM {events}
                       AND (type = 'pageview' AND path IN ('/', '/pricing', '/signup') OR name = 'Signup')),
            s0 AS (SELECT visit_id, any_value(visitor_id) AS v, min(t) AS t FROM f WHERE c0 GROUP BY visit_id),
            s1 AS (SELECT f.visit_id, any_value(f.visitor_id) AS v, min(f.t) AS t FROM f JOIN s0 USING (visit_id)
                   WHERE f.c1 AND f.t >= s0.t GROUP BY f.visit_id),
            s2 AS (SELECT f.visit_id, any_value(f.visitor_id) AS v, min(f.t) AS t FROM f JOIN s1 USING (visit_id)
                   WHERE f.c2 AND f.t >= s1.t GROUP BY f.visit_id),
            s3 AS (SELECT f.visit_id, any_value(f.visitor_id) AS v FROM f JOIN s2 USING (visit_id)
                   WHERE f.c3 AND f.t >= s2.t GROUP BY f.visit_id)
            SELECT (SELECT count(DISTINCT v) FROM s0), (SELECT count(DISTINCT v) FROM s1),
                   (SELECT count(DISTINCT v) FROM s2), (SELECT count(DISTINCT v) FROM s3)""",
    ]
    each = []
    for sql in queries:
        t1 = time.perf_counter()
        con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql}).fetchall()
        each.append(round(time.perf_counter() - t1, 3))
    return {"first": time.perf_counter() - t0, "each": each}


def child_plain_scan(store: str, endpoint: str | None) -> dict:
    """Plain DuckDB reading, once, every column of the 30 days' events and visits that
    the default view reads (through the same connection setup, so the same S3 client
    settings): what fetching the data costs on this storage, before any question."""
    from datetime import UTC, datetime, timedelta

    from traceglider.stats.engine import Engine
    from traceglider.storage.duck import connect

    storage = _storage(store, endpoint)
    engine = Engine(storage)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) + timedelta(days=1)
    sources = engine.plan(SITE, end - timedelta(days=30), end)
    ev, vi = engine.uris(sources.event_files), engine.uris(sources.visit_files)
    engine.close()
    t0 = time.perf_counter()
    con = connect(storage)
    con.execute("SELECT count(DISTINCT visitor_id), count(DISTINCT path), count(DISTINCT name), "
                "max(epoch_us(received_at)), max(visit_id), max(scroll_depth), max(type) FROM read_parquet($f)",
                {"f": ev}).fetchall()
    con.execute("SELECT count(DISTINCT visitor_hash), max(epoch_us(start)), max(source), max(country), "
                "max(device_type), max(duration), max(pageviews) FROM read_parquet($f)", {"f": vi}).fetchall()
    return {"first": time.perf_counter() - t0}


def _storage(store: str, endpoint: str | None):  # type: ignore[no-untyped-def]
    if store.startswith("s3://"):
        from traceglider.storage.s3 import S3Storage

        return S3Storage(store, endpoint_url=endpoint)
    from traceglider.storage.local import LocalStorage

    return LocalStorage(store)


# -- the parent: fresh processes, repeated ---------------------------------------------

def run_child(*args: str, env: dict[str, str] | None = None) -> tuple[dict, float, int]:
    """(the child's figures, its wall time, its max RSS in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(out.stdout.strip().splitlines()[-1]), wall, max(rss, before) >> 10


def stats_cli(store: str, *extra: str) -> tuple[float, int]:
    """`traceglider stats --period 30d`: wall time and max RSS (MiB) of the process."""
    cmd = ["/usr/bin/time", "-f", "%M", str(Path(sys.executable).parent / "traceglider"), "stats", "--site", SITE,
           "--storage", store, "--period", "30d", *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - started, int(out.stderr.strip().splitlines()[-1]) >> 10


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--store", default="/work/data-10m/local")
    ap.add_argument("--generate", type=int)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--s3", action="store_true", help="also the default view on a moto S3 server")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="with --s3: hold every request to S3 this long (bench/latency_proxy.py)")
    args = ap.parse_args()
    if args.child:
        from traceglider.memory import keep_pandas_out

        keep_pandas_out()  # as the command's process (`serve`, `stats`) does
        what, *rest = args.child
        result = {"dashboard": lambda: child_dashboard(rest[0], rest[1] if len(rest) > 1 else None),
                  "filtered": lambda: child_filtered(rest[0], rest[1]),
                  "plain": lambda: child_plain(rest[0], rest[1]),
                  "plain_dashboard": lambda: child_plain_dashboard(rest[0]),
                  "plain_scan": lambda: child_plain_scan(rest[0], rest[1] if len(rest) > 1 else None)}[what]()
        print(json.dumps(result))
        return
    if args.generate:
        subprocess.run([str(Path(sys.executable).parent / "traceglider"), "demo-data", "--storage", args.store,
                        "--site", SITE, "--events", str(args.generate)], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = [["question", "TraceGlider s (min / median / max)", "plain DuckDB s", "ratio (medians)", "load avg"]]
    cold, warm, process, rss, plain_view = [], [], [], [], []
    for _ in range(args.repeat):
        figures, wall, mib = run_child("dashboard", args.store)
        cold.append(figures["cold"])
        warm.append(figures["warm"])
        process.append(wall)
        rss.append(mib)
        plain_view.append(run_child("plain_dashboard", args.store)[0]["first"])
    rows.append([f"default dashboard view ({figures['requests']} requests + realtime), fresh process",
                 spread(cold), spread(plain_view), f"{statistics.median(cold) / statistics.median(plain_view):.2f}x",
                 load()])
    rows.append(["  the same, whole process (start-up, imports included)", spread(process), "-", "-", load()])
    rows.append(["  the same again in that process (warm)", spread(warm), "-", "-", load()])
    for label, filters in FILTERS.items():
        ours, plain, again, nxt = [], [], [], []
        for _ in range(args.repeat):
            figures, _, _ = run_child("filtered", args.store, filters)
            ours.append(figures["first"])
            again.append(figures["again"])
            nxt.append(figures["next_page"])
            plain.append(run_child("plain", args.store, filters)[0]["first"])
        ratio = statistics.median(ours) / statistics.median(plain)
        rows.append([f"filtered by {label} (`{filters}`): headline + top pages, first request",
                     spread(ours), spread(plain), f"{ratio:.2f}x", load()])
        rows.append(["  the same again (warm) / the next page of pages", f"{spread(again)} / {spread(nxt)}",
                     "-", "-", load()])
    cli = [stats_cli(args.store) for _ in range(args.repeat)]
    rows.append(["`traceglider stats --period 30d`, whole process", spread([c[0] for c in cli]), "-", "-", load()])
    rows.append(["  its max RSS, MiB", f"{min(c[1] for c in cli)} / {statistics.median([c[1] for c in cli])} / "
                                       f"{max(c[1] for c in cli)}", "-", "-", load()])
    if args.s3:
        rows += s3_rows(args.store, args.repeat, args.latency_ms / 1000)
    print(table(rows))


def s3_rows(store: str, repeat: int, latency: float = 0.0) -> list[list[str]]:
    """The default view over moto's S3 on loopback (every request held `latency` s by a
    proxy: a real store's round trip), with the product's threads and with one per core
    (what it used before reading object storage with more), against plain DuckDB reading
    the same columns once."""
    from moto.server import ThreadedMotoServer

    from bench.latency_proxy import LatencyProxy
    from traceglider.storage.local import LocalStorage
    from traceglider.storage.s3 import S3Storage

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1"})
        s3 = S3Storage("s3://tg-bench/data", endpoint_url=f"http://127.0.0.1:{port}")
        s3.client.create_bucket(Bucket="tg-bench")
        local = LocalStorage(store)
        for prefix in ("events/", "visits/", "_sites/"):
            for info in local.list(prefix):
                s3.put(info.key, local.get(info.key))
        cold, per_core, plain = [], [], []
        with LatencyProxy("127.0.0.1", port, latency) as proxy:
            endpoint = f"http://127.0.0.1:{proxy.port}"
            for _ in range(repeat):
                cold.append(run_child("dashboard", "s3://tg-bench/data", endpoint)[0]["cold"])
                per_core.append(run_child("dashboard", "s3://tg-bench/data", endpoint,
                                          env={"BENCH_THREADS": str(os.cpu_count() or 1)})[0]["cold"])
                plain.append(run_child("plain_scan", "s3://tg-bench/data", endpoint)[0]["first"])
        local_scan = [run_child("plain_scan", store)[0]["first"] for _ in range(repeat)]
    finally:
        server.stop()
    ratio = statistics.median(cold) / statistics.median(plain)
    held = f", every request held {latency * 1000:.0f} ms" if latency else ""
    return [[f"default dashboard view on S3 (moto on loopback{held}), fresh process", spread(cold), spread(plain),
             f"{ratio:.2f}x", load()],
            [f"  the same with one DuckDB thread per core ({os.cpu_count()})", spread(per_core), "-",
             f"{statistics.median(per_core) / statistics.median(cold):.2f}x ours", load()],
            ["  plain DuckDB reading those files once, local disk (the same columns)", "-", spread(local_scan), "-",
             load()]]


if __name__ == "__main__":
    main()
