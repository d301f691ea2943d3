"""Compaction, erasure and retention take turns through a lock object in storage."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import row, stored_ids, wait_for
from traceglider.proc import pid_namespace
from traceglider.storage.compact import compact
from traceglider.storage.local import LocalStorage
from traceglider.storage.lock import LOCK_KEY, LockBusy, MaintenanceLock, maintenance
from traceglider.storage.parquet import write_rows

NOW_US = 1_764_280_000_000_000


def test_one_holder_at_a_time_and_the_lock_goes_with_it(storage: Any) -> None:
    with maintenance(storage, "forget") as held:
        assert json.loads(storage.get(LOCK_KEY))["job"] == "forget"
        with pytest.raises(LockBusy, match="forget is running"):
            MaintenanceLock(storage, "compact").acquire(wait=0)
        held.renew()  # still ours
    assert [i.key for i in storage.list("_locks/")] == []
    with maintenance(storage, "compact"):  # free again
        pass


def test_a_lock_left_by_a_dead_job_expires(storage: Any) -> None:
    dead = MaintenanceLock(storage, "compact", ttl=-1)  # as if its expiry had passed
    dead.acquire(wait=0)
    taker = MaintenanceLock(storage, "forget")
    taker.acquire(wait=0)
    assert json.loads(storage.get(LOCK_KEY))["job"] == "forget"
    dead.release()  # not its lock any more: left alone
    assert json.loads(storage.get(LOCK_KEY))["job"] == "forget"
    taker.release()


class LockTries(LocalStorage):
    """Local storage that counts the attempts to take the maintenance lock."""

    tries = 0

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        if key == LOCK_KEY and if_absent:
            self.tries += 1
        return super().put(key, data, if_absent=if_absent)


def test_compaction_waits_for_an_erasure_in_progress(tmp_path: Path) -> None:
    local_storage = LockTries(tmp_path / "data")
    write_rows(local_storage, [row("a", when_us=NOW_US)], "s1")
    write_rows(local_storage, [row("b", when_us=NOW_US)], "s2")
    lock = MaintenanceLock(local_storage, "forget")
    lock.acquire(wait=0)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (compact(local_storage), done.set()))
    worker.start()
    # found the lock held, waited its poll and found it held again
    assert wait_for(lambda: local_storage.tries >= 2, timeout=10)
    assert not done.is_set() and len(local_storage.list("events/")) == 2  # waiting, nothing touched
    lock.release()
    worker.join(30)
    assert done.is_set() and len(local_storage.list("events/")) == 1
    assert sorted(stored_ids(local_storage)) == ["a", "b"]


def test_a_lock_of_a_process_gone_from_this_machine_is_taken_at_once(local_storage: Any) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    lock = MaintenanceLock(local_storage, "compact")
    local_storage.put(LOCK_KEY, lock._record().replace(
        f'"pid": {__import__("os").getpid()}'.encode(), f'"pid": {gone.stdout.strip()}'.encode()))
    assert json.loads(local_storage.get(LOCK_KEY))["pid"] == int(gone.stdout)
    with maintenance(local_storage, "forget", wait=0):  # no 15-minute wait
        assert json.loads(local_storage.get(LOCK_KEY))["job"] == "forget"


def test_a_long_erasure_keeps_renewing_its_lock(local_storage: Any, monkeypatch: Any) -> None:
    from traceglider.storage import forget as forget_module

    for i in range(7):
        write_rows(local_storage, [row(f"e{i}", visitor_id="someone", when_us=NOW_US + i)], f"s{i}")
    renewals: list[int] = []
    monkeypatch.setattr(forget_module, "RENEW_EVERY", 2)
    monkeypatch.setattr(MaintenanceLock, "renew", lambda self: renewals.append(1))
    forget_module.forget_visitor(local_storage, "nobody-here")  # every file skipped by its statistics
    assert len(renewals) == 3  # after files 2, 4 and 6


def test_a_lock_that_cannot_be_removed_does_not_fail_the_job(local_storage: Any, monkeypatch: Any) -> None:
    def refuse(keys: list[str]) -> None:
        from traceglider.errors import StorageError

        raise StorageError("AccessDenied")

    with maintenance(local_storage, "forget"):
        monkeypatch.setattr(local_storage, "delete", refuse)
    monkeypatch.undo()
    assert [i.key for i in local_storage.list("_locks/")] == [LOCK_KEY]  # left to expire


@pytest.mark.skipif(pid_namespace() is None, reason="needs Linux /proc")
def test_a_lock_whose_process_id_now_belongs_to_another_process_is_taken(local_storage: Any) -> None:
    # A container restarted: its server is PID 1 again, but not the process that took
    # the lock (killed in the middle of a compaction). Its start time tells them apart.
    import os

    record = json.loads(MaintenanceLock(local_storage, "compact")._record())
    assert record["started"]  # this machine has /proc
    record["started"] = record["started"].rpartition(":")[0] + ":1"  # started at boot: not us
    local_storage.put(LOCK_KEY, json.dumps(record).encode())
    assert json.loads(local_storage.get(LOCK_KEY))["pid"] == os.getpid()
    with maintenance(local_storage, "forget", wait=0):
        assert json.loads(local_storage.get(LOCK_KEY))["job"] == "forget"


def test_a_thread_holding_the_lock_runs_its_jobs_under_it(local_storage: Any) -> None:
    write_rows(local_storage, [row("a", when_us=NOW_US)], "s1")
    write_rows(local_storage, [row("b", when_us=NOW_US)], "s2")
    with maintenance(local_storage, "maintenance") as outer:
        compact(local_storage, wait=0)  # no LockBusy: this thread holds it
        assert json.loads(local_storage.get(LOCK_KEY))["token"] == outer.token
    assert len(local_storage.list("events/")) == 1
    assert [i.key for i in local_storage.list("_locks/")] == []


def test_a_concurrent_conditional_write_counts_as_busy(local_storage: Any, monkeypatch: Any) -> None:
    from traceglider.errors import WriteConflict

    def conflict(key: str, data: bytes, *, if_absent: bool = False) -> bool:
        raise WriteConflict("409 ConditionalRequestConflict")

    monkeypatch.setattr(local_storage, "put", conflict)
    with pytest.raises(LockBusy):
        MaintenanceLock(local_storage, "compact").acquire(wait=0)


def test_a_holder_in_another_pid_namespace_keeps_its_lock_until_it_expires(local_storage: Any) -> None:
    # Containers sharing the host's name (host networking) each have their own pids: a
    # pid that is not ours proves nothing, so only the expiry counts.
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    record = json.loads(MaintenanceLock(local_storage, "compact")._record())
    record.update(pid=int(gone), pidns="1")  # another namespace's process
    local_storage.put(LOCK_KEY, json.dumps(record).encode())
    with pytest.raises(LockBusy):
        MaintenanceLock(local_storage, "forget").acquire(wait=0)
    record["expires"] = 0
    local_storage.put(LOCK_KEY, json.dumps(record).encode())
    with maintenance(local_storage, "forget", wait=0):
        pass
