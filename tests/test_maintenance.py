"""The maintenance `serve` runs itself: compaction, retention and old salts, taking
turns with other jobs through the storage's lock. Real app, real local storage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.helpers import batch, row, stored_ids, wait_for
from tests.ingest.conftest import make_client
from traceglider import maintenance
from traceglider.errors import StorageError
from traceglider.maintenance import Maintainer, run_maintenance
from traceglider.storage.layout import compacted_group
from traceglider.storage.local import LocalStorage
from traceglider.storage.lock import MaintenanceLock
from traceglider.storage.parquet import list_partitions, write_rows

SITE = "example.com"
OLD = dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)


def files(storage: LocalStorage) -> list[str]:
    return sorted(key for keys in list_partitions(storage).values() for key in keys)


def test_serve_compacts_todays_files_by_itself(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path / "data"))
    with make_client(tmp_path, TG_COMPACT_SECONDS="0.5") as client:
        for n in range(3):  # three flushes: three files
            assert client.post("/collect", json=batch(SITE, [f"e{n}"])).status_code == 202
            assert wait_for(lambda n=n: len(stored_ids(storage)) == n + 1)
        assert wait_for(lambda: len(files(storage)) == 1 and compacted_group(files(storage)) is not None,
                        timeout=20)
        assert sorted(stored_ids(storage)) == ["e0", "e1", "e2"]
        # the round is counted once it ends (retention and salts come after the compaction)

        def counted() -> bool:
            status = client.get("/healthz").json()["maintenance"]
            return bool(status["rounds"] >= 1 and status["last"])

        assert wait_for(counted, timeout=20)
        status = client.get("/healthz").json()["maintenance"]
        assert status["every_seconds"] == 0.5 and status["rounds"] >= 1
        assert status["last"]["seconds"] >= 0 and "error" not in status["last"]


def test_off_with_zero_and_in_the_health_answer_only_when_on(tmp_path: Path) -> None:
    with make_client(tmp_path, TG_COMPACT_SECONDS="0") as client:
        assert "maintenance" not in client.get("/healthz").json()
    with make_client(tmp_path) as client:  # on by default, first round in 5 minutes
        status = client.get("/healthz").json()["maintenance"]
        assert status == {"every_seconds": 3600.0, "rounds": 0, "skipped": 0, "last": None}


def at(day: dt.date, hour: int) -> int:
    return int(dt.datetime.combine(day, dt.time(hour), dt.UTC).timestamp() * 1_000_000)


TODAY = dt.date(2026, 3, 10)


def test_a_round_compacts_applies_retention_and_purges_salts(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    write_rows(storage, [row("a", when_us=at(TODAY, 9))], "one")
    write_rows(storage, [row("b", when_us=at(TODAY, 10))], "two")
    write_rows(storage, [row("old", when_us=at(OLD.date(), 12))], "old")
    storage.put("_salts/2020-01-01", b"s" * 32)
    summary = run_maintenance(storage, 400, today=TODAY)
    assert summary["removed_files"] == 1 and summary["purged_salts"] == 1
    (result,) = summary["compacted"][TODAY.isoformat()]
    assert result["files_before"] == 2 and result["files_after"] == 1
    assert sorted(stored_ids(storage)) == ["a", "b"]
    assert [i.key for i in storage.list("_locks/")] == []
    with pytest.raises(ValueError, match="not-a-date"):
        run_maintenance(storage, 400, dates=["not-a-date"])
    with pytest.raises(ValueError, match="greater than 0"):
        run_maintenance(storage, 0)


def test_without_a_retention_setting_nothing_is_deleted(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    write_rows(storage, [row("old", when_us=at(OLD.date(), 12))], "old")
    summary = run_maintenance(storage, None, today=TODAY)
    assert summary["removed_files"] == 0 and stored_ids(storage) == ["old"]
    with make_client(tmp_path / "app") as client:  # serve: TG_RETENTION_DAYS unset
        assert client.app.state.settings.retention_days is None


def test_a_round_asked_to_stop_ends_after_the_partition_in_hand(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    days = [TODAY - dt.timedelta(days=n) for n in range(3, -1, -1)]  # a backlog of four days
    for day in days:
        write_rows(storage, [row(f"{day}-a", when_us=at(day, 9))], f"{day}-1")
        write_rows(storage, [row(f"{day}-b", when_us=at(day, 10))], f"{day}-2")
    asked: list[int] = []

    def stop() -> bool:  # asked before each partition; "stop" after the first is done
        asked.append(1)
        return len(asked) > 1

    summary = run_maintenance(storage, 1, today=TODAY, stop=stop)
    done = [r for day in summary["compacted"].values() for r in day]
    assert len(done) == 1 and done[0]["date"] == days[0].isoformat()  # the oldest first
    assert summary["removed_files"] == 0  # no retention on the way out
    assert len(files(storage)) == 7 and [i.key for i in storage.list("_locks/")] == []


def test_a_round_skips_when_another_job_holds_the_lock(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    write_rows(storage, [row("a")], "one")
    write_rows(storage, [row("b")], "two")
    before = files(storage)
    maintainer = Maintainer(storage, 760, interval=3600)
    other = MaintenanceLock(storage, "forget")  # a long erasure, or a cron job on another host
    other.acquire(wait=0)
    assert maintainer.run_once() == {}
    other.release()
    assert files(storage) == before
    assert maintainer.status()["skipped"] == 1 and maintainer.status()["rounds"] == 0
    assert maintainer.run_once()["compacted"]  # its turn once the lock is free
    assert len(files(storage)) == 1 and maintainer.status()["rounds"] == 1


def test_a_failed_round_is_reported_and_the_next_one_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(str(tmp_path))
    calls: list[int] = []
    real = maintenance.run_maintenance

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise StorageError("storage unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(maintenance, "run_maintenance", flaky)
    maintainer = Maintainer(storage, 760, interval=0.05, first_run=0)
    maintainer.start()
    try:
        assert wait_for(lambda: maintainer.status()["rounds"] >= 1, timeout=10)
    finally:
        maintainer.stop()
    assert len(calls) >= 2
    n = len(calls)
    assert not wait_for(lambda: len(calls) > n, timeout=0.3), "it kept running after stop"


def test_the_retention_command_deletes_old_partitions_and_salts(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # For cron setups (TG_COMPACT_SECONDS=0): the salts of days without traffic go too.
    from traceglider.cli import main

    storage = LocalStorage(str(tmp_path))
    write_rows(storage, [row("old", when_us=at(OLD.date(), 12)), row("new")], "mixed")
    storage.put("_salts/2020-01-01", b"s" * 32)
    assert main(["retention", "--days", "30", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "removed 1 file(s) older than 30 days" in out and "deleted 1 cookieless salt(s)" in out
    assert stored_ids(storage) == ["new"] and storage.list("_salts/") == []


def test_serve_warns_at_start_while_no_retention_is_set(tmp_path: Path) -> None:
    from traceglider.config import load
    from traceglider.serve import _banner

    env = {"TG_STORAGE": str(tmp_path), "TG_SECRET": "s" * 32, "TG_SITES": SITE}
    assert "TG_RETENTION_DAYS is unset: events are kept until deleted" in _banner(load(env=env))
    assert "TG_RETENTION_DAYS" not in _banner(load(env={**env, "TG_RETENTION_DAYS": "760"}))
