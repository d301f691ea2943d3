"""Scheduled maintenance: compact yesterday's and today's partitions, apply retention,
and delete the cookieless salts of past days.

The Lambda schedule runs it (`aws.compact_handler`); `serve` runs it itself every
`TG_COMPACT_SECONDS` in a background thread (`Maintainer`), so a site owner who only
starts the container gets compacted days (the dashboard reads them several times
faster) and, when `TG_RETENTION_DAYS` is set, retention, without a cron job. Every worker of a server has a Maintainer:
they take turns through the storage's maintenance lock, and one that finds it held
(another worker, or a `traceglider compact` from cron) skips its turn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from traceglider.storage.base import Storage

log = logging.getLogger("traceglider.maintenance")

FIRST_RUN_SECONDS = 300.0  # after start: not in the way of a worker warming up


def run_maintenance(storage: Storage, retention_days: int | None, *, dates: list[str] | None = None,
                    site: str | None = None, wait: float | None = None, today: dt.date | None = None,
                    stop: Callable[[], bool] | None = None,
                    salts: Storage | None = None) -> dict[str, Any]:
    """Compact `dates` (default yesterday and today, UTC; a date's untouched days before
    it first), delete partitions older than `retention_days` (None: none) and purge old
    salts, all under one hold of the maintenance lock; a JSON-friendly summary.
    `wait`: seconds to wait for the lock (default the lock's own), then `LockBusy`;
    `stop()` true: end after the partition in hand."""
    from traceglider.delivered import convert_delivered
    from traceglider.storage.compact import compact
    from traceglider.storage.lock import WAIT_SECONDS, maintenance
    from traceglider.storage.retention import apply_retention
    from traceglider.storage.salts import purge_legacy_salts, purge_old_salts

    today = today or dt.datetime.now(dt.UTC).date()
    dates = dates or [(today - dt.timedelta(days=1)).isoformat(), today.isoformat()]
    for date in dates:
        dt.date.fromisoformat(date)  # a bad date fails here, before any rewrite
    if retention_days is not None and retention_days <= 0:
        raise ValueError(f"retention days must be greater than 0 (got {retention_days!r})")
    stopping = stop or (lambda: False)
    compacted: dict[str, Any] = {}
    removed = 0
    with maintenance(storage, "maintenance", WAIT_SECONDS if wait is None else wait) as lock:
        # What a Firehose stream delivered becomes raw partition files first, and the
        # days it touched are compacted too (traceglider.delivered).
        delivered = convert_delivered(storage, stop=stopping, renew=lock.renew)
        dates = sorted({*dates, *(day for _, day in delivered.partitions)})
        for date in dates:
            compacted[date] = plain(compact(storage, site=site, date=date, stop=stopping))
        if retention_days is not None and not stopping():
            now = dt.datetime.combine(today, dt.time(12), dt.UTC)
            removed = apply_retention(storage, retention_days, now=now)
    # The collector deletes old salts on the first event of a day; this covers days
    # without traffic (in `salts`, the salt storage), so no salt outlives its day by
    # more than one round, and deletes what older versions kept beside the data.
    purged = purge_legacy_salts(storage)
    if salts is not None:
        purged += purge_old_salts(salts, today.isoformat())
    return {"compacted": compacted, "retention_days": retention_days, "removed_files": removed,
            "purged_salts": len(purged), "delivered": plain(delivered)}


def plain(value: Any) -> Any:
    """A JSON-friendly form of what the storage functions return."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return str(value)


class Maintainer:
    """Runs `run_maintenance` every `interval` seconds in a daemon thread, the first time
    after min(interval, FIRST_RUN_SECONDS). A round never waits for the lock: when
    another job holds it, that job is doing the work. The times vary by up to a tenth
    at random, so that the workers of one server do not all try in the same instant."""

    def __init__(self, storage: Storage, retention_days: int | None, interval: float,
                 first_run: float | None = None, clock: Callable[[], float] = time.time,
                 salts: Storage | None = None) -> None:
        self.storage, self.retention_days, self.interval = storage, retention_days, interval
        self.salts = salts
        self.first_run = min(interval, FIRST_RUN_SECONDS) if first_run is None else first_run
        self.clock = clock
        self.rounds = 0
        self.skipped = 0
        self.last: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tg-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the round in progress after its current partition, and wait for it (and
        the lock's release) up to `timeout`. A round cut short by the process ending is
        finished by the next one: compaction is safe to kill at any moment, and the lock
        of a process that is gone is taken over."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.first_run
        while not self._stop.wait(delay * random.uniform(0.9, 1.1)):
            self.run_once()
            delay = self.interval

    def run_once(self) -> dict[str, Any]:
        from traceglider.storage.lock import LockBusy

        started = self.clock()
        try:
            summary = run_maintenance(self.storage, self.retention_days, wait=0, stop=self._stop.is_set,
                                      salts=self.salts, today=dt.datetime.fromtimestamp(started, dt.UTC).date())
        except LockBusy as exc:
            self.skipped += 1
            log.info("maintenance skipped: %s", exc)
            return {}
        except Exception as exc:  # noqa: BLE001 - a failed round is retried at the next one
            log.warning("maintenance failed; retrying in %.0f s", self.interval, exc_info=True)
            self.last = {"at": _iso(started), "error": str(exc)}
            return {}
        self.rounds += 1
        files = sum(r["files_before"] - r["files_after"] for day in summary["compacted"].values() for r in day)
        self.last = {"at": _iso(started), "seconds": round(self.clock() - started, 3),
                     "partitions_compacted": sum(len(day) for day in summary["compacted"].values()),
                     "files_merged_away": files, "removed_files": summary["removed_files"]}
        if files or summary["removed_files"]:
            log.info("maintenance done: %s", self.last)
        return summary

    def status(self) -> dict[str, Any]:
        """For /healthz."""
        return {"every_seconds": self.interval, "rounds": self.rounds, "skipped": self.skipped,
                "last": self.last or None}


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
