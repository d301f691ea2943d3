"""Forgetting a visitor rewrites only the files that held them, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import row, stored_ids
from traceglider.storage.forget import _new_key, forget_visitor
from traceglider.storage.layout import EVENTS_PREFIX
from traceglider.storage.parquet import read_table, write_rows

DAY_US = 86_400_000_000
T0 = 1_764_280_000_000_000


def seed(storage: Any) -> None:
    write_rows(storage, [row("a1", visitor_id="alice", when_us=T0),
                         row("b1", visitor_id="bob", when_us=T0)], "first")
    write_rows(storage, [row("b2", visitor_id="bob", when_us=T0 + DAY_US),
                         row("n1", visitor_id=None, when_us=T0 + DAY_US)], "second")
    write_rows(storage, [row("a2", visitor_id="alice", when_us=T0 + DAY_US)], "third")
    write_rows(storage, [row("c1", visitor_id="carol", site="other.example", when_us=T0)], "fourth")


def keys(storage: Any) -> list[str]:
    return [info.key for info in storage.list(EVENTS_PREFIX)]


def test_a_visitor_is_forgotten_and_only_their_files_change(storage: Any) -> None:
    seed(storage)
    before = keys(storage)
    seen: list[tuple[int, int]] = []
    report = forget_visitor(storage, "alice", progress=lambda done, total: seen.append((done, total)))
    assert sorted(stored_ids(storage)) == ["b1", "b2", "c1", "n1"]
    assert (report.rows_removed, report.files_rewritten, report.files_deleted, report.files_scanned) == (
        2, 1, 1, 4)
    assert report.partitions == ["site=example.com/date=2025-11-27", "site=example.com/date=2025-11-28"]
    assert "removed 2 events of visitor alice" in report.summary()
    untouched = [k for k in before if "second" in k or "fourth" in k]
    assert set(untouched) <= set(keys(storage))
    assert seen[-1] == (4, 4)
    [rewritten] = [k for k in keys(storage) if "first" in k]
    assert read_table(storage, rewritten).column("visitor_id").to_pylist() == ["bob"]


def test_forgetting_twice_changes_nothing_more(storage: Any) -> None:
    seed(storage)
    forget_visitor(storage, "bob")
    after = keys(storage)
    report = forget_visitor(storage, "bob")
    assert report.rows_removed == 0 and keys(storage) == after


def test_an_interrupted_forget_loses_nothing_and_a_rerun_finishes(storage: Any) -> None:
    seed(storage)
    [old] = [k for k in keys(storage) if "first" in k]
    # Interrupted after writing the new file, before deleting the old one.
    original_delete = storage.delete

    def crash(keys_: list[str]) -> None:
        raise KeyboardInterrupt

    storage.delete = crash
    with pytest.raises(KeyboardInterrupt):
        forget_visitor(storage, "alice")
    storage.delete = original_delete
    storage.delete(["_locks/maintenance.json"])  # the dead run's lock (it would expire; see test_lock.py)
    assert old in keys(storage) and _new_key(old, "alice") in keys(storage)
    assert set(stored_ids(storage)) >= {"a1", "b1", "b2", "c1", "n1"}  # readers dedupe
    forget_visitor(storage, "alice")
    assert sorted(stored_ids(storage)) == ["b1", "b2", "c1", "n1"]
    assert old not in keys(storage)


def test_one_site_only(storage: Any) -> None:
    seed(storage)
    report = forget_visitor(storage, "carol", site="example.com")
    assert report.rows_removed == 0 and "c1" in stored_ids(storage)
    assert forget_visitor(storage, "carol", site="other.example").rows_removed == 1


def test_new_names_do_not_grow_with_each_forget() -> None:
    key = "events/site=s/date=2026-01-01/abc.parquet"
    once = _new_key(key, "v1")
    twice = _new_key(once, "v2")
    assert once.startswith("events/site=s/date=2026-01-01/abc-f") and len(twice) == len(once)


def test_forgetting_in_a_compacted_partition_keeps_the_visit_ids(local_storage: Any) -> None:
    import pyarrow.parquet as pq

    from traceglider.storage.compact import compact

    write_rows(local_storage, [row("a1", visitor_id="alice", when_us=T0),
                               row("b1", visitor_id="bob", when_us=T0)], "first")
    write_rows(local_storage, [row("b2", visitor_id="bob", when_us=T0 + 60_000_000)], "second")
    compact(local_storage)
    forget_visitor(local_storage, "alice")
    (key,) = keys(local_storage)
    table = pq.read_table(local_storage.duckdb_uri(key))
    assert table.column("event_id").to_pylist() == ["b1", "b2"]
    assert table.column("visit_id").null_count == 0 and len(set(table.column("visit_id").to_pylist())) == 1


def test_forgetting_removes_the_visitors_visits_and_the_stats_recompute_that_day(local_storage: Any) -> None:
    import io
    from datetime import UTC, datetime

    import pyarrow.parquet as pq

    from traceglider.stats import query as Q
    from traceglider.stats import service
    from traceglider.stats.engine import Engine
    from traceglider.storage.compact import compact
    from traceglider.storage.forget import visitor_hash

    when = 1_764_280_000_000_000
    write_rows(local_storage, [row("a1", visitor_id="alice", when_us=when, country="DE"),
                               row("b1", visitor_id="bob", when_us=when + 1, country="FR")], "s1")
    compact(local_storage)
    visits = [i.key for i in local_storage.list("visits/")]
    assert visits
    report = forget_visitor(local_storage, "alice")
    assert report.visits_removed == 1
    for info in local_storage.list("visits/"):
        table = pq.read_table(io.BytesIO(local_storage.get(info.key)))
        assert visitor_hash("alice") not in table.column("visitor_hash").to_pylist()
        assert table.column("country").to_pylist() == ["FR"]
    engine = Engine(local_storage, clock=lambda: when / 1e6)
    q = Q.parse({"site_id": "example.com", "period": "day", "property": "visit:country"},
                datetime.fromtimestamp(when / 1e6, tz=UTC))
    assert service.breakdown(engine, q)["results"] == [{"country": "FR", "visitors": 1}]
    engine.close()
    compact(local_storage)  # the day's visits are written again from the rewritten events
    assert [i.key.rsplit("/", 1)[1][:3] for i in local_storage.list("visits/")] == ["vv-"]
