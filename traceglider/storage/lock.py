"""One maintenance job at a time over a storage: compaction, erasure and retention.

They all rewrite or delete files, and two at once can undo each other: a compaction
that read a partition before `forget` rewrote it would write the erased rows back into
its merged file. So each takes this lock first: an object `_locks/maintenance.json`
created only if absent (a create-only link on local disk, `If-None-Match: *` on S3),
holding its owner and an expiry. A job that died leaves a lock that expires after
`ttl` seconds (jobs renew theirs as they go, so a long one keeps it), or at once when
its process is gone and was on this machine (a process id reused after a restart, as
a container's PID 1 always is, is told apart by the process's start time); a waiting
job then removes it and takes the lock itself. The collector never takes it: it only
adds new files, which no job touches before they are listed.

A thread that holds the lock and starts another job on the same storage (a
maintenance round: compaction, then retention) goes on under the lock it holds.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from traceglider.errors import StorageError, WriteConflict
from traceglider.proc import pid_namespace, process_started
from traceglider.storage.base import Storage

log = logging.getLogger("traceglider.lock")

LOCK_KEY = "_locks/maintenance.json"
TTL_SECONDS = 900.0
WAIT_SECONDS = 900.0


class LockBusy(StorageError):
    """Another maintenance job holds the lock and did not let go in time."""


class MaintenanceLock:
    def __init__(self, storage: Storage, job: str, *, ttl: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage, self.job, self.ttl, self.clock = storage, job, ttl, clock
        self.token = uuid.uuid4().hex
        self.held = False

    def _record(self) -> bytes:
        return json.dumps({"job": self.job, "token": self.token, "host": socket.gethostname(),
                           "pidns": pid_namespace(), "pid": os.getpid(), "started": process_started(os.getpid()),
                           "expires": self.clock() + self.ttl}).encode()

    def acquire(self, wait: float = WAIT_SECONDS, poll: float = 1.0) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                if self.storage.put(LOCK_KEY, self._record(), if_absent=True):
                    self.held = True
                    return
            except WriteConflict:
                pass  # another job is taking it this instant: it is busy
            holder = self._holder()
            if holder is not None and self._stale(holder):
                again = self._holder()  # another waiter may have replaced it just now
                if again is not None and again.get("token") == holder.get("token"):
                    log.warning("removing the maintenance lock of %s, which is gone", holder.get("job"))
                    self.storage.delete([LOCK_KEY])
                continue
            if time.monotonic() >= deadline:
                job = holder.get("job") if holder else "another job"
                raise LockBusy(f"{job} is running on this storage (lock {LOCK_KEY}); try again later")
            time.sleep(poll)

    def _stale(self, holder: dict) -> bool:
        """Expired, or held by a process of this machine (and pid namespace) that is gone.
        A holder in another pid namespace (a container sharing the host's name) cannot
        be looked up from here: only its expiry counts."""
        if holder.get("expires", 0) < self.clock():
            return True
        if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
            return False
        if holder.get("pidns") != pid_namespace() or pid_namespace() is None:
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        started = process_started(holder["pid"])  # the same process, or its id reused?
        return bool(holder.get("started") and started and holder["started"] != started)

    def _holder(self) -> dict | None:
        try:
            record = json.loads(self.storage.get(LOCK_KEY))
        except (StorageError, ValueError, KeyError, FileNotFoundError):
            return None  # gone meanwhile, or unreadable (being written): look again
        return record if isinstance(record, dict) else None

    def renew(self) -> None:
        """Push the expiry back (a long job calls this as it goes)."""
        holder = self._holder()
        if self.held and holder is not None and holder.get("token") == self.token:
            self.storage.put(LOCK_KEY, self._record())

    def release(self) -> None:
        holder = self._holder()
        if self.held and holder is not None and holder.get("token") == self.token:
            self.storage.delete([LOCK_KEY])
        self.held = False


_held = threading.local()  # id(storage) -> the lock this thread holds on it


@contextmanager
def maintenance(storage: Storage, job: str, wait: float = WAIT_SECONDS) -> Iterator[MaintenanceLock]:
    held: dict[int, MaintenanceLock] = _held.__dict__.setdefault("locks", {})
    if id(storage) in held:  # this thread holds it already: one job of a round
        yield held[id(storage)]
        return
    lock = MaintenanceLock(storage, job)
    lock.acquire(wait)
    held[id(storage)] = lock
    try:
        yield lock
    finally:
        del held[id(storage)]
        try:
            lock.release()
        except StorageError as exc:  # it expires by itself; the job's own outcome matters more
            log.warning("could not release the maintenance lock: %s", exc)
