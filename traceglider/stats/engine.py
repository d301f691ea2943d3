"""Runs stats SQL with DuckDB over the Parquet dataset, local or on S3.

For a (site, period) the engine reads only that site's partitions of the dates in
the period (plus 30 minutes either side, so visits already running at the start are
not counted as new and a visit running past the end keeps its last half hour),
removes duplicate event ids, recomputes visits with the 30-minute inactivity rule,
and keeps two in-memory tables (events, visits) that every panel
of the dashboard then queries. They are cached under the exact list of files (and
their sizes), so new data or a compaction invalidates them by itself.

DuckDB is imported lazily: the routers must import fast on a Lambda cold start.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traceglider.storage.parquet import EVENTS_PREFIX, parse_key

if TYPE_CHECKING:
    from traceglider.storage.base import Storage

SESSION_GAP = timedelta(minutes=30)
CACHE_ENTRIES = 6
LIST_TTL_SECONDS = 2.0

_INTER = "('custom','click','form_submit')"
_VISIT_ATTRS = ("referrer", "source", "channel", "utm_source", "utm_medium", "utm_campaign",
                "utm_term", "utm_content", "country", "region", "device_type", "browser",
                "browser_version", "os", "os_version")

_BUILD_RAW = f"""
CREATE TABLE {{r}} AS
SELECT hash(event_id) AS eh, received_at::TIMESTAMP AS ts, hash(visitor_id) AS vh,
       type, name, path, hostname,
       CASE WHEN type IN {_INTER} THEN props END AS props,
       scroll_depth, engagement_ms, {", ".join(_VISIT_ATTRS)}
FROM read_parquet($files, union_by_name = true)
WHERE event_id IS NOT NULL
"""
# Keep the first copy of each event id (by time, then position).
_DEDUPE = """
DELETE FROM {r} WHERE rowid IN (
  SELECT rowid FROM {r} WHERE eh IN (SELECT eh FROM {r} GROUP BY eh HAVING count(*) > 1)
  QUALIFY row_number() OVER (PARTITION BY eh ORDER BY ts, rowid) > 1)
"""
# A visit starts at a visitor's first event and after every gap of over 30 minutes.
_SESSIONS = """
CREATE TABLE {k} AS
SELECT rid, hash(vh, sum(new_visit) OVER (PARTITION BY vh ORDER BY ts, eh
                                          ROWS UNBOUNDED PRECEDING)) AS vkey
FROM (SELECT rowid AS rid, vh, ts, eh,
             CASE WHEN ts - lag(ts) OVER (PARTITION BY vh ORDER BY ts, eh) <= INTERVAL 30 MINUTE
                  THEN 0 ELSE 1 END AS new_visit
      FROM {r})
"""
# The window returns rows in its own order; sorting the narrow keys back into row
# order and joining by position is far cheaper than a hash join of wide rows.
_EVENTS = """
CREATE TABLE {e} AS SELECT * FROM {r} POSITIONAL JOIN (SELECT vkey FROM {k} ORDER BY rid)
"""
_PV = "FILTER (WHERE type = 'pageview')"
_FIRST = ", ".join(_VISIT_ATTRS)
_VISITS = f"""
CREATE TABLE {{v}} AS
WITH agg AS (
  SELECT vkey, any_value(vh) AS vh, min(ts) AS start, max(ts) AS "end",
         epoch(max(ts) - min(ts)) AS duration,
         count(*) FILTER (WHERE type = 'pageview') AS pageviews,
         count(*) FILTER (WHERE type IN {_INTER}) AS interactions,
         arg_min(path, ts) FILTER (WHERE type = 'pageview') AS entry_page,
         arg_max(path, ts) FILTER (WHERE type = 'pageview') AS exit_page,
         arg_min(struct_pack({_FIRST}), CASE WHEN type = 'pageview' THEN 0 ELSE 1 END * 1e15
                 + epoch_us(ts)) AS first
  FROM {{e}} GROUP BY vkey)
SELECT vkey, vh, start, "end", duration, pageviews, interactions, entry_page, exit_page,
       coalesce(first.source, 'Direct / None') AS source,
       coalesce(first.channel, 'direct') AS channel,
       {", ".join(f"first.{c} AS {c}" for c in _VISIT_ATTRS if c not in ("source", "channel"))}
FROM agg
"""


class Dataset:
    def __init__(self, events: str, visits: str, files: int, rows: int, built_s: float) -> None:
        self.events = events
        self.visits = visits
        self.files = files
        self.rows = rows
        self.built_s = built_s


class Engine:
    def __init__(self, storage: Storage, *, s3_endpoint_url: str | None = None,
                 clock: Callable[[], float] = time.time, threads: int | None = None,
                 cache_entries: int = CACHE_ENTRIES) -> None:
        self.storage = storage
        self.clock = clock
        self.s3_endpoint_url = s3_endpoint_url or getattr(storage, "endpoint_url", None)
        self.threads = threads
        self.cache_entries = cache_entries
        self._con: Any = None
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._cache: OrderedDict[str, Dataset] = OrderedDict()
        self._listing: dict[str, tuple[float, list[tuple[str, str, int]]]] = {}

    # -- connection -------------------------------------------------------------
    def connection(self) -> Any:
        with self._lock:
            if self._con is None:
                self._con = connect(self.storage, self.s3_endpoint_url, self.threads)
            return self._con

    def cursor(self) -> Any:
        return self.connection().cursor()

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        cur = self.cursor()
        try:
            return cur.execute(sql, params or {}).fetchall()
        finally:
            cur.close()

    # -- files --------------------------------------------------------------------
    def partitions(self, site: str) -> list[tuple[str, str, int]]:
        """(date, key, size) of every object of a site, cached for a moment."""
        now = time.monotonic()
        hit = self._listing.get(site)
        if hit and now - hit[0] < LIST_TTL_SECONDS:
            return hit[1]
        found = []
        for info in self.storage.list(f"{EVENTS_PREFIX}site={site}/"):
            parsed = parse_key(info.key)
            if parsed and parsed[0] == site:
                found.append((parsed[1], info.key, info.size))
        self._listing[site] = (now, found)
        return found

    def files(self, site: str, lo: datetime, hi: datetime) -> list[tuple[str, int]]:
        """Keys and sizes of the partitions holding [lo, hi): pruning by site and date."""
        first, last = lo.date().isoformat(), (hi - timedelta(microseconds=1)).date().isoformat()
        return [(key, size) for date, key, size in self.partitions(site) if first <= date <= last]

    def uris(self, keys: list[str]) -> list[str]:
        return [self.storage.duckdb_uri(k) for k in keys]

    # -- the cached tables ----------------------------------------------------------
    def dataset(self, site: str, start: datetime, end: datetime) -> Dataset:
        lo, hi = start - SESSION_GAP, end + SESSION_GAP
        files = self.files(site, lo, hi)
        signature = repr((site, lo, hi, files))
        key = "t" + hashlib.sha256(signature.encode()).hexdigest()[:16]
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            dataset = self._build(key, [k for k, _ in files], lo, hi)
            with self._lock:
                self._cache[key] = dataset
                self._build_locks.pop(key, None)
                while len(self._cache) > self.cache_entries:
                    _, old = self._cache.popitem(last=False)
                    self._drop(old)
            return dataset

    def _build(self, key: str, keys: list[str], lo: datetime, hi: datetime) -> Dataset:
        started = time.perf_counter()
        r, k, e, v = f"{key}_r", f"{key}_k", f"{key}_e", f"{key}_v"
        cur = self.cursor()
        try:
            if keys:
                cur.execute(_BUILD_RAW.format(r=r), {"files": self.uris(keys)})
            else:
                cur.execute(_BUILD_RAW.format(r=r).replace(
                    "FROM read_parquet($files, union_by_name = true)",
                    "FROM (SELECT NULL::VARCHAR AS event_id, NULL::TIMESTAMPTZ AS received_at, "
                    "NULL::VARCHAR AS visitor_id, NULL::VARCHAR AS type, NULL::VARCHAR AS name, "
                    "NULL::VARCHAR AS path, NULL::VARCHAR AS hostname, NULL::VARCHAR AS props, "
                    "NULL::SMALLINT AS scroll_depth, NULL::BIGINT AS engagement_ms, "
                    + ", ".join(f"NULL::VARCHAR AS {c}" for c in _VISIT_ATTRS) + " WHERE false)"))
            cur.execute(_DEDUPE.format(r=r))
            cur.execute(_SESSIONS.format(r=r, k=k))
            cur.execute(_EVENTS.format(r=r, k=k, e=e))
            cur.execute(f"DROP TABLE {r}; DROP TABLE {k}")
            cur.execute(_VISITS.format(e=e, v=v))
            rows = cur.execute(f"SELECT count(*) FROM {e}").fetchone()[0]
        finally:
            cur.close()
        return Dataset(e, v, len(keys), int(rows), time.perf_counter() - started)

    def _drop(self, dataset: Dataset) -> None:
        try:
            self.fetch(f"DROP TABLE IF EXISTS {dataset.events}; DROP TABLE IF EXISTS {dataset.visits}")
        except Exception:  # noqa: BLE001 - a table in use is dropped with the connection
            pass

    def clear(self) -> None:
        with self._lock:
            entries = list(self._cache.values())
            self._cache.clear()
            self._listing.clear()
        for dataset in entries:
            self._drop(dataset)

    def close(self) -> None:
        self.clear()
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def connect(storage: Storage, endpoint_url: str | None = None, threads: int | None = None) -> Any:
    """A DuckDB connection that never downloads anything: extensions come from the
    installed `duckdb-extension-httpfs` package, S3 credentials from boto3's chain."""
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if str(getattr(storage, "url", "")).startswith("s3://"):
        _setup_s3(con, endpoint_url)
    return con


def httpfs_path() -> str:
    import duckdb
    import duckdb_extension_httpfs

    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    exact = base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if exact.exists():
        return str(exact)
    found = sorted(base.glob("*/httpfs.duckdb_extension"))
    if not found:
        raise RuntimeError("the duckdb-extension-httpfs package holds no httpfs extension")
    return str(found[-1])


def _setup_s3(con: Any, endpoint_url: str | None) -> None:
    import boto3  # only for S3 storage, and only its credential chain

    con.execute(f"LOAD '{httpfs_path()}'")
    session = boto3.session.Session()
    creds = session.get_credentials()
    frozen = creds.get_frozen_credentials() if creds else None
    options = {"TYPE": "s3", "REGION": session.region_name or "us-east-1"}
    if frozen:
        options["KEY_ID"] = frozen.access_key
        options["SECRET"] = frozen.secret_key
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
    if endpoint_url:
        scheme, _, host = endpoint_url.partition("://")
        options["ENDPOINT"] = host.rstrip("/")
        options["URL_STYLE"] = "path"
        options["USE_SSL"] = "true" if scheme == "https" else "false"
    body = ", ".join(f"{k} {_literal(v)}" if k != "TYPE" else f"TYPE {v}" for k, v in options.items())
    con.execute(f"CREATE OR REPLACE SECRET traceglider_s3 ({body})")


def _literal(value: str) -> str:
    if value in ("true", "false"):
        return value
    return "'" + value.replace("'", "''") + "'"
