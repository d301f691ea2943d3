"""Compaction, erasure and retention replace files while the stats read them: a query
that meets a file that is gone reads again from a fresh listing instead of failing.
On local disk and on the S3 test server."""

from __future__ import annotations

import time

import pytest

from tests.helpers import row, wait_for
from traceglider.errors import Unavailable
from traceglider.stats.api import handle
from traceglider.stats.engine import Engine
from traceglider.storage.base import Storage
from traceglider.storage.compact import compact
from traceglider.storage.parquet import write_rows

SITE = "example.com"


def now_us(seconds_ago: float) -> int:
    return int((time.time() - seconds_ago) * 1_000_000)


def test_a_panel_read_after_a_compaction_replaced_its_files_is_answered(storage: Storage) -> None:
    write_rows(storage, [row("a", when_us=now_us(60), visitor_id="v1", source="Google")], "one")
    compact(storage)
    engine = Engine(storage)
    try:
        params = {"site_id": SITE, "period": "day"}
        first = handle("aggregate", engine, {**params, "metrics": "visitors,pageviews"})
        assert first["results"]["pageviews"]["value"] == 1
        # A new visitor arrives and the hourly compaction replaces today's file; the
        # listing the engine holds for a moment, and the period's tables (which read
        # the visits' sources from the files when first asked), still name the old one.
        write_rows(storage, [row("b", when_us=now_us(30), visitor_id="v2", source="Bing")], "two")
        compact(storage)
        sources = handle("breakdown", engine, {**params, "property": "visit:source"})
        assert sorted((r["source"], r["visitors"]) for r in sources["results"]) == [("Bing", 1), ("Google", 1)]
        again = handle("aggregate", engine, {**params, "metrics": "visitors,pageviews"})
        assert again["results"]["pageviews"]["value"] == 2
    finally:
        engine.close()


def test_files_that_keep_vanishing_give_a_503_to_retry(local_storage: Storage,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    engine = Engine(local_storage)
    calls: list[int] = []

    def always_gone() -> None:
        calls.append(1)
        raise duckdb.IOException('No files found that match the pattern "gone.parquet"')

    with pytest.raises(Unavailable) as caught:
        engine.reading(always_gone)
    assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"
    assert len(calls) == 2
    engine.close()


def test_a_build_that_failed_leaves_nothing_behind_and_the_retry_succeeds(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    # A read that fails part-way (a file gone, S3 answering 503 once) while the same
    # files are listed again on the retry: the second build must start clean.
    write_rows(storage, [row("a", when_us=now_us(60), visitor_id="v1")], "one")
    compact(storage)
    write_rows(storage, [row("b", when_us=now_us(30), visitor_id="v2")], "two")  # one of each kind
    engine = Engine(storage)
    real_uris, calls = engine.uris, []

    def first_read_fails(keys: list[str]) -> list[str]:
        calls.append(1)
        uris = real_uris(keys)
        return [u + ".gone" for u in uris] if len(calls) == 2 else uris  # part-way into the build

    monkeypatch.setattr(engine, "uris", first_read_fails)
    try:
        answer = handle("aggregate", engine, {"site_id": SITE, "period": "day", "metrics": "visitors,pageviews"})
        assert answer["results"] == {"visitors": {"value": 2}, "pageviews": {"value": 2}}
        assert len(calls) > 2  # it did fail once, then read again
        names = {n for (n,) in engine.cursor().execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert len({n.partition("_")[0] for n in names}) == 1  # the one good build, no leftovers
    finally:
        engine.close()


def test_a_build_waiting_behind_a_failed_one_meets_no_second_build(local_storage: Storage,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The dashboard asks for one period six requests at a time: when the first build
    # fails, the ones waiting behind it must build once, not side by side.
    import threading
    from datetime import UTC, datetime, timedelta

    import duckdb

    write_rows(local_storage, [row("a", when_us=now_us(60), visitor_id="v1")], "one")
    engine = Engine(local_storage)
    real, calls, failing = engine._build_run, [], threading.Event()

    def build(run, tables):  # type: ignore[no-untyped-def]
        calls.append(run)
        if len(calls) == 1:  # makes a table, then meets a file that is gone
            engine.cursor().execute(f"CREATE TABLE {tables.events} AS SELECT 1 AS x")
            failing.wait(5)
            raise duckdb.IOException("No files found")
        real(run, tables)
        threading.Event().wait(0.3)  # a third request arrives meanwhile

    monkeypatch.setattr(engine, "_build_run", build)
    end = datetime.now(UTC) + timedelta(hours=1)
    start = end - timedelta(days=1)
    got: dict[str, object] = {}

    from traceglider.stats.model import Question

    def ask(name: str) -> None:
        try:
            got[name] = engine.relations(Question(SITE, start.replace(tzinfo=None), end.replace(tzinfo=None),
                                                  ("visitors",)))[0]
        except duckdb.IOException:
            got[name] = "failed"

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert wait_for(lambda: len(calls) == 1)
    second = threading.Thread(target=ask, args=("second",))
    second.start()
    threading.Event().wait(0.2)  # waiting for the first build
    failing.set()
    assert wait_for(lambda: len(calls) == 2)
    third = threading.Thread(target=ask, args=("third",))
    third.start()
    for t in (first, second, third):
        t.join(10)
    try:
        assert got["first"] == "failed" and got["second"] == got["third"]
        assert len(calls) == 2  # one build after the failure, shared
        visits = got["second"].run_tables[0][1]  # type: ignore[attr-defined]
        assert engine.fetch(f"SELECT count(*) FROM {visits}")[0][0] == 1
    finally:
        engine.close()



def test_days_compacted_before_the_visits_kept_a_column_read_it_as_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A visits column added later (`timezone`): the days compacted before it lack it,
    in some files or in all; every question still answers, those days as none."""
    import io

    import pyarrow.parquet as pq

    from traceglider import demo_data
    from traceglider.stats.api import handle
    from traceglider.stats.engine import Engine
    from traceglider.storage.compact import compact
    from traceglider.storage.layout import VISITS_PREFIX
    from traceglider.storage.local import LocalStorage

    storage = LocalStorage(tmp_path)
    demo_data.generate(storage, "old.example", 3_000, days=4, seed=3, now=1_764_244_800.0)
    compact(storage)
    keys = sorted(i.key for i in storage.list(VISITS_PREFIX))
    assert len(keys) >= 3

    def drop_timezone(key: str) -> None:
        table = pq.read_table(io.BytesIO(storage.get(key)))
        out = io.BytesIO()
        pq.write_table(table.drop_columns(["timezone"]), out)
        storage.put(key, out.getvalue())

    base = {"site_id": "old.example", "period": "7d", "date": "2025-11-27", "metrics": "visitors"}
    for old in (keys[:1], keys):  # one old day, then every day old
        for key in old[1:] if old == keys else old:
            drop_timezone(key)
        engine = Engine(storage, result_entries=0)
        try:
            rows = handle("breakdown", engine, {**base, "property": "visit:timezone"})["results"]
            total = handle("aggregate", engine, base)["results"]["visitors"]["value"]
            assert total > 0
            assert sum(r["visitors"] for r in rows) >= total  # every visitor under some zone or none
            zones = {r["timezone"] for r in rows}
            assert "(none)" in zones
            assert (zones == {"(none)"}) == (old == keys)  # the days compacted since keep their zones
        finally:
            engine.close()
