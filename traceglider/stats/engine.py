"""Runs stats SQL with DuckDB over the Parquet dataset, local or on S3.

For a (site, period) the engine reads only that site's partitions of the dates in
the period (plus 30 minutes either side, so visits already running at the start are
not counted as new and a visit running past the end keeps its last events). A
partition compacted with up-to-date visit ids (`storage.compact`) is read as it is,
only the columns the panels use; the others (today's files, typically) get duplicate
event ids removed and visits recomputed with the 30-minute inactivity rule, with the
same key compaction gives and continuing the visits of the compacted day before. The
events (type, name, path and hostname as ENUMs of the values in the files), and the
visits from one hash aggregate over the visit key, are kept as in-memory tables that
every panel of the dashboard then queries; the visit attributes (source, country, ...)
are added to the visits the first time a query needs one. They are cached
under the exact list of files (and their sizes), so new data or a compaction
invalidates them by itself.

DuckDB is imported lazily: the routers must import fast on a Lambda cold start.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from traceglider.errors import Unavailable
from traceglider.memory import duckdb_share, memory_total, open_duckdb
from traceglider.storage.layout import (
    EVENTS_PREFIX,
    VISIT_ID_SQL,
    VISIT_TIMEOUT_MINUTES,
    compacted_group,
    parse_key,
    previous_date,
    up_to_date,
)

if TYPE_CHECKING:
    from traceglider.storage.base import Storage

log = logging.getLogger("traceglider.stats")
T = TypeVar("T")

SESSION_GAP = timedelta(minutes=VISIT_TIMEOUT_MINUTES)
CACHE_ENTRIES = 6
RESULT_ENTRIES = 512
# Names of the cached tables: `t` + 16 hex digits of the (site, range, files) signature.
_TABLE_NAME = re.compile(r"\bt[0-9a-f]{16}_[esv]\b")
LIST_TTL_SECONDS = 2.0
RETIRE_SECONDS = 20.0  # an evicted period's tables are dropped this long after

_INTER = "('custom','click','form_submit')"
_VISIT_ATTRS = ("referrer", "source", "channel", "utm_source", "utm_medium", "utm_campaign",
                "utm_term", "utm_content", "country", "region", "device_type", "browser",
                "browser_version", "os", "os_version")

# The events table holds no visit attributes (15 columns read and stored for every
# event, used once per visit): `src` points back at the row they are in (file and
# row number for compacted files, a row of the {a} table for recomputed ones).
_COLUMNS = ("ts", "vh", "vkey", "type", "name", "path", "hostname", "props", "scroll_depth",
            "engagement_ms", "src")
_SELECT = f"""make_timestamp(epoch_us(received_at)) AS ts, hash(visitor_id) AS vh, type, name, path,
       hostname, CASE WHEN type IN {_INTER} THEN props END AS props, scroll_depth, engagement_ms"""
# `file_index` and `file_row_number` are virtual columns of read_parquet (DuckDB >= 1.3).
_SRC = "(file_index::BIGINT << 40) + file_row_number"
_FAST_SCAN = "read_parquet($files, union_by_name = true, file_row_number = true)"
# Compacted partitions carry their visit key: read as they are, no dedupe, no window.
# The low-cardinality strings (type, name, path, hostname) are stored as ENUMs made
# from the values present in the files: every filter on `type` and every grouping by
# page or event name then works on small integers instead of strings.
_ENUMS = ("type", "name", "path", "hostname")
# The columns the sessions table is made from.
_REQUIRED = ("ts", "vh", "vkey", "type", "path", "src")
_BUILD_FAST = f"""
CREATE TABLE {{e}} AS
SELECT {{cols}} FROM (SELECT * REPLACE ({{casts}}) FROM (
  SELECT visit_id AS vkey, {_SELECT}, {_SRC} AS src FROM {_FAST_SCAN}))
"""
# Files not compacted yet (today's, typically): each event id once, visits recomputed.
_BUILD_RAW = f"""
CREATE TABLE {{r}} AS
SELECT hash(event_id) AS eh, event_id, visitor_id, received_at, {_SELECT}, {", ".join(_VISIT_ATTRS)}
FROM read_parquet($files, union_by_name = true)
WHERE event_id IS NOT NULL
"""
# Keep the first copy of each event id (by time, then position), and drop the copies
# of events already stored in the compacted day before (a retry just after midnight).
_DEDUPE = """
DELETE FROM {r} WHERE rowid IN (
  SELECT rowid FROM {r} WHERE eh IN (SELECT eh FROM {r} GROUP BY eh HAVING count(*) > 1)
  QUALIFY row_number() OVER (PARTITION BY eh ORDER BY ts, rowid) > 1);
DELETE FROM {r} WHERE event_id IN (SELECT event_id FROM {c})
"""
# A visit starts at a visitor's first event and after every gap of over 30 minutes; a
# visit continuing from the compacted day before (rows of {c}) keeps that day's id,
# any other gets the id compaction would give it.
_SESSIONS = f"""
CREATE TABLE {{k}} AS
WITH u AS (SELECT rowid AS rid, vh, received_at, visitor_id, NULL::BIGINT AS cid FROM {{r}}
           UNION ALL SELECT -1, hash(visitor_id), received_at, visitor_id, visit_id FROM {{c}}),
g AS (SELECT *, CASE WHEN received_at - lag(received_at) OVER w <= INTERVAL {VISIT_TIMEOUT_MINUTES} MINUTE
                     THEN 0 ELSE 1 END AS new_visit
      FROM u WINDOW w AS (PARTITION BY vh ORDER BY received_at, rid)),
n AS (SELECT *, sum(new_visit) OVER (PARTITION BY vh ORDER BY received_at, rid
                                     ROWS UNBOUNDED PRECEDING) AS run FROM g),
x AS (SELECT rid, first_value(CASE WHEN cid IS NOT NULL THEN cid WHEN new_visit = 1
                  THEN {VISIT_ID_SQL.format(v="visitor_id", t="received_at")} END)
                  OVER (PARTITION BY vh, run ORDER BY received_at, rid) AS vkey FROM n)
SELECT rid, vkey FROM x WHERE rid >= 0
"""
# The window returns rows in its own order; sorting the narrow keys back into row
# order and joining by position is far cheaper than a hash join of wide rows.
_EVENTS = f"""
INSERT INTO {{e}} SELECT {{cols}}
FROM (SELECT *, -1 - rowid AS src FROM {{r}}) POSITIONAL JOIN (SELECT vkey FROM {{k}} ORDER BY rid);
INSERT INTO {{a}} SELECT -1 - rowid, {", ".join(_VISIT_ATTRS)} FROM {{r}}
"""
_CARRY = """
SELECT event_id, visitor_id, received_at, visit_id
FROM read_parquet({files}, union_by_name = true) WHERE received_at >= {since}
"""
_PV = "FILTER (WHERE type = 'pageview')"
# Events inside the period itself (the tables also hold 30 minutes either side): a
# visit's counts of them answer the unfiltered visitors, pageviews and events from the
# visits table, a sixth of the rows of the events table.
_IN = "ts >= $start AND ts < $end"
# One hash aggregate over the visit key; a visit's attributes are those of its first
# pageview (its first event when it has none), read for those rows only.
_AGG = f"""
SELECT vkey, any_value(vh) AS vh, min(ts) AS start, max(ts) AS "end",
       epoch(max(ts) - min(ts)) AS duration,
       count(*) {_PV} AS pageviews,
       count(*) FILTER (WHERE type IN {_INTER}) AS interactions,
       arg_min(path, ts) {_PV} AS entry_page,
       arg_max(path, ts) {_PV} AS exit_page,
       arg_min(src, (CASE WHEN type = 'pageview' THEN 0 ELSE 1 END::BIGINT << 60)
                    + epoch_us(ts)) AS first,
       count(*) FILTER (WHERE {_IN}) AS n_in,
       count(*) FILTER (WHERE type = 'pageview' AND {_IN}) AS pv_in,
       count(*) FILTER (WHERE type IN ('pageview', 'custom', 'click', 'form_submit') AND {_IN}) AS ev_in
FROM {{e}} GROUP BY vkey
"""
_SESSIONS_TABLE = f"CREATE TABLE {{s}} AS {_AGG}"
_DEFAULTS = {"source": "'Direct / None'", "channel": "'direct'"}


def _visits_sql(attrs: tuple[str, ...], fast: bool) -> str:
    """The visits table: the sessions table plus the visit attributes `attrs` (those of
    each visit's first pageview). They are read (string columns of the compacted files,
    for the first rows only) when a query first needs one: a visit filter or a
    breakdown by a visit property. Headline figures, time series, pages, events, goals
    and funnels use the sessions table alone."""
    cols = ", ".join(attrs)
    # the join with the sessions keeps the first rows (no semi-join before it: slower)
    from_fast = f"SELECT {_SRC} AS src, {cols} FROM {_FAST_SCAN} UNION ALL " if fast else ""
    picked = ", ".join(f"coalesce(x.{c}, {_DEFAULTS[c]}) AS {c}" if c in _DEFAULTS else f"x.{c} AS {c}"
                       for c in attrs)
    return f"""
CREATE TABLE {{v}} AS
WITH agg AS (SELECT * FROM {{s}}), attrs AS ({from_fast}SELECT src, {cols} FROM {{a}})
SELECT agg.vkey, agg.vh, start, "end", duration, pageviews, interactions, entry_page, exit_page,
       n_in, pv_in, ev_in, {picked}
FROM agg JOIN attrs x ON x.src = agg.first
"""


_EMPTY = ("SELECT NULL::VARCHAR AS event_id, NULL::TIMESTAMPTZ AS received_at, "
          "NULL::VARCHAR AS visitor_id, NULL::VARCHAR AS type, NULL::VARCHAR AS name, "
          "NULL::VARCHAR AS path, NULL::VARCHAR AS hostname, NULL::VARCHAR AS props, "
          "NULL::SMALLINT AS scroll_depth, NULL::BIGINT AS engagement_ms, "
          + ", ".join(f"NULL::VARCHAR AS {c}" for c in _VISIT_ATTRS))


@dataclass
class Plan:
    fast: list[str] = field(default_factory=list)  # keys with up-to-date visit ids
    slow: list[str] = field(default_factory=list)  # keys whose visits are recomputed
    slow_dates: list[str] = field(default_factory=list)
    carry: list[tuple[str, list[str]]] = field(default_factory=list)  # (date, D-1's keys)


class Dataset:
    def __init__(self, events: str, visits: str, files: int, rows: int, built_s: float,
                 types: tuple[str, ...] = (), sessions: str = "", attrs: str = "",
                 fast: list[str] | None = None, make_events: Callable[[], tuple[str, ...]] | None = None) -> None:
        self.types = list(types)
        # The events table: made on first use when `make_events` is given (a period
        # whose queries all read the visits, such as the previous period of a
        # comparison, never stores its events).
        self.events_name = events
        self._make_events = make_events
        self._events_lock = threading.Lock()
        # `visits` is the sessions table (no visit attributes) until they are asked
        # for, then the full visits table; both stay until the dataset is dropped.
        self.full_visits = visits
        self.sessions = sessions or visits
        self.visits = self.sessions
        self.attrs = attrs  # attributes of recomputed visits' first rows
        self.fast = fast or []  # compacted files, for the attributes of their visits
        self.lock = threading.Lock()
        self.period: tuple[str, datetime, datetime] | None = None  # (site, lo, hi)
        self.files = files
        self.rows = rows
        self.built_s = built_s

    @property
    def events(self) -> str:
        if self._make_events is not None:
            with self._events_lock:
                if self._make_events is not None:
                    self.types += self._make_events()
                    self._make_events = None
        return self.events_name


class Engine:
    def __init__(self, storage: Storage, *, s3_endpoint_url: str | None = None,
                 clock: Callable[[], float] = time.time, threads: int | None = None,
                 cache_entries: int = CACHE_ENTRIES, result_entries: int = RESULT_ENTRIES,
                 attributes: tuple[str, ...] = _VISIT_ATTRS, columns: tuple[str, ...] = _COLUMNS,
                 memory_budget: int | None = None, duckdb_memory: int | None = None,
                 keep_events: bool = True) -> None:
        """`attributes` and `columns`: the visit attributes the visits table holds and
        the columns of the events table (all by default; a caller with a fixed set of
        queries, such as `traceglider stats`, names fewer and the rest is not read).
        `memory_budget`: bytes the cached tables may use (default a quarter of the
        memory this process may use; 10 million events take about 1.5 GB); 0 for no
        limit. `duckdb_memory`: DuckDB's limit (default `memory.duckdb_share`).
        `keep_events=False`: a caller that reads a period's events once (`traceglider
        stats`) reads compacted files through a view instead of storing them."""
        unknown = (set(attributes) - set(_VISIT_ATTRS)) | (set(columns) - set(_COLUMNS))
        if unknown or not attributes or not set(_REQUIRED) <= set(columns):
            raise ValueError(f"bad attributes or columns: {sorted(unknown) or 'missing some'}")
        self.attributes = tuple(attributes)
        self.columns = tuple(c for c in _COLUMNS if c in columns)
        self.storage = storage
        self.clock = clock
        self.s3_endpoint_url = s3_endpoint_url or getattr(storage, "endpoint_url", None)
        self.threads = threads
        self.cache_entries = cache_entries
        self.memory_budget = memory_total() // 4 if memory_budget is None else memory_budget
        self.duckdb_memory = duckdb_memory or duckdb_share(self.memory_budget)
        self.keep_events = keep_events
        self._con: Any = None
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._cache: OrderedDict[str, Dataset] = OrderedDict()
        self._retired: list[tuple[float, Dataset]] = []  # (when, dataset): dropped later
        self.retire_seconds = RETIRE_SECONDS
        self._listing: dict[str, tuple[float, list[tuple[str, str, int]]]] = {}
        # Answers of queries over the cached tables. A table's name hashes the exact
        # files it was built from, so new data means new names and no stale answer.
        self.result_entries = result_entries
        self._results: OrderedDict[str, list[tuple]] = OrderedDict()

    # -- connection -------------------------------------------------------------
    def connection(self) -> Any:
        with self._lock:
            if self._con is None:
                self._con = connect(self.storage, self.s3_endpoint_url, self.threads, self.duckdb_memory)
            return self._con

    def cursor(self) -> Any:
        return self.connection().cursor()

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        key = None
        if self.result_entries and _TABLE_NAME.search(sql):
            key = repr((sql, sorted((params or {}).items())))
            with self._lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return list(self._results[key])
        cur = self.cursor()
        try:
            rows = cur.execute(sql, params or {}).fetchall()
        finally:
            cur.close()
        if key is not None:
            with self._lock:
                self._results[key] = rows
                while len(self._results) > self.result_entries:
                    self._results.popitem(last=False)
        return list(rows)

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

    def plan(self, site: str, lo: datetime, hi: datetime) -> Plan:
        """Which partitions of [lo, hi) hold up-to-date visit ids (read as they are) and
        which need visits recomputed, with the compacted day before each of those."""
        first, last = lo.date().isoformat(), (hi - timedelta(microseconds=1)).date().isoformat()
        by_date: dict[str, list[str]] = {}
        for date, key, _ in self.partitions(site):
            by_date.setdefault(date, []).append(key)
        plan = Plan()
        for date in sorted(d for d in by_date if first <= d <= last):
            keys = sorted(by_date[date])
            before = by_date.get(previous_date(date))
            if up_to_date(keys, before):
                plan.fast += keys
                continue
            plan.slow += keys
            # visits running over midnight continue from the compacted day before,
            # unless that day is recomputed here too
            if before and compacted_group(before) is not None and previous_date(date) not in plan.slow_dates:
                plan.carry.append((date, sorted(before)))
            plan.slow_dates.append(date)
        return plan

    def uris(self, keys: list[str]) -> list[str]:
        return [self.storage.duckdb_uri(k) for k in keys]

    # -- the cached tables ----------------------------------------------------------
    def dataset(self, site: str, start: datetime, end: datetime, attrs: bool = True) -> Dataset:
        """The tables of a (site, period); `attrs=False` when no query will read a visit
        attribute (source, country, ...): they are then read when first needed."""
        self._retire([])  # drop the retired periods whose time has come
        dataset = self._dataset(site, start, end)
        if attrs:
            self.visit_attrs(dataset)
        return dataset

    def visit_attrs(self, dataset: Dataset) -> None:
        with dataset.lock:
            if dataset.visits == dataset.full_visits:
                return
            cur = self.cursor()
            try:
                sql = _visits_sql(self.attributes, bool(dataset.fast))
                cur.execute(sql.format(s=dataset.sessions, v=dataset.full_visits, a=dataset.attrs),
                            {"files": dataset.fast} if dataset.fast else {})
            finally:
                cur.close()
            dataset.visits = dataset.full_visits

    def _dataset(self, site: str, start: datetime, end: datetime) -> Dataset:
        lo, hi = start - SESSION_GAP, end + SESSION_GAP
        files = self.files(site, lo, hi)
        signature = repr((site, lo, hi, files))
        key = "t" + hashlib.sha256(signature.encode()).hexdigest()[:16]
        with self._lock:
            for i, (_, retired) in enumerate(self._retired):
                if retired.events_name.startswith(key + "_"):  # retired a moment ago: still whole
                    self._cache[key] = self._retired.pop(i)[1]
                    break
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            try:
                dataset = self._build(key, self.plan(site, lo, hi), start, end)
            except BaseException:
                # a file gone, storage unreachable: what was made so far goes, so that
                # the next try of the same files starts clean (under the same build
                # lock, kept: a build waiting for it must not meet a second one)
                self._drop_partial(key)
                raise
            dataset.period = (site, lo, hi)
            with self._lock:
                # the same period built from older files (new events arrived): not needed again
                evicted = [self._cache.pop(k) for k, d in list(self._cache.items()) if d.period == dataset.period]
                self._cache[key] = dataset
                self._build_locks.pop(key, None)
                while len(self._cache) > self.cache_entries:
                    evicted.append(self._cache.popitem(last=False)[1])
            self._retire(evicted)
            self._fit_memory(key)
            return dataset

    def _retire(self, datasets: list[Dataset]) -> None:
        """Drop datasets a little later: a request that got one a moment ago may still
        be querying its tables."""
        now = time.monotonic()
        with self._lock:
            self._retired += [(now, d) for d in datasets]
            due = [d for t, d in self._retired if now - t >= self.retire_seconds]
            self._retired = [(t, d) for t, d in self._retired if now - t < self.retire_seconds]
        for old in due:  # outside the lock: dropping takes it (a cursor)
            self._drop(old)

    def cached_bytes(self) -> int:
        """About how much memory the cached periods' tables take: rows x columns x 8
        bytes, which is what DuckDB shows for them (10 million events: 1.5 GB)."""
        with self._lock:
            keys = set(self._cache)
        if not keys:
            return 0
        cur = self.cursor()
        try:
            rows = cur.execute("SELECT table_name, estimated_size * column_count * 8 FROM duckdb_tables()").fetchall()
        finally:
            cur.close()
        return sum(int(size or 0) for name, size in rows if name.partition("_")[0] in keys)

    def _fit_memory(self, keep: str) -> None:
        """Retire the least recently used periods while the cached tables take more than
        the budget (never the one just built)."""
        while self.memory_budget and self.cached_bytes() > self.memory_budget:
            with self._lock:
                victims = [k for k in self._cache if k != keep]
                if not victims:
                    return
                old = self._cache.pop(victims[0])
            self._retire([old])

    def _build(self, key: str, plan: Plan, start: datetime, end: datetime) -> Dataset:
        started = time.perf_counter()
        r, c, k, e, v, a, s = (f"{key}_{x}" for x in "rckevas")
        period = {"start": _naive(start), "end": _naive(end)}
        files = {"files": self.uris(plan.fast)} if plan.fast else {}
        cur = self.cursor()
        try:
            cur.execute(f"CREATE TABLE {a} AS SELECT NULL::BIGINT AS src, "
                        + ", ".join(f"NULL::VARCHAR AS {c}" for c in _VISIT_ATTRS) + " WHERE false")
            if plan.fast and not plan.slow:
                # compacted days only: the visits straight from the files, the events
                # table when a query first reads it
                scan = f"(SELECT visit_id AS vkey, {_SELECT}, {_SRC} AS src FROM {_FAST_SCAN})"
                cur.execute(_SESSIONS_TABLE.format(e=scan, s=s), {**period, **files})
                rows = cur.execute("SELECT count(*) FROM read_parquet($files)", files).fetchone()[0]

                def make_events() -> tuple[str, ...]:
                    cursor = self.cursor()
                    try:
                        if not self.keep_events:  # read once: a view over the files
                            uris = "[" + ", ".join(_literal_str(u) for u in self.uris(plan.fast)) + "]"
                            cursor.execute(f"CREATE VIEW {e} AS SELECT {', '.join(self.columns)} FROM ("
                                           f"SELECT visit_id AS vkey, {_SELECT}, {_SRC} AS src FROM "
                                           + _FAST_SCAN.replace("$files", uris) + ")")
                            return ()
                        return self._events_table(cursor, key, plan, e)
                    finally:
                        cursor.close()

                return Dataset(e, v, len(plan.fast), int(rows), time.perf_counter() - started,
                               sessions=s, attrs=a, fast=files.get("files"), make_events=make_events)
            types = self._events_table(cur, key, plan, e)
            if plan.slow:
                self._build_slow(cur, plan, r, c, k, e, a)
            cur.execute(_SESSIONS_TABLE.format(e=e, s=s), period)
            rows = cur.execute(f"SELECT count(*) FROM {e}").fetchone()[0]
        finally:
            cur.close()
        return Dataset(e, v, len(plan.fast) + len(plan.slow), int(rows), time.perf_counter() - started,
                       types, sessions=s, attrs=a, fast=files.get("files"))

    def _events_table(self, cur: Any, key: str, plan: Plan, e: str) -> tuple[str, ...]:
        """The events table of the compacted files (the recomputed ones are added by
        `_build_slow`); the names of the ENUM types it uses."""
        types = self._enum_types(cur, key, plan.fast + plan.slow)
        casts = ", ".join(f"{c}::{t} AS {c}" for c, t in types.items()) or "type::VARCHAR AS type"
        cols = ", ".join(self.columns)
        if plan.fast:
            cur.execute(_BUILD_FAST.format(e=e, casts=casts, cols=cols), {"files": self.uris(plan.fast)})
        else:
            cur.execute(f"CREATE TABLE {e} AS SELECT {cols} FROM (SELECT * REPLACE ({casts}) "
                        f"FROM (SELECT NULL::BIGINT AS vkey, {_SELECT}, NULL::BIGINT AS src "
                        f"FROM ({_EMPTY}))) WHERE false")
        return tuple(types.values())

    def _enum_types(self, cur: Any, key: str, keys: list[str]) -> dict[str, str]:
        """One ENUM type per low-cardinality string column, holding the values of the
        files in sorted order (so ordering by them is ordering by the strings)."""
        enums = [c for c in _ENUMS if c in self.columns]
        values: tuple[Any, ...] = (None,) * len(enums)
        if keys:
            values = cur.execute(
                "SELECT " + ", ".join(f"list(DISTINCT {c})" for c in enums)
                + " FROM read_parquet($files, union_by_name = true)", {"files": self.uris(keys)}).fetchone()
        types = {}
        for c, found in zip(enums, values, strict=True):
            if any("\x00" in x for x in found or () if x is not None):
                # No SQL literal holds a NUL (the edge refuses them, older files may
                # have one): that column stays VARCHAR rather than failing every query.
                continue
            name = f"{key}_{c}"
            labels = ", ".join(_literal_str(x) for x in sorted({x for x in found or () if x is not None}))
            cur.execute(f"DROP TYPE IF EXISTS {name}; CREATE TYPE {name} AS ENUM ({labels})")
            types[c] = name
        return types

    def _build_slow(self, cur: Any, plan: Plan, r: str, c: str, k: str, e: str, a: str) -> None:
        params: dict[str, Any] = {}
        carry = []
        for i, (date, keys) in enumerate(plan.carry):
            params[f"c{i}"] = self.uris(keys)
            params[f"s{i}"] = datetime.fromisoformat(date).replace(tzinfo=UTC) - SESSION_GAP
            carry.append(_CARRY.format(files=f"$c{i}", since=f"$s{i}"))
        if not carry:
            carry.append("SELECT NULL::VARCHAR AS event_id, NULL::VARCHAR AS visitor_id, "
                         "NULL::TIMESTAMPTZ AS received_at, NULL::BIGINT AS visit_id WHERE false")
        cur.execute(f"CREATE TABLE {c} AS " + " UNION ALL ".join(carry), params)
        cur.execute(_BUILD_RAW.format(r=r), {"files": self.uris(plan.slow)})
        cur.execute(_DEDUPE.format(r=r, c=c))
        cur.execute(_SESSIONS.format(r=r, c=c, k=k))
        cur.execute(_EVENTS.format(r=r, k=k, e=e, a=a, cols=", ".join(self.columns)))
        cur.execute(f"DROP TABLE {r}; DROP TABLE {k}; DROP TABLE {c}")

    def _drop_partial(self, key: str) -> None:
        """Drop the tables, views and types of a build of `key` that failed."""
        cur = self.cursor()
        try:
            prefix = {"prefix": key + "_"}
            for kind, catalog in (("VIEW", "views"), ("TABLE", "tables"), ("TYPE", "types")):
                column = kind.lower() + "_name"
                listing = f"SELECT {column} FROM duckdb_{catalog}() WHERE starts_with({column}, $prefix)"
                for (name,) in cur.execute(listing, prefix).fetchall():
                    cur.execute(f"DROP {kind} IF EXISTS {name}")
        except Exception:  # noqa: BLE001 - a name left over fails the next build loudly
            log.warning("could not drop the tables of a failed build %s", key, exc_info=True)
        finally:
            cur.close()

    def _drop(self, dataset: Dataset) -> None:
        # not through fetch(): its answer cache would skip a second DROP of the same names
        try:
            cur = self.cursor()
            try:
                if not self.keep_events:
                    try:  # a view over compacted files, or a table for recomputed ones
                        cur.execute(f"DROP VIEW IF EXISTS {dataset.events_name}")
                    except Exception:  # noqa: BLE001 - it is a table: dropped below
                        pass
                cur.execute(f"DROP TABLE IF EXISTS {dataset.events_name}; DROP TABLE IF EXISTS {dataset.full_visits}; "
                            f"DROP TABLE IF EXISTS {dataset.sessions}; DROP TABLE IF EXISTS {dataset.attrs}"
                            + "".join(f"; DROP TYPE IF EXISTS {t}" for t in dataset.types))
            finally:
                cur.close()
        except Exception:  # noqa: BLE001 - a table in use is dropped with the connection
            pass

    def reading(self, run: Callable[[], T]) -> T:
        """`run()`, and once more if files it read were replaced meanwhile: compaction,
        erasure and retention rewrite or delete files, and a listing (cached for a
        moment) or a period's tables (which read some columns when first needed) can
        name files that are gone. The second try lists again: a period whose files
        changed gets new tables (and the old ones are retired as for any new data); one
        whose files are the same (a passing S3 error) keeps its tables. A query that
        needs more memory than DuckDB may use (half of the process's) is a 503."""
        import duckdb

        try:
            try:
                return run()
            except duckdb.IOException:  # "No files found" on disk, an HTTP 404 on S3
                log.info("files changed while they were read; reading again")
            with self._lock:
                self._listing.clear()
            try:
                return run()
            except duckdb.IOException as exc:
                raise Unavailable("the data changed while it was read; please try again", retry_after=1) from exc
        except duckdb.OutOfMemoryException as exc:
            log.warning("a stats query ran out of memory: %s", exc)
            raise Unavailable("not enough memory for this query right now; please try again, or a shorter "
                              "period", retry_after=30) from exc

    def clear(self) -> None:
        with self._lock:
            entries = list(self._cache.values()) + [d for _, d in self._retired]
            self._retired = []
            self._cache.clear()
            self._listing.clear()
            self._results.clear()
        for dataset in entries:
            self._drop(dataset)

    def close(self) -> None:
        self.clear()
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def connect(storage: Storage, endpoint_url: str | None = None, threads: int | None = None,
            memory_limit: int | None = None) -> Any:
    """A DuckDB connection that never downloads anything: extensions come from the
    installed `duckdb-extension-httpfs` package, S3 credentials from boto3's chain.

    `memory_limit`: see `traceglider.memory.open_duckdb`; a query that does not fit
    in it fails (a 503, `Engine.reading`)."""
    con = open_duckdb(memory_limit, {"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    # The tables live in memory: an automatic checkpoint would compress every cached
    # table again (seconds at 10 million rows) inside whichever statement trips it.
    con.execute("SET checkpoint_threshold = '1TB'")
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


def _naive(t: datetime) -> datetime:
    """The tables hold naive UTC times."""
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _literal_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _literal(value: str) -> str:
    if value in ("true", "false"):
        return value
    return "'" + value.replace("'", "''") + "'"
