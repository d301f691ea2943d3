"""Deliver sealed spool segments to storage as Parquet, and keep an honest view of
whether storage is reachable.

A segment becomes `<segment-id>.parquet` in each partition it touches, written with
`if_absent`, so a delivery retried after a crash or an outage never makes a second
copy. A segment is deleted only after all its partitions are written.

One partition that can never be written (its name cannot be a key, or the backend
refuses the name itself) is set aside in the spool's quarantine with its reason and
counted on /healthz; the rest of the segment, and every later segment, is delivered.
Only a storage error that may pass (unreachable, full, refused) is retried.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa

from traceglider.errors import StorageError
from traceglider.spool.wal import Segment, Spool, read_records
from traceglider.storage.base import Storage
from traceglider.storage.keys import InvalidKey
from traceglider.storage.layout import object_key
from traceglider.storage.parquet import ndjson_to_table, table_to_bytes, to_file_table, wire_partitions

log = logging.getLogger("traceglider.flusher")

HEALTH_INTERVAL_OK = 2.0
HEALTH_INTERVAL_FAILING = 1.0
MAX_BACKOFF = 30.0
# How much lower than the event loop's the delivery thread's CPU priority is (a nice
# increment, Linux: per thread). Delivering a row costs about 9 us of CPU (NDJSON to
# Arrow 6, Parquet 1.5): a third of the server's CPU per request, taken from the event
# loop's core whenever the cores are busy. Delivery can wait, the spool holds it; the
# answers should not. With 10 it still gets about a tenth of a contended core and all
# of an idle one.
DELIVERY_NICENESS = 10
# records -> (the records as they are to be stored, the rows dropped by reason)
Completion = Callable[[list[bytes]], "tuple[list[bytes], Counter[tuple[str, str]]]"]


class Flusher:
    def __init__(
        self,
        spool: Spool,
        storage: Storage,
        flush_seconds: float,
        flush_events: int,
        monotonic: Callable[[], float] = time.monotonic,
        complete: Completion | None = None,
        count_drops: Callable[[Counter[tuple[str, str]]], None] | None = None,
    ) -> None:
        # `complete` finishes rows the request path left for later and says which it
        # dropped (traceglider.ingest.later); `count_drops` counts those once their
        # segment is delivered (a retried delivery must not count them twice).
        self.complete = complete
        self.count_drops = count_drops
        self.spool = spool
        self.storage = storage
        self.flush_seconds = flush_seconds
        self.flush_events = flush_events
        self.monotonic = monotonic
        self.storage_ok: bool | None = None  # None: not yet proven reachable
        self.last_error: str | None = None
        self.delivered_events = 0
        self.delivered_segments = 0
        self.damaged_records = 0
        self.quarantined = 0
        self.quarantined_partitions = 0
        self.quarantined_events = 0
        self.quarantine_reasons: Counter[str] = Counter()
        self.failures = 0
        self.last_delivery: float | None = None
        self._delivering = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._deliver_loop, "tg-flusher"), (self._health_loop, "tg-health")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        if self.spool.pending_events >= self.flush_events:
            self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        """Deliver what can be delivered now, then stop; the rest stays in the spool."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    # -- loops -------------------------------------------------------------------

    def _health_loop(self) -> None:
        while not self._stop.is_set():
            self.check_health()
            interval = HEALTH_INTERVAL_OK if self.storage_ok else HEALTH_INTERVAL_FAILING
            self._stop.wait(interval)

    @property
    def running(self) -> bool:
        """Both threads are alive (they are started once and never end but at stop)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def check_health(self) -> bool:
        try:
            self.storage.health()
        except StorageError as exc:
            self._failed(exc)
            return False
        if not self.storage_ok:
            log.info("storage is reachable: %s", self.storage.url)
            self._wake.set()  # deliver what waited for it
        self.storage_ok, self.last_error = True, None
        return True

    def _failed(self, exc: Exception) -> None:
        if self.storage_ok is not False:
            log.warning("storage is unreachable, events stay in the spool: %s", exc)
        self.storage_ok, self.last_error = False, str(exc)

    def _deliver_loop(self) -> None:
        lower_thread_priority(DELIVERY_NICENESS)
        last_flush = self.monotonic()
        backoff = 0.0
        while True:
            stopping = self._stop.is_set()
            timeout = max(0.0, backoff or (last_flush + self.flush_seconds - self.monotonic()))
            if not stopping:
                self._wake.wait(timeout)
                self._wake.clear()
                stopping = self._stop.is_set()
            due = (
                stopping
                or self.spool.pending_events >= self.flush_events
                or self.monotonic() - last_flush >= self.flush_seconds
                or backoff > 0
            )
            if due:
                last_flush = self.monotonic()
                try:
                    delivered = self.flush_once()
                except Exception as exc:  # the loop must outlive any one failure
                    log.exception("delivery failed; retrying with backoff")
                    self.last_error, delivered = f"delivery failed: {exc}", False
                if delivered:
                    backoff = 0.0
                else:
                    self.failures += 1
                    backoff = min(MAX_BACKOFF, max(0.5, backoff * 2))
            if stopping:
                return

    # -- delivery ----------------------------------------------------------------

    def flush_once(self) -> bool:
        """Seal the open segment and deliver every sealed one. False if storage failed.
        Safe to call from any thread: deliveries never overlap."""
        with self._delivering:
            self.spool.seal()
            self.spool.adopt_orphans()
            for segment in self.spool.sealed():
                try:
                    self.deliver(segment)
                except StorageError as exc:
                    self._failed(exc)
                    return False
            return True

    def deliver(self, segment: Segment) -> None:
        records, damaged = read_records(segment.path)
        drops: Counter[tuple[str, str]] = Counter()  # (step, reason) -> rows
        if self.complete is not None:
            records, drops = self.complete(records)
        table, unreadable = _parse(records)
        damaged += unreadable
        if damaged:
            self.damaged_records += damaged
            log.warning("segment %s: skipped %d damaged record(s)", segment.id, damaged)
        rows = 0
        try:
            if table is not None:
                rows = table.num_rows
                for index, (site, date, part) in enumerate(wire_partitions(table)):
                    self._write_partition(segment, index, site, date, part)
        except StorageError:
            raise
        except Exception as exc:
            # Not a storage problem: this segment's content cannot be written. Keep
            # its bytes aside for a person to look at instead of retrying forever.
            target = self.spool.quarantine(segment, f"{type(exc).__name__}: {exc}")
            self.quarantined += 1
            self.quarantine_reasons["segment"] += 1
            log.exception("segment %s cannot be delivered; moved to %s", segment.id, target)
            return
        self.spool.remove(segment, rows + sum(drops.values()))
        if drops and self.count_drops is not None:
            self.count_drops(drops)
        self.storage_ok, self.last_error = True, None
        self.delivered_events += rows
        self.delivered_segments += 1
        self.last_delivery = time.time()

    def _write_partition(self, segment: Segment, index: int, site: str, date: str,
                         part: pa.Table) -> None:
        try:
            key = object_key(site, date, segment.id)
            self.storage.put(key, table_to_bytes(to_file_table(part)), if_absent=True)
            return
        except InvalidKey as exc:
            reason, why = "invalid_key", str(exc)
        except StorageError as exc:
            if not _refuses_the_name(exc):
                raise  # may pass: the whole segment waits and is tried again
            reason, why = "name_refused", str(exc)
        target = self.spool.set_aside(f"{segment.id}.p{index}", _ndjson(part), why)
        self.quarantined_partitions += 1
        self.quarantined_events += part.num_rows
        self.quarantine_reasons[reason] += 1
        log.error("segment %s: %d event(s) of one partition set aside in %s: %s",
                  segment.id, part.num_rows, target, why)

    def status(self) -> dict[str, Any]:
        return {
            "storage": self.storage.url,
            "storage_ok": self.storage_ok,  # null until storage is first reached
            "delivery_running": self.running,
            "storage_error": self.last_error,
            "spool_bytes": self.spool.bytes,
            "spool_max_bytes": self.spool.max_bytes,
            "spool_fsync_ms": self.spool.fsync_ms(),
            "spool_segments": len(self.spool.sealed()),
            "pending_events": self.spool.pending_events,
            "delivered_events": self.delivered_events,
            "damaged_records": self.damaged_records,
            "quarantined_segments": self.quarantined,
            "quarantined_partitions": self.quarantined_partitions,
            "quarantined_events": self.quarantined_events,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "last_delivery": self.last_delivery,
        }


def lower_thread_priority(increment: int) -> bool:
    """Lower the calling thread's CPU priority by `increment` (Linux applies a
    thread id's niceness to that thread alone). False where that cannot be done."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + increment)
    except (OSError, AttributeError):
        return False
    return True


def _parse(records: list[bytes]) -> tuple[pa.Table | None, int]:
    """The rows of a segment's records (each record is NDJSON rows), and how many
    records could not be read. Joined, a whole segment parses in one call; only if
    that fails is each record tried alone, so one bad record costs only itself."""
    if not records:
        return None, 0
    try:
        return ndjson_to_table(b"\n".join(records)), 0
    except pa.ArrowInvalid:
        tables, bad = [], 0
        for record in records:
            try:
                tables.append(ndjson_to_table(record))
            except pa.ArrowInvalid:
                bad += 1
        return (pa.concat_tables(tables) if tables else None), bad


def _refuses_the_name(exc: StorageError) -> bool:
    """A backend error about the key itself, which no retry can fix."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENAMETOOLONG, errno.EILSEQ)


def _ndjson(table: pa.Table) -> bytes:
    """Wire-shaped rows as the spool's own NDJSON, so a quarantined partition can be
    read (and erased from) like any segment."""
    return b"\n".join(orjson.dumps(row) for row in table.to_pylist())
