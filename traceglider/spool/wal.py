"""The write-ahead spool: accepted batches are appended here and fsynced before 202.

A spool directory holds segments. The segment being written is `<id>.open`; a sealed
one is `<id>.wal`. Each record is framed as

    MAGIC (4 bytes) | length (u32 LE) | crc32 of payload (u32 LE) | payload

so a reader can verify every record, skip a torn tail, and resynchronise on the next
MAGIC after a damaged record. Appends go through one writer thread that takes every
record waiting in its queue, writes them and fsyncs once: concurrent requests share
one fsync (group commit).

Several processes may share a spool root; each claims its own `worker-N` directory
with an exclusive flock, and a later process that claims it replays what was left.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import socket
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from traceglider.errors import Unavailable
from traceglider.fsutil import fsync_dir, write_durably

log = logging.getLogger("traceglider.spool")

MAGIC = b"TGW1"
_HEADER = struct.Struct("<4sII")
MAX_RECORD = 64 * 1024 * 1024
SEGMENT_BYTES = 64 * 1024 * 1024
FULL_HEADROOM = 64 * 1024  # less room than this under the cap counts as full
QUARANTINE = "bad"  # segments that cannot be delivered, kept for a person to look at
REASON_SUFFIX = ".reason"  # beside each quarantined file: why it is there
GATHER_SECONDS = 0.002  # the longest a group waits for the records of clients just answered
_NEVER = 1 << 62
SYNC_WINDOW = 1024  # fsync times kept for /healthz


@dataclass(frozen=True)
class Segment:
    path: Path

    @property
    def id(self) -> str:
        return self.path.stem


def new_segment_id() -> str:
    # Sortable by creation time, unique across hosts and processes: it becomes the
    # name of the Parquet objects delivered from this segment.
    host = socket.gethostname().split(".")[0][:20] or "host"
    return f"{time.time_ns():020d}-{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_records(path: Path) -> tuple[list[bytes], int]:
    """All records that pass their checksum, and the count of damaged spans skipped."""
    data = path.read_bytes()
    records, damaged, pos = [], 0, 0
    while pos + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if magic == MAGIC and length <= MAX_RECORD and end <= len(data):
            payload = data[start:end]
            if zlib.crc32(payload) == crc:
                records.append(payload)
                pos = end
                continue
        damaged += 1
        next_magic = data.find(MAGIC, pos + 1)
        if next_magic < 0:
            break
        pos = next_magic
    else:
        if pos < len(data):
            damaged += 1  # a torn header at the end
    return records, damaged


class Spool:
    def __init__(self, root: Path, max_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dir, self._lock_fd = _claim(root)
        # Open segments left by a process that died are sealed now, before this
        # process opens its own: from here on `.open` always means "ours, in use".
        _seal_leftovers(self.dir)
        # Two locks so that a request thread checking the cap never waits behind an
        # fsync: `_file_lock` guards the open segment, `_mutex` only the counters.
        self._file_lock = threading.Lock()
        self._mutex = threading.Lock()
        self._queue: queue.Queue[tuple[bytes, int, Waiter] | None] = queue.Queue()
        self._gathered = threading.Event()  # set when the group being gathered is complete
        # Whether a group is being written: a hint for `append_alone` (the file lock
        # keeps writes apart regardless).
        self._writing = False
        self._wanted = _NEVER
        self._fd = -1
        self._open_path: Path | None = None
        self._open_size = 0
        self.pending_events = sum(count_events(p) for p in self._segment_paths())  # not yet delivered
        self.bytes = sum(p.stat().st_size for p in self._segment_paths())
        self.fsyncs = 0
        # How long the last fsyncs took: every answer waits for one, so their tail is
        # the floor of the collector's latency tail (/healthz: spool_fsync_ms).
        self.sync_seconds: deque[float] = deque(maxlen=SYNC_WINDOW)
        self.write_error: str | None = None  # the last append's failure (a full disk), if it failed
        self._closed = False
        self.adopt_orphans()
        # Read on every submit: a flag the writer clears as it ends costs less than
        # `Thread.is_alive` (a lock acquired per call).
        self._running = True
        self._writer = threading.Thread(target=self._write_loop, name="tg-spool-writer", daemon=True)
        self._writer.start()

    # -- appending -------------------------------------------------------------

    def submit(self, payload: bytes, events: int) -> Future[None]:
        """Queue a record; the future resolves once it is on disk (or fails)."""
        future: Future[None] = Future()
        return self._submit(payload, events, future)

    def submit_async(self, payload: bytes, events: int) -> asyncio.Future[None]:
        """`submit` for a coroutine: an asyncio future of the running loop, resolved
        with one wake-up of the loop per group written, whatever its size."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return self._submit(payload, events, future)

    def append_alone(self, payload: bytes, events: int) -> bool:
        """Write and fsync the record on the calling thread (the event loop), when it
        would be a group of one anyway (the caller knows no other request waits, and
        nothing is queued or being written). One client then pays its fsync and nothing
        more: two thread hand-offs per request cost more than that on a busy machine.
        False: nothing was written, `submit` it. Raises Unavailable as `append` does."""
        size = _HEADER.size + len(payload)
        with self._mutex:
            if (self._closed or self._writing or not self._queue.empty()
                    or self.bytes + size > self.max_bytes):
                return False
            self.bytes += size
            self._writing = True
        try:
            future: Future[None] = Future()
            self._write_group([(payload, events, future)])
        finally:
            self._writing = False
        future.result()
        return True

    def _submit(self, payload: bytes, events: int, future: W) -> W:
        size = _HEADER.size + len(payload)
        with self._mutex:
            if self._closed or not self._running:
                future.set_exception(Unavailable("the spool is shutting down"))
                return future
            if self.bytes + size > self.max_bytes:
                future.set_exception(Unavailable("the spool is full; storage is behind", retry_after=30))
                return future
            self.bytes += size  # reserved now so concurrent requests see the cap
            # Queued under the mutex, so nothing can slip in after close()'s sentinel.
            # Framing (the checksum) happens on the writer thread, off the request path.
            self._queue.put((payload, events, future))
            if self._queue.qsize() >= self._wanted:
                self._gathered.set()
        return future

    def fsync_ms(self) -> dict[str, float | int]:
        """The last `SYNC_WINDOW` fdatasyncs of the spool: how many, median, p99, max."""
        times = sorted(self.sync_seconds)
        if not times:
            return {"count": 0}
        def at(share: float) -> float:
            return round(1000 * times[min(len(times) - 1, int(share * len(times)))], 2)
        return {"count": len(times), "p50": at(0.5), "p99": at(0.99), "max": round(1000 * times[-1], 2)}

    @property
    def alive(self) -> bool:
        return self._running and self._writer.is_alive()

    @property
    def accepting(self) -> bool:
        """Whether a batch would be taken now: the writer runs, the last write did not
        fail and room is left under the cap. /healthz says 503 otherwise, as /collect does."""
        return (self.alive and not self._closed and self.write_error is None
                and self.max_bytes - self.bytes >= FULL_HEADROOM)

    def append(self, payload: bytes, events: int) -> None:
        self.submit(payload, events).result()

    def _write_loop(self) -> None:
        try:
            self._write_groups()
        finally:
            self._running = False

    def _write_groups(self) -> None:
        expected, fsync_seconds = 1, 0.0
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._writing = True
            batch = [item]
            # Gather the group. Clients answered by the last fsync send their next
            # batches a moment later, one by one: writing as soon as the first arrives
            # would split them over two fsyncs. So wait until as many records as the
            # last group had are queued, for at most half an fsync, woken once by
            # `submit` (never at one client, where the last group had one record).
            window = min(GATHER_SECONDS, fsync_seconds / 2)
            if expected > 1 and window > 0:
                self._wanted = expected - 1
                if self._queue.qsize() < self._wanted:
                    self._gathered.wait(window)
                self._wanted = _NEVER
                self._gathered.clear()
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                batch.append(more)
            expected = len(batch)
            started = time.monotonic()
            try:
                self._write_group(batch)
            except BaseException as exc:  # never let the only writer thread die
                log.exception("spool writer failed")
                _settle([future for _, _, future in batch],
                        Unavailable(f"cannot write the spool: {exc}", retry_after=10))
            fsync_seconds = time.monotonic() - started
            self._writing = False

    def _write_group(self, batch: list[tuple[bytes, int, Waiter]]) -> None:
        data = b"".join(frame(payload) for payload, _, _ in batch)
        events = sum(n for _, n, _ in batch)
        with self._file_lock:
            try:
                self._ensure_open()
                start = self._open_size
                try:
                    _write_all(self._fd, data)
                    synced = time.monotonic()
                    os.fdatasync(self._fd)
                    self.sync_seconds.append(time.monotonic() - synced)
                except OSError:
                    # Take back a partial write so later records start clean.
                    self._open_size = start
                    try:
                        os.ftruncate(self._fd, start)
                        os.lseek(self._fd, start, os.SEEK_SET)
                    except OSError:
                        self._seal_locked()
                    raise
                self._open_size = start + len(data)
                self.fsyncs += 1
                error: BaseException | None = None
            except OSError as exc:
                error = Unavailable(f"cannot write the spool: {exc.strerror or exc}", retry_after=10)
            if error is None and self._open_size >= self.segment_bytes:
                try:
                    self._seal_locked()
                except OSError:
                    log.exception("cannot seal a full spool segment; it is sealed at the next flush")
        with self._mutex:
            if error is None:
                self.pending_events += events
            else:
                self.bytes -= len(data)
            self.write_error = None if error is None else str(error)
        _settle([future for _, _, future in batch], error)

    def _ensure_open(self) -> None:
        if self._fd >= 0:
            return
        path = self.dir / f"{new_segment_id()}.open"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fsync_dir(self.dir)
        self._open_path, self._open_size = path, 0

    def _seal_locked(self) -> None:
        if self._fd < 0 or self._open_path is None:
            return
        os.close(self._fd)
        self._fd = -1
        sealed = self._open_path.with_suffix(".wal")
        os.replace(self._open_path, sealed)
        fsync_dir(self.dir)
        self._open_path, self._open_size = None, 0

    # -- delivery --------------------------------------------------------------

    def seal(self) -> None:
        """Close the open segment (if it holds anything) so it can be delivered."""
        with self._file_lock:
            if self._open_size > 0:
                self._seal_locked()

    def sealed(self) -> list[Segment]:
        """Segments ready for delivery, oldest first. Only `.wal` files: the open
        segment is never delivered while records may still be appended to it."""
        paths = [p for p in self.dir.iterdir() if p.suffix == ".wal"]
        return [Segment(p) for p in sorted(paths, key=lambda p: p.name)]

    def remove(self, segment: Segment, events: int) -> None:
        size = segment.path.stat().st_size
        segment.path.unlink()
        fsync_dir(self.dir)
        with self._mutex:
            self.bytes -= size
            self.pending_events = max(0, self.pending_events - events)

    def quarantine(self, segment: Segment, reason: str) -> Path:
        """Move a segment that cannot be delivered out of the way, keeping its bytes,
        with its reason beside it (`<name>.reason`)."""
        bad = self.root / QUARANTINE
        bad.mkdir(parents=True, exist_ok=True)
        target = bad / segment.path.name
        size = segment.path.stat().st_size
        write_durably(target.with_name(target.name + REASON_SUFFIX), reason.encode())
        os.replace(segment.path, target)
        fsync_dir(bad)
        with self._mutex:
            self.bytes -= size
        return target

    def set_aside(self, name: str, ndjson: bytes, reason: str) -> Path:
        """Keep rows that cannot be delivered (one partition of a segment) in the
        quarantine as a one-record segment `<name>.wal`, with `<name>.wal.reason`."""
        bad = self.root / QUARANTINE
        bad.mkdir(parents=True, exist_ok=True)
        target = bad / f"{name}.wal"
        write_durably(target.with_name(target.name + REASON_SUFFIX), reason.encode())
        write_durably(target, frame(ndjson))
        return target

    def adopt_orphans(self) -> int:
        """Take over the segments of `worker-N` directories no running process holds
        (a worker that is gone because fewer workers run now), so their events are
        delivered too. Returns the number of segments taken."""
        taken = 0
        for directory in sorted(self.root.glob("worker-*")):
            if directory == self.dir or not directory.is_dir():
                continue
            try:
                fd = _try_claim(directory)
            except OSError:
                continue
            if fd is None:
                continue  # a live worker's: it delivers its own
            try:
                _seal_leftovers(directory)
                for path in sorted(directory.glob("*.wal")):
                    target = self.dir / path.name  # segment ids are unique: no clash
                    events, size = count_events(path), path.stat().st_size
                    os.replace(path, target)
                    with self._mutex:
                        self.bytes += size
                        self.pending_events += events
                    taken += 1
                if taken:
                    fsync_dir(self.dir)
                    fsync_dir(directory)
            finally:
                os.close(fd)
        return taken

    def _segment_paths(self) -> Iterator[Path]:
        for path in self.dir.iterdir():
            if path.suffix in (".wal", ".open"):
                yield path

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join(timeout=30)
        with self._file_lock:
            self._seal_locked()
        os.close(self._lock_fd)


Waiter = Future[None] | asyncio.Future[None]
W = TypeVar("W", Future[None], asyncio.Future[None])


def _settle(waiters: list[Waiter], error: BaseException | None) -> None:
    """Resolve a written group's futures from the writer thread: thread futures
    directly, an event loop's all in one callback on that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiter in waiters:
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append(waiter)
        elif not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, futures, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle_on_loop(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # cancelled: the request timed out or its client left
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def count_events(path: Path) -> int:
    """Events in a segment: each record is NDJSON, one row per line."""
    try:
        records, _ = read_records(path)
    except OSError:
        return 0
    return sum(record.count(b"\n") + 1 for record in records if record)


def _seal_leftovers(directory: Path) -> None:
    for leftover in directory.glob("*.open"):
        os.replace(leftover, leftover.with_suffix(".wal"))
    fsync_dir(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]



def _claim(root: Path) -> tuple[Path, int]:
    """Lock the first free `worker-N` directory under root."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1024):
        directory = root / f"worker-{n}"
        directory.mkdir(exist_ok=True)
        fd = _try_claim(directory)
        if fd is not None:
            return directory, fd
    raise OSError(f"no free spool directory under {root}")


def _try_claim(directory: Path) -> int | None:
    """The descriptor holding `directory`'s exclusive flock (held while the process
    lives, released by the kernel when it dies), or None if a live process has it."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
