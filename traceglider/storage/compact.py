"""Compaction: merge a partition's small files into few, drop duplicate event ids and
write each event's visit key (`visit_id`), so readers need no sessionising window.

A visit is a visitor's run of events with no gap over 30 minutes (by `received_at`);
its `visit_id` is a hash of `visitor_id` and the visit's first `received_at`, the same
whoever computes it (this module, or the stats engine for files not compacted yet).
A visit running over midnight keeps its id: compacting date D reads the last 30
minutes of D-1 (already compacted, so carrying visit ids) and continues its visits.

Compacted files are named `cv-<inputs>-<carry>-<tail>-<n>.parquet`: `<inputs>` hashes
the input keys and `<carry>`; `<carry>` is the `<tail>` of D-1 it continued from
(`000000000000` when D-1 had no data); `<tail>` hashes its own last 30 minutes. A
partition is up to date when its files are one such group whose `<carry>` is D-1's
current `<tail>`; when D-1 changes later (late files, recompaction), D is recomputed
by the next `compact` (dates run in ascending order, and compacting D first brings
D-1 up to date), and the stats engine recomputes D's visits until then.

Compaction also writes the visits dataset (`visits/site=S/date=D/vv-<digest>-<next>-
<n>.parquet`, one row per visit dated by its start, `storage/visits_sql.py`): the
visits of D's events group `<digest>`, made whole with the events of D+1 when D+1 is
compacted and continues from D (`<next>` is its digest). Compacting D also rewrites
D-1's visits, so that the visits running over midnight into D are whole there.

Everything streams through DuckDB (read, deduplicate, sessionise, sort, write Parquet
to a local temporary file, which is then stored), held to `MEMORY_LIMIT` and spilling
to disk beyond it: a day of millions of events compacts in bounded memory.

Safe to kill at any moment: the merged files are written (under names derived from
their inputs) before any input is deleted, readers count each event_id once, so a
half-done run shows every event exactly once and a rerun finishes the job. A date
whose visits files are not one group made from its events is sessionised again by
the readers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from traceglider.schema import STORED_SCHEMA, VISIT_SCHEMA
from traceglider.storage import visits_sql as V
from traceglider.storage.base import Storage
from traceglider.storage.layout import (
    NO_CARRY,
    NO_NEXT,
    VISIT_TIMEOUT_MINUTES,
    compacted_group,
    object_key,
    parse_key,
    parse_visits_key,
    partition_prefix,
    previous_date,
    visits_group,
    visits_key,
    visits_prefix,
    visits_up_to_date,
)
from traceglider.storage.lock import WAIT_SECONDS, maintenance
from traceglider.storage.parquet import list_partitions

ROWS_PER_FILE = 2_000_000
# Row groups small enough that DuckDB skips most of a day by their statistics when a
# query filters on the sort keys (type, name, page; a visit's country, source, device).
EVENT_ROW_GROUP = 50_000
VISIT_ROW_GROUP = 20_000
EVENT_ORDER = "type, name, path, received_at, event_id"
VISIT_ORDER = "country, source, device_type, start, visit_id"
MEMORY_LIMIT = 512 << 20  # DuckDB's share; it spills beyond it
COMPACTION_THREADS = 1
GAP = timedelta(minutes=VISIT_TIMEOUT_MINUTES)


@dataclass
class CompactionResult:
    site: str
    date: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int


def _midnight(date: str) -> datetime:
    return datetime.fromisoformat(date).replace(tzinfo=UTC)


def compact_partition(storage: Storage, site: str, date: str, keys: list[str],
                      previous_keys: list[str] | None = None, next_keys: list[str] | None = None,
                      previous_visits: list[str] | None = None,
                      visit_keys: list[str] | None = None) -> CompactionResult:
    """Merge `keys` (all files of the partition) into compacted files with visit ids,
    continuing the visits of `previous_keys` (D-1's compacted files); write D's visits
    and rewrite D-1's (`previous_visits`) for the visits running into D."""
    from traceglider.storage.duck import connect

    before = compacted_group(previous_keys or [])
    carry_tag = before.tail if before else NO_CARRY
    midnight, next_midnight = _midnight(date), _midnight(date) + timedelta(days=1)
    digest = hashlib.sha256("\n".join([*sorted(keys), carry_tag]).encode()).hexdigest()[:20]
    work = tempfile.mkdtemp(prefix="traceglider-compact-")
    # One thread: each keeps its own aggregation state, and the visits' aggregate of a
    # 4.2-million-event day (100 million demo events over 30 days) ran out of 512 MiB
    # on two; on one it took 91 s and 891 MiB of RSS. Compaction runs in the
    # background; a bounded footprint matters more than its speed.
    con = connect(storage, MEMORY_LIMIT, threads=COMPACTION_THREADS)
    try:
        # Every copy written has its ORDER BY, which DuckDB keeps either way.
        con.execute("SET preserve_insertion_order = false")
        V.scan(con, "raw", [storage.duckdb_uri(k) for k in keys])
        V.define_carry(con, [storage.duckdb_uri(k) for k in previous_keys or []] if before else [], midnight - GAP)
        con.execute(f"CREATE TEMP TABLE keys AS {V.keys_sql()}")
        rows_before = con.execute("SELECT count(*) FROM raw").fetchone()[0]
        kept = ("SELECT r.event_id, r.visitor_id, r.received_at, k.visit_id FROM raw r "
                "JOIN keys k ON k.rid = r.rid")
        tail = con.execute(V.tail_tag_sql(kept), {"tail_since": next_midnight - GAP}).fetchone()[0]
        following = compacted_group(next_keys or [])
        continued = following is not None and following.carry == tail
        V.define_next(con, [storage.duckdb_uri(k) for k in next_keys or []] if continued else [], next_midnight - GAP)
        next_digest = following.digest if continued and following else NO_NEXT
        events = (f"SELECT {', '.join('r.' + c for c in _file_columns())}, k.visit_id FROM raw r "
                  f"JOIN keys k ON k.rid = r.rid ORDER BY {EVENT_ORDER}")
        rows_after = _copy(con, events, f"{work}/events.parquet", EVENT_ROW_GROUP)
        con.execute(f"CREATE TEMP TABLE new_visits AS {V.visits_sql(V.rows_sql('keys'))}")
        _copy(con, f"SELECT * FROM new_visits WHERE start >= $m ORDER BY {VISIT_ORDER}",
              f"{work}/visits.parquet", VISIT_ROW_GROUP, {"m": midnight})
        rewrite_previous = bool(before and previous_visits and visits_group(previous_visits))
        if rewrite_previous:
            prev = "[" + ", ".join(V.quote(storage.duckdb_uri(k)) for k in previous_visits or []) + "]"
            _copy(con, f"""SELECT * FROM (
                SELECT * FROM read_parquet({prev}, hive_partitioning = false)
                WHERE visit_id NOT IN (SELECT visit_id FROM new_visits WHERE start < $m)
                UNION ALL SELECT * FROM new_visits WHERE start < $m) ORDER BY {VISIT_ORDER}""",
                  f"{work}/previous.parquet", VISIT_ROW_GROUP, {"m": midnight})
    finally:
        con.close()
    try:
        written = _store(storage, f"{work}/events.parquet",
                         lambda n: object_key(site, date, f"cv-{digest}-{carry_tag}-{tail}-{n}"),
                         STORED_SCHEMA, EVENT_ROW_GROUP)
        new_visits = _store(storage, f"{work}/visits.parquet",
                            lambda n: visits_key(site, date, f"vv-{digest}-{next_digest}-{n}"),
                            VISIT_SCHEMA, VISIT_ROW_GROUP)
        replaced_previous: list[str] = []
        if rewrite_previous and before:
            day = previous_date(date)
            replaced_previous = _store(storage, f"{work}/previous.parquet",
                                       lambda n: visits_key(site, day, f"vv-{before.digest}-{digest}-{n}"),
                                       VISIT_SCHEMA, VISIT_ROW_GROUP)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    storage.delete([k for k in keys if k not in written]
                   + [k for k in visit_keys or [] if k not in new_visits]
                   + [k for k in (previous_visits or []) if replaced_previous and k not in replaced_previous])
    return CompactionResult(site, date, len(keys), len(written), int(rows_before), int(rows_after))


def _file_columns() -> list[str]:
    from traceglider.schema import FILE_COLUMNS

    return list(FILE_COLUMNS)


def _copy(con: Any, query: str, path: str, row_group: int, params: dict[str, Any] | None = None) -> int:
    """COPY the rows of `query` to a Parquet file; returns the row count."""
    group = max(1, min(row_group, ROWS_PER_FILE))
    # a working copy, re-encoded by _store: a light compression
    con.execute(f"COPY ({query}) TO {V.quote(path)} (FORMAT parquet, COMPRESSION snappy, "
                f"ROW_GROUP_SIZE {group})", params or {})
    return int(con.execute(f"SELECT count(*) FROM read_parquet({V.quote(path)})").fetchone()[0])


def _store(storage: Storage, path: str, name: Callable[[int], str], schema: Any, row_group: int) -> list[str]:
    """Store the rows of the file at `path` as files `name(0)`, `name(1)` ... of at most
    ROWS_PER_FILE rows, in `schema` exactly (DuckDB has no millisecond timestamps with
    a time zone, for one), batch by batch: never the whole file in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    keys: list[str] = []
    writer: Any = None
    rows, out = 0, ""

    def finish() -> None:
        writer.close()
        key = name(len(keys))
        with open(out, "rb") as f:
            storage.put(key, f.read(), if_absent=True)
        os.unlink(out)
        keys.append(key)

    def open_writer() -> Any:
        return pq.ParquetWriter(f"{path}.{len(keys)}", schema, compression="zstd", write_statistics=True)

    for batch in parquet.iter_batches(batch_size=min(ROWS_PER_FILE, row_group)):
        batch = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
        while batch.num_rows:
            if writer is None:
                out, writer = f"{path}.{len(keys)}", open_writer()
            take = batch.slice(0, ROWS_PER_FILE - rows)
            writer.write_table(take, row_group_size=row_group)
            rows += take.num_rows
            batch = batch.slice(take.num_rows)
            if rows >= ROWS_PER_FILE:
                finish()
                writer, rows = None, 0
    if writer is not None or not keys:
        if writer is None:  # no rows: one empty file keeps the group (and its tags)
            out, writer = f"{path}.{len(keys)}", open_writer()
        finish()
    return keys


def compact(
    storage: Storage,
    site: str | None = None,
    date: str | None = None,
    progress: Callable[[CompactionResult], None] | None = None,
    wait: float = WAIT_SECONDS,
    stop: Callable[[], bool] | None = None,
    neighbours: bool = True,
    before: str | None = None,
) -> list[CompactionResult]:
    """Compact every partition (or those of one site and/or date) whose files are not
    one up-to-date compacted group, oldest first. Compacting a date first compacts the
    days before it that are not up to date (their visits may run into it), and then
    the days after it whose visits continued from it. `wait`: seconds to wait for
    another maintenance job to finish (then `LockBusy`); `stop()` true: end after the
    partition in hand (a server shutting down). `neighbours=False`: with `date`, that
    date only (`traceglider compact --date`): its visits continue from the day before
    if that is compacted, and the stats recompute what is left until a full run.
    `before`: only the dates before it (`demo-data` leaves today as a collector would)."""
    with maintenance(storage, "compact", wait) as lock:  # never alongside forget: see lock.py
        partitions = list_partitions(storage, site)
        all_visits = list_visits(storage, site)
        results: list[CompactionResult] = []
        for part_site in sorted({s for s, _ in partitions}):
            dates = sorted(d for s, d in partitions if s == part_site)
            keys = {d: partitions[(part_site, d)] for d in dates}
            visits = {d: all_visits.get((part_site, d), []) for d in dates}
            if not date:
                wanted = dates
            elif neighbours:
                wanted = _with_neighbours(date, keys, visits)
            else:
                wanted = [date] if date in keys else []
            for day in wanted:
                if before is not None and day >= before:
                    break
                if stop and stop():
                    return results
                previous, following = keys.get(previous_date(day)), keys.get(_next_date(day))
                if visits_up_to_date(visits[day], keys[day], previous, following):
                    continue
                result = compact_partition(storage, part_site, day, keys[day], previous, following,
                                           visits.get(previous_date(day)), visits[day])
                keys[day] = _listed(storage, part_site, day)
                for d in (previous_date(day), day):
                    if d in visits:
                        visits[d] = _listed_visits(storage, part_site, d)
                results.append(result)
                lock.renew()
                if progress:
                    progress(result)
        return results


def _next_date(date: str) -> str:
    return (datetime.fromisoformat(date) + timedelta(days=1)).date().isoformat()


def list_visits(storage: Storage, site: str | None = None) -> dict[tuple[str, str], list[str]]:
    """Every (site, date) of the visits dataset with the keys of its files."""
    from traceglider.storage.layout import VISITS_PREFIX

    found: dict[tuple[str, str], list[str]] = {}
    for info in storage.list(VISITS_PREFIX + (f"site={site}/" if site else "")):
        parsed = parse_visits_key(info.key)
        if parsed:
            found.setdefault((parsed[0], parsed[1]), []).append(info.key)
    return found


def _with_neighbours(date: str, keys: dict[str, list[str]], visits: dict[str, list[str]]) -> list[str]:
    """`date`, the days before it back to the last up-to-date one (their visits may
    run into it), and the compacted days right after it (theirs may continue from it)."""
    if date not in keys:
        return []
    days = [date]
    while previous_date(days[0]) in keys and not _own_state_ok(previous_date(days[0]), keys, visits):
        days.insert(0, previous_date(days[0]))
    later = sorted(d for d in keys if d > date)
    for d in later:
        if previous_date(d) != days[-1] or compacted_group(keys[d]) is None:
            break
        days.append(d)
    return days


def _own_state_ok(day: str, keys: dict[str, list[str]], visits: dict[str, list[str]]) -> bool:
    """The day's events and visits are up to date, whatever the next day holds."""
    return visits_up_to_date(visits.get(day, []), keys[day], keys.get(previous_date(day)), None)


def _listed_visits(storage: Storage, site: str, day: str) -> list[str]:
    return [info.key for info in storage.list(visits_prefix(site, day)) if parse_visits_key(info.key)]


def _listed(storage: Storage, site: str, day: str) -> list[str]:
    return [info.key for info in storage.list(partition_prefix(site, day)) if parse_key(info.key)]
