"""Runs stats questions with DuckDB over the Parquet dataset, local or on S3.

The chain: a `model.Question` -> `plan.plan` (which files: compacted days read as
they are, runs of days to sessionise) -> `sql.*` (the SQL, values bound) -> `fetch`
(DuckDB, reading the files with projection and filter pushdown) -> rows. Nothing of
a period is copied into memory: compacted days are read straight from their events
and visits files. Only the runs (today's files, not compacted yet: small) are
sessionised into two tables, cached under the exact files they were made from.
Answers are cached under the SQL, its values and the exact files (names and sizes),
so new data or a compaction invalidates them by itself.

DuckDB is imported lazily: the routers must import fast on a Lambda cold start.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from traceglider.errors import Unavailable
from traceglider.memory import duckdb_share, memory_total
from traceglider.stats import plan as P
from traceglider.stats.cache import ResultCache
from traceglider.stats.sql import VISIT_FILE_COLUMNS, Relations
from traceglider.storage.layout import (
    EVENTS_PREFIX,
    VISIT_TIMEOUT_MINUTES,
    VISITS_PREFIX,
    parse_key,
    parse_visits_key,
)

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.model import Question
    from traceglider.storage.base import Storage

log = logging.getLogger("traceglider.stats")
T = TypeVar("T")

SESSION_GAP = timedelta(minutes=VISIT_TIMEOUT_MINUTES)
RESULT_ENTRIES = 512
RUN_ENTRIES = 8
VISIT_COLUMN_ENTRIES = 256
LIST_TTL_SECONDS = 2.0
RETIRE_SECONDS = 20.0  # an evicted run's tables are dropped this long after


class _RunTables:
    def __init__(self, events: str, visits: str) -> None:
        self.events = events
        self.visits = visits


class Engine:
    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.time, threads: int | None = None,
                 result_entries: int = RESULT_ENTRIES, run_entries: int = RUN_ENTRIES,
                 memory_budget: int | None = None, duckdb_memory: int | None = None) -> None:
        """`memory_budget`: bytes this engine's tables and queries may use (default a
        quarter of the memory this process may use); DuckDB gets `duckdb_memory`
        (default `memory.duckdb_share` of it) and spills beyond it."""
        self.storage = storage
        self.clock = clock
        self.threads = threads
        self.memory_budget = memory_total() // 4 if memory_budget is None else memory_budget
        self.duckdb_memory = duckdb_memory or duckdb_share(self.memory_budget)
        self._con: Any = None
        self._lock = threading.Lock()
        self._listing: dict[str, tuple[float, P.Listing]] = {}
        self._visit_columns: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._runs: OrderedDict[str, _RunTables] = OrderedDict()
        self._run_locks: dict[str, threading.Lock] = {}
        self._retired: list[tuple[float, _RunTables]] = []
        self.retire_seconds = RETIRE_SECONDS
        self.run_entries = run_entries
        self.results = ResultCache(result_entries)
        self._builds = itertools.count()

    @property
    def result_entries(self) -> int:
        return self.results.entries

    @result_entries.setter
    def result_entries(self, value: int) -> None:
        self.results.entries = value

    # -- connection -------------------------------------------------------------
    def connection(self) -> Any:
        with self._lock:
            if self._con is None:
                from traceglider.storage.duck import connect

                self._con = connect(self.storage, self.duckdb_memory, self.threads)
            return self._con

    def cursor(self) -> Any:
        return self.connection().cursor()

    def fetch(self, sql: str, params: dict[str, Any] | None = None, files: str | None = None) -> list[tuple]:
        """Rows of `sql`; with `files` (the signature of the files it reads) the answer
        is cached under it."""
        key = None
        if files is not None:
            key = repr((files, sql, sorted((params or {}).items())))
            hit = self.results.get(key)
            if hit is not None:
                return hit
        cur = self.cursor()
        try:
            rows = cur.execute(sql, params or {}).fetchall()
        finally:
            cur.close()
        if key is not None:
            self.results.put(key, rows)
        return list(rows)

    # -- files --------------------------------------------------------------------
    def listing(self, site: str) -> P.Listing:
        """A site's events and visits files, cached for a moment."""
        now = time.monotonic()
        with self._lock:
            hit = self._listing.get(site)
        if hit and now - hit[0] < LIST_TTL_SECONDS:
            return hit[1]
        found = P.Listing()
        for info in self.storage.list(f"{EVENTS_PREFIX}site={site}/"):
            parsed = parse_key(info.key)
            if parsed and parsed[0] == site:
                found.events.setdefault(parsed[1], []).append((info.key, info.size))
        for info in self.storage.list(f"{VISITS_PREFIX}site={site}/"):
            parsed_v = parse_visits_key(info.key)
            if parsed_v and parsed_v[0] == site:
                found.visits.setdefault(parsed_v[1], []).append((info.key, info.size))
        with self._lock:
            self._listing[site] = (now, found)
        return found

    def partitions(self, site: str) -> list[tuple[str, str, int]]:
        """(date, key, size) of every event file of a site."""
        return [(d, k, s) for d, files in sorted(self.listing(site).events.items()) for k, s in files]

    def files(self, site: str, lo: datetime, hi: datetime) -> list[tuple[str, int]]:
        """Keys and sizes of the event files holding [lo, hi): pruning by site and date."""
        first, last = P.range_dates(lo, hi)
        return [(key, size) for date, key, size in self.partitions(site) if first <= date <= last]

    def plan(self, site: str, start: datetime, end: datetime) -> P.Sources:
        return P.plan(self.listing(site), start, end)

    def uris(self, keys: list[str] | tuple[str, ...]) -> list[str]:
        return [self.storage.duckdb_uri(k) for k in keys]

    # -- the chain ------------------------------------------------------------------
    def relations(self, q: Question) -> tuple[Relations, str]:
        """The relations answering `q` and the signature of their files."""
        sources = self.plan(q.site, q.start, q.end)
        self._retire([])
        runs = tuple(self._run_tables(run) for run in sources.runs)
        visit_files = tuple(self.uris(sources.visit_files))
        r = Relations(tuple(self.uris(sources.event_files)), visit_files,
                      tuple((t.events, t.visits) for t in runs), self._visit_missing(visit_files))
        return r, sources.signature

    def _visit_missing(self, uris: tuple[str, ...]) -> tuple[str, ...]:
        """Visit columns none of `uris` has: days compacted before the column existed
        are read with it NULL (`union_by_name` fills it for the others). Footers only,
        and DuckDB keeps them (parquet_metadata_cache)."""
        if not uris:
            return ()
        with self._lock:
            hit = self._visit_columns.get(uris)
        if hit is None:
            cur = self.cursor()
            try:
                cur.execute("SELECT * FROM read_parquet($f, union_by_name = true, hive_partitioning = false) LIMIT 0",
                            {"f": list(uris)})
                present = {d[0] for d in cur.description}
            finally:
                cur.close()
            hit = tuple(c for c in VISIT_FILE_COLUMNS if c not in present)
            with self._lock:
                self._visit_columns[uris] = hit
                while len(self._visit_columns) > VISIT_COLUMN_ENTRIES:
                    self._visit_columns.pop(next(iter(self._visit_columns)))
        return hit

    def run(self, build: Callable[[Relations], tuple[str, dict[str, Any]]], q: Question) -> list[tuple]:
        """Plan `q`, build its SQL with `build(relations)`, fetch (cached)."""
        r, signature = self.relations(q)
        sql, params = build(r)
        return self.fetch(sql, params, files=signature)

    def _run_tables(self, run: P.Run) -> _RunTables:
        """The events and visits of a run of days, sessionised once for its files."""
        key = run.signature
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                return self._runs[key]
            build_lock = self._run_locks.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                if key in self._runs:
                    return self._runs[key]
            # names of this build's own: an evicted build of the same files may still
            # exist, waiting for the queries reading it to finish
            n = next(self._builds)
            tables = _RunTables(f"r{key}_{n}_e", f"r{key}_{n}_v")
            try:
                self._build_run(run, tables)
            except BaseException:
                self._drop(tables)  # the retry of the same files starts clean
                raise
            with self._lock:
                self._runs[key] = tables
                self._run_locks.pop(key, None)
                evicted = []
                while len(self._runs) > self.run_entries:
                    evicted.append(self._runs.popitem(last=False)[1])
            self._retire(evicted)
            return tables

    def _build_run(self, run: P.Run, tables: _RunTables) -> None:
        from traceglider.storage import visits_sql as V

        first = datetime.fromisoformat(run.carry_since).replace(tzinfo=UTC)
        after_last = datetime.fromisoformat(run.dates[-1]).replace(tzinfo=UTC) + timedelta(days=1)
        cur = self.cursor()  # a connection of its own: the temporary views are private to it
        try:
            V.scan(cur, "raw", self.uris(run.keys), list(V.READ_TYPES))
            V.define_carry(cur, self.uris(run.carry), first - SESSION_GAP)
            cur.execute(f"CREATE TEMP TABLE keys AS {V.keys_sql()}")
            V.define_next(cur, self.uris(run.next), after_last - SESSION_GAP)
            cur.execute(f"CREATE TABLE {tables.events} AS SELECT r.received_at, r.visitor_id, k.visit_id, r.type, "
                        "r.name, r.path, r.hostname, r.props, r.scroll_depth, r.engagement_ms "
                        "FROM raw r JOIN keys k ON k.rid = r.rid")
            cur.execute(f"CREATE TABLE {tables.visits} AS {V.visits_sql(V.rows_sql('keys'))}")
        finally:
            cur.close()

    def _retire(self, evicted: list[_RunTables]) -> None:
        """Drop evicted tables a little later: a query may still be reading them."""
        now = time.monotonic()
        with self._lock:
            self._retired += [(now, t) for t in evicted]
            due = [t for when, t in self._retired if now - when >= self.retire_seconds]
            self._retired = [(when, t) for when, t in self._retired if now - when < self.retire_seconds]
        for tables in due:
            self._drop(tables)

    def _drop(self, tables: _RunTables) -> None:
        try:
            cur = self.cursor()
            try:
                cur.execute(f"DROP TABLE IF EXISTS {tables.events}; DROP TABLE IF EXISTS {tables.visits}")
            finally:
                cur.close()
        except Exception:  # noqa: BLE001 - a table in use is dropped with the connection
            log.debug("could not drop %s", tables.events, exc_info=True)

    def reading(self, run: Callable[[], T]) -> T:
        """`run()`, and once more if files it read were replaced meanwhile: compaction,
        erasure and retention rewrite or delete files, and a listing (cached for a
        moment) can name files that are gone. The second try lists again. A query
        that needs more memory than DuckDB may use is a 503, and so is a read the store
        did not answer within TG_STORAGE_TIMEOUT (read again, it would wait as long)."""
        import duckdb

        from traceglider.storage.duck import timed_out

        try:
            try:
                return run()
            except duckdb.IOException as exc:  # "No files found" on disk, an HTTP 404 on S3
                if timed_out(exc):
                    raise Unavailable("storage did not answer in time; please try again", retry_after=5) from exc
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
            tables = list(self._runs.values()) + [t for _, t in self._retired]
            self._runs.clear()
            self._retired = []
            self._listing.clear()
        self.results.clear()
        for t in tables:
            self._drop(t)

    def close(self) -> None:
        self.clear()
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def from_settings(settings: Settings, storage: Storage, clock: Callable[[], float] = time.time) -> Engine:
    """An engine with the memory budget the settings give (TG_STATS_MEMORY_MB; the
    default, a quarter of memory, is shared by a server's workers)."""
    memory = settings.stats_memory_mb
    workers = settings.workers
    budget = memory << 20 if memory else memory_total() // 4 // workers
    return Engine(storage, clock=clock, memory_budget=budget, duckdb_memory=duckdb_share(budget, workers))


def utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
