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

Safe to kill at any moment: the merged files are written (under names derived from
their inputs) before any input is deleted, readers count each event_id once, so a
half-done run shows every event exactly once and a rerun finishes the job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date as Date

import pyarrow as pa
import pyarrow.compute as pc

from traceglider.schema import COMPACTED_SCHEMA, FILE_SCHEMA
from traceglider.storage.base import Storage
from traceglider.storage.layout import (
    NO_CARRY,
    VISIT_ID_SQL,
    VISIT_TIMEOUT_MINUTES,
    compacted_group,
    object_key,
    parse_key,
    partition_prefix,
    previous_date,
    up_to_date,
)
from traceglider.storage.lock import WAIT_SECONDS, maintenance
from traceglider.storage.parquet import (
    dedupe,
    list_partitions,
    read_table,
    table_to_bytes,
)

ROWS_PER_FILE = 2_000_000
SESSION_GAP_US = VISIT_TIMEOUT_MINUTES * 60 * 1_000_000
_TAIL_COLUMNS = ["event_id", "visitor_id", "received_at", "visit_id"]


@dataclass
class CompactionResult:
    site: str
    date: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int


def carry_rows(storage: Storage, previous_keys: list[str], date: str) -> pa.Table:
    """Events of the last 30 minutes before `date` (from D-1's compacted files)."""
    start_us = _midnight_us(date) - SESSION_GAP_US
    tables = []
    for key in previous_keys:
        table = read_table(storage, key, COMPACTED_SCHEMA).select(_TAIL_COLUMNS)
        ts = pc.cast(table.column("received_at"), pa.int64())
        tables.append(table.filter(pc.greater_equal(ts, start_us)))
    if not tables:
        return COMPACTED_SCHEMA.empty_table().select(_TAIL_COLUMNS)
    return pa.concat_tables(tables)


def _midnight_us(date: str) -> int:
    return (Date.fromisoformat(date).toordinal() - Date(1970, 1, 1).toordinal()) * 86_400_000_000


def _tag(table: pa.Table) -> str:
    """A digest of rows (in the given order) of the tail columns."""
    h = hashlib.sha256()
    for column in _TAIL_COLUMNS:
        h.update(repr(table.column(column).to_pylist()).encode())
    return h.hexdigest()[:12]


def visit_ids(merged: pa.Table, carry: pa.Table) -> pa.Array:
    """The visit id of every row of `merged` (sorted by received_at), continuing the
    visits of `carry` (D-1's last 30 minutes, with their ids)."""
    from traceglider.memory import open_duckdb

    con = open_duckdb()
    try:
        con.register("m", merged.select(["visitor_id", "received_at"]).append_column(
            "i", pa.array(range(merged.num_rows), pa.int64())))
        con.register("c", carry.select(["visitor_id", "received_at", "visit_id"]))
        first = VISIT_ID_SQL.format(v="v", t="ts")
        sql = f"""
        WITH u AS (SELECT i, visitor_id AS v, received_at AS ts, NULL::BIGINT AS cid FROM m
                   UNION ALL SELECT -1, visitor_id, received_at, visit_id FROM c),
        g AS (SELECT *, CASE WHEN ts - lag(ts) OVER w <= INTERVAL {VISIT_TIMEOUT_MINUTES} MINUTE
                        THEN 0 ELSE 1 END AS new
              FROM u WINDOW w AS (PARTITION BY v ORDER BY ts, i)),
        r AS (SELECT *, sum(new) OVER (PARTITION BY v ORDER BY ts, i ROWS UNBOUNDED PRECEDING) AS run
              FROM g),
        k AS (SELECT i, first_value(CASE WHEN cid IS NOT NULL THEN cid WHEN new = 1 THEN {first} END)
                        OVER (PARTITION BY v, run ORDER BY ts, i) AS visit_id FROM r)
        SELECT visit_id FROM k WHERE i >= 0 ORDER BY i"""
        res = con.execute(sql)
        table = res.to_arrow_table() if hasattr(res, "to_arrow_table") else res.fetch_arrow_table()
        return table.column(0).combine_chunks()
    finally:
        con.close()


def compact_partition(storage: Storage, site: str, date: str, keys: list[str],
                      previous_keys: list[str] | None = None) -> CompactionResult:
    """Merge `keys` (all files of the partition) into compacted files with visit ids,
    continuing the visits of `previous_keys` (D-1's compacted files)."""
    before = compacted_group(previous_keys or [])
    carry = carry_rows(storage, previous_keys if before and previous_keys else [], date)
    carry_tag = before.tail if before else NO_CARRY
    tables = [read_table(storage, key) for key in keys]
    merged = pa.concat_tables(tables) if tables else FILE_SCHEMA.empty_table()
    rows_before = merged.num_rows
    merged = dedupe(merged)
    if carry.num_rows:  # a retry delivered just after midnight is the same event
        merged = merged.filter(pc.invert(pc.is_in(merged.column("event_id"), carry.column("event_id"))))
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("received_at", "ascending"),
                                                            ("event_id", "ascending")]))
    merged = merged.append_column("visit_id", visit_ids(merged, carry))
    ts = pc.cast(merged.column("received_at"), pa.int64())
    tail = merged.filter(pc.greater_equal(ts, _midnight_us(date) + 86_400_000_000 - SESSION_GAP_US))
    digest = hashlib.sha256("\n".join([*sorted(keys), carry_tag]).encode()).hexdigest()[:20]
    written = []
    for part, start in enumerate(range(0, max(merged.num_rows, 1), ROWS_PER_FILE)):
        chunk = merged.slice(start, ROWS_PER_FILE)
        key = object_key(site, date, f"cv-{digest}-{carry_tag}-{_tag(tail)}-{part}")
        storage.put(key, table_to_bytes(chunk, COMPACTED_SCHEMA), if_absent=True)
        written.append(key)
    storage.delete([key for key in keys if key not in written])
    return CompactionResult(site, date, len(keys), len(written), rows_before, merged.num_rows)


def compact(
    storage: Storage,
    site: str | None = None,
    date: str | None = None,
    progress: Callable[[CompactionResult], None] | None = None,
    wait: float = WAIT_SECONDS,
    stop: Callable[[], bool] | None = None,
    neighbours: bool = True,
) -> list[CompactionResult]:
    """Compact every partition (or those of one site and/or date) whose files are not
    one up-to-date compacted group, oldest first. Compacting a date first compacts the
    days before it that are not up to date (their visits may run into it), and then
    the days after it whose visits continued from it. `wait`: seconds to wait for
    another maintenance job to finish (then `LockBusy`); `stop()` true: end after the
    partition in hand (a server shutting down). `neighbours=False`: with `date`, that
    date only (`traceglider compact --date`): its visits continue from the day before
    if that is compacted, and the stats recompute what is left until a full run."""
    with maintenance(storage, "compact", wait) as lock:  # never alongside forget: see lock.py
        partitions = list_partitions(storage, site)
        results: list[CompactionResult] = []
        for part_site in sorted({s for s, _ in partitions}):
            dates = sorted(d for s, d in partitions if s == part_site)
            keys = {d: partitions[(part_site, d)] for d in dates}
            if not date:
                wanted = dates
            elif neighbours:
                wanted = _with_neighbours(date, keys)
            else:
                wanted = [date] if date in keys else []
            for day in wanted:
                if stop and stop():
                    return results
                previous = keys.get(previous_date(day))
                if up_to_date(keys[day], previous):
                    continue
                result = compact_partition(storage, part_site, day, keys[day], previous)
                keys[day] = _listed(storage, part_site, day)
                results.append(result)
                lock.renew()
                if progress:
                    progress(result)
        return results


def _with_neighbours(date: str, keys: dict[str, list[str]]) -> list[str]:
    """`date`, the days before it back to the last up-to-date one (their visits may
    run into it), and the compacted days right after it (theirs may continue from it)."""
    if date not in keys:
        return []
    days = [date]
    while previous_date(days[0]) in keys and not up_to_date(
            keys[previous_date(days[0])], keys.get(previous_date(previous_date(days[0])))):
        days.insert(0, previous_date(days[0]))
    later = sorted(d for d in keys if d > date)
    for d in later:
        if previous_date(d) != days[-1] or compacted_group(keys[d]) is None:
            break
        days.append(d)
    return days


def _listed(storage: Storage, site: str, day: str) -> list[str]:
    return [info.key for info in storage.list(partition_prefix(site, day)) if parse_key(info.key)]
