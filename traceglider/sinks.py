"""Where accepted rows go: the spool (long-running server) or straight to storage
(Lambda, where nothing may wait in memory or in /tmp after the answer).

Either way `accept` returns only once the rows are durable, and raises `Unavailable`
(503) when they are not, so a client never gets a 202 for data that was not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from traceglider.errors import StorageError, Unavailable
from traceglider.spool.flusher import Completion, Flusher
from traceglider.spool.wal import Spool
from traceglider.storage.base import Storage
from traceglider.storage.parquet import write_rows
from traceglider.types import EventRow, PipelineRow

# A write that takes longer than this is answered 503 (the client retries); the spool
# writer may still finish it, and the duplicate is removed by event id.
ACCEPT_TIMEOUT = 30.0


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(Unavailable("the spool did not confirm the write in time; retry", retry_after=5))


class _Deadlines:
    """The writes one event loop waits for, failed with a 503 once ACCEPT_TIMEOUT has
    passed, under one timer for all of them: uvloop's call_later and its cancel took
    4 us a request (asyncio.wait_for more), a timer armed and disarmed per answer.
    Writes are watched in the order they are submitted, so their deadlines are in
    order too and the timer only ever needs the first one still waiting."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[None]) -> None:
        waiting = self._waiting
        while waiting and waiting[0][1].done():  # answered: mostly all but the last few
            waiting.popleft()
        waiting.append((self.loop.time() + ACCEPT_TIMEOUT, future))
        if self._timer is None:
            self._timer = self.loop.call_at(waiting[0][0], self._due)

    def _due(self) -> None:
        self._timer = None
        now, waiting = self.loop.time(), self._waiting
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            _expire(waiting.popleft()[1])
        if waiting:
            self._timer = self.loop.call_at(waiting[0][0], self._due)


class SpoolSink:
    """The spool and its flusher, opened when the app starts and closed when it stops
    (and reopened if the app is started again, as test harnesses do)."""

    def __init__(self, storage: Storage, directory: Path, max_bytes: int,
                 flush_seconds: float, flush_events: int, complete: Completion | None = None,
                 count_drops: Callable[[Counter[tuple[str, str]]], None] | None = None) -> None:
        self.storage, self.directory, self.max_bytes = storage, directory, max_bytes
        self.flush_seconds, self.flush_events = flush_seconds, flush_events
        self.complete, self.count_drops = complete, count_drops
        # Rows may be spooled unfinished (`RequestInfo.defer`): the flusher completes them.
        self.completes_later = complete is not None
        self.spool: Spool | None = None
        self.flusher: Flusher | None = None
        # Of the loop the last write came from; another loop (an app started again,
        # a test's asyncio.run) gets its own, and the old one still expires its own.
        self._deadlines: _Deadlines | None = None

    async def accept(self, rows: list[PipelineRow]) -> None:
        spool, flusher = self.spool, self.flusher
        if spool is None or flusher is None:
            raise Unavailable("the collector is starting or stopping; retry shortly", retry_after=2)
        future = spool.submit_async(b"\n".join(map(orjson.dumps, rows)), len(rows))
        if not future.done():  # refused at once (full, closing): nothing to wait for
            deadlines = self._deadlines
            if deadlines is None or deadlines.loop is not future.get_loop():
                self._deadlines = deadlines = _Deadlines(future.get_loop())
            deadlines.watch(future)  # if the write hangs, a 503 after ACCEPT_TIMEOUT
        await future
        flusher.notify()

    def write_alone(self, rows: list[PipelineRow]) -> bool:
        """Append and fsync on the calling thread if the spool has nothing else to
        write (`Spool.append_alone`); False: `accept` them instead."""
        spool, flusher = self.spool, self.flusher
        if spool is None or flusher is None:
            return False
        if not spool.append_alone(b"\n".join(map(orjson.dumps, rows)), len(rows)):
            return False
        flusher.notify()
        return True

    def start(self) -> None:
        if self.spool is not None:
            return
        self.spool = Spool(self.directory, self.max_bytes)
        self.flusher = Flusher(self.spool, self.storage, self.flush_seconds, self.flush_events,
                               complete=self.complete, count_drops=self.count_drops)
        self.flusher.start()

    def stop(self) -> None:
        spool, flusher = self.spool, self.flusher
        self.spool = self.flusher = None
        if flusher is not None:
            flusher.stop()
        if spool is not None:
            spool.close()

    def healthy(self) -> bool:
        return (self.flusher is not None and self.spool is not None and bool(self.flusher.storage_ok)
                and self.flusher.running and self.spool.accepting)

    def flush(self) -> bool:
        """Deliver everything spooled now; False if storage failed (it stays spooled)."""
        return self.flusher.flush_once() if self.flusher is not None else True

    def status(self) -> dict[str, Any]:
        if self.spool is None or self.flusher is None:
            return {"mode": "spool", "storage": self.storage.url, "storage_ok": False, "spool": "closed"}
        return {"mode": "spool", "spool_dir": str(self.spool.dir), **self.flusher.status(),
                "spool_accepting": self.spool.accepting, "spool_error": self.spool.write_error}


def batch_name(rows: Sequence[EventRow]) -> str:
    """A name derived from the batch's content, so a client's retry of the same batch
    maps to the same object and cannot create a second copy."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r["event_id"]):
        digest.update(row["site"].encode())
        digest.update(b"\0")
        digest.update(row["event_id"].encode())
        digest.update(b"\0")
    return "b-" + digest.hexdigest()[:40]


class DirectSink:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.storage_ok: bool | None = None
        self.delivered_events = 0

    async def accept(self, rows: list[PipelineRow]) -> None:
        try:
            await asyncio.to_thread(write_rows, self.storage, rows, batch_name(rows))
        except StorageError as exc:
            self.storage_ok = False
            raise Unavailable("storage is unavailable; retry later", retry_after=5) from exc
        self.storage_ok = True
        self.delivered_events += len(rows)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def flush(self) -> bool:
        return True  # nothing waits: every batch was written before its answer

    def healthy(self) -> bool:
        try:
            self.storage.health()
        except StorageError:
            self.storage_ok = False
            return False
        self.storage_ok = True
        return True

    def status(self) -> dict[str, Any]:
        return {"mode": "direct", "storage": self.storage.url, "storage_ok": bool(self.storage_ok),
                "delivered_events": self.delivered_events}
