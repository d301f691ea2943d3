"""Compaction merges files, drops duplicate event ids and loses nothing when killed."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.helpers import DAY_US, row, stored_ids
from traceglider.storage import compact as compact_module
from traceglider.storage.compact import compact
from traceglider.storage.parquet import list_partitions, read_table, write_rows
from traceglider.storage.retention import apply_retention

NOW_US = 1_764_280_000_000_000  # 2025-11-27


def test_compaction_merges_files_and_drops_duplicates(storage):
    write_rows(storage, [row("a", when_us=NOW_US), row("b", when_us=NOW_US)], "s1")
    write_rows(storage, [row("b", when_us=NOW_US), row("c", when_us=NOW_US)], "s2")
    write_rows(storage, [row("c", when_us=NOW_US)], "s3")
    (result,) = compact(storage)
    assert (result.files_before, result.files_after, result.rows_before, result.rows_after) == (3, 1, 5, 3)
    assert sorted(stored_ids(storage)) == ["a", "b", "c"]
    assert compact(storage) == []  # nothing left to do


def test_compaction_killed_after_writing_loses_nothing_and_reruns(storage, monkeypatch):
    write_rows(storage, [row("a", when_us=NOW_US)], "s1")
    write_rows(storage, [row("b", when_us=NOW_US)], "s2")

    def killed(keys):  # the process dies between the write and the deletes
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "delete", killed)
    try:
        compact(storage)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    assert sorted(set(stored_ids(storage))) == ["a", "b"]  # all there (twice, deduped by readers)
    storage.delete(["_locks/maintenance.json"])  # the dead run's lock (it would expire; see test_lock.py)
    compact(storage)
    assert sorted(stored_ids(storage)) == ["a", "b"]
    assert len(next(iter(list_partitions(storage).values()))) == 1


def test_compaction_of_one_site_and_date_only(storage):
    for name in ("s1", "s2"):
        write_rows(storage, [row(name, when_us=NOW_US), row(name + "x", site="b.org", when_us=NOW_US)], name)
    compact(storage, site="b.org", date="2025-11-27")
    parts = list_partitions(storage)
    assert len(parts[("b.org", "2025-11-27")]) == 1
    assert len(parts[("example.com", "2025-11-27")]) == 2


def test_large_partitions_are_split_into_few_files(local_storage, monkeypatch):
    monkeypatch.setattr(compact_module, "ROWS_PER_FILE", 2)
    for i in range(5):
        write_rows(local_storage, [row(f"e{i}", when_us=NOW_US)], f"s{i}")
    (result,) = compact(local_storage)
    assert result.files_after == 3 and sorted(stored_ids(local_storage)) == [f"e{i}" for i in range(5)]


def test_retention_deletes_whole_old_partitions_only(storage):
    write_rows(storage, [row("old", when_us=NOW_US - 40 * DAY_US)], "s1")
    write_rows(storage, [row("new", when_us=NOW_US - 5 * DAY_US)], "s2")
    now = datetime.fromtimestamp(NOW_US / 1e6, tz=UTC)
    assert apply_retention(storage, 30, now=now) == 1
    assert stored_ids(storage) == ["new"]
    assert apply_retention(storage, 30, now=now) == 0


MIDNIGHT_US = 1_764_201_600_000_000  # 2025-11-27 00:00 UTC
MINUTE_US = 60_000_000


def visit_ids(storage, date: str) -> dict[str, int]:
    from traceglider.schema import COMPACTED_SCHEMA

    out = {}
    for key in list_partitions(storage)[("example.com", date)]:
        table = read_table(storage, key, COMPACTED_SCHEMA)
        out.update(zip(table.column("event_id").to_pylist(), table.column("visit_id").to_pylist(), strict=True))
    return out


def test_compaction_writes_visit_ids_and_a_visit_over_midnight_keeps_its_id(storage):
    write_rows(storage, [row("a1", visitor_id="A", when_us=MIDNIGHT_US - 10 * MINUTE_US),
                         row("b1", visitor_id="B", when_us=MIDNIGHT_US - 50 * MINUTE_US)], "s1")
    write_rows(storage, [row("a2", visitor_id="A", when_us=MIDNIGHT_US + 10 * MINUTE_US),
                         row("b2", visitor_id="B", when_us=MIDNIGHT_US + 10 * MINUTE_US),
                         row("b3", visitor_id="B", when_us=MIDNIGHT_US + 41 * MINUTE_US)], "s2")
    compact(storage)
    before, after = visit_ids(storage, "2025-11-26"), visit_ids(storage, "2025-11-27")
    assert after["a2"] == before["a1"]  # 20 minutes apart, over midnight: one visit
    assert len({before["b1"], after["b2"], after["b3"]}) == 3  # gaps of 60 and 31 minutes
    assert compact(storage) == []


def test_compacting_a_day_first_compacts_the_day_before_and_late_data_is_fixed(storage):
    write_rows(storage, [row("a1", visitor_id="A", when_us=MIDNIGHT_US - 10 * MINUTE_US)], "s1")
    write_rows(storage, [row("a2", visitor_id="A", when_us=MIDNIGHT_US + 10 * MINUTE_US),
                         row("c2", visitor_id="C", when_us=MIDNIGHT_US + 5 * MINUTE_US)], "s2")
    compact(storage, date="2025-11-27")  # brings 2025-11-26 up to date first
    assert visit_ids(storage, "2025-11-27")["a2"] == visit_ids(storage, "2025-11-26")["a1"]
    # a late file for the day before joins C's visit to it
    write_rows(storage, [row("c1", visitor_id="C", when_us=MIDNIGHT_US - 20 * MINUTE_US)], "late")
    done = [(r.date, r.files_before) for r in compact(storage)]
    assert done == [("2025-11-26", 2), ("2025-11-27", 1)]  # the next day is recomputed too
    assert visit_ids(storage, "2025-11-27")["c2"] == visit_ids(storage, "2025-11-26")["c1"]


def test_a_retry_stored_just_after_midnight_is_dropped(storage):
    write_rows(storage, [row("a1", visitor_id="A", when_us=MIDNIGHT_US - MINUTE_US)], "s1")
    write_rows(storage, [row("a1", visitor_id="A", when_us=MIDNIGHT_US + MINUTE_US),
                         row("a2", visitor_id="A", when_us=MIDNIGHT_US + 2 * MINUTE_US)], "s2")
    compact(storage)
    assert sorted(stored_ids(storage)) == ["a1", "a2"]


def test_the_column_types_the_stats_read_without_pyarrow_are_the_stored_ones():
    from traceglider.schema import FILE_SCHEMA
    from traceglider.storage.visits_sql import READ_TYPES, _duck_type

    assert {c: _duck_type(FILE_SCHEMA.field(c).type) for c in READ_TYPES} == READ_TYPES


def test_compaction_runs_duckdb_on_one_thread_within_its_memory(local_storage, monkeypatch):
    """A 4.2-million-event day ran DuckDB out of compaction's 512 MiB on two threads
    (each keeps its own aggregation state); on one it compacted in 891 MiB of RSS."""
    from traceglider.storage import duck

    seen = []
    real = duck.connect

    def spy(storage, memory_limit=None, threads=None):
        con = real(storage, memory_limit, threads)
        seen.append((memory_limit, con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return con

    monkeypatch.setattr(duck, "connect", spy)
    write_rows(local_storage, [row("a", when_us=NOW_US)], "s1")
    compact(local_storage)
    assert seen == [(compact_module.MEMORY_LIMIT, 1)]
