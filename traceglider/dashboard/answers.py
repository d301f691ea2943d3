"""Dashboard answers kept ready: served at once, computed again in the background.

A panel of the dashboard is answered from the last computation of the same request
while that is at most `max_stale` seconds old (the response says how old in its `Age`
header and the page shows it), and a background thread computes again every request
someone looked at in the last `WATCH_SECONDS`, at most every `refresh` seconds and
at most a quarter of the time (on a 2-core box the collector comes first); the
prepared ones (below) also when nobody looks, often enough never to be `max_stale`. A
request not seen before, or one whose answer is older than `max_stale`, is computed
while the browser waits, as without this module. `prepare` computes a list of requests
ahead of anyone asking: the dashboard's default view of each site, when `serve` starts.

Why: at 10 million events a cold computation of every panel takes seconds, and with
events arriving all the time the files change every few seconds, so an exact cache
of answers would almost never be hit. A dashboard that is 30 seconds behind and
opens at once is what people watching their site want; the Stats API stays exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from traceglider.dates import utc_day
from traceglider.errors import Unavailable

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.engine import Engine
    from traceglider.storage.base import Storage

log = logging.getLogger("traceglider.dashboard")

WATCH_SECONDS = 600.0  # requests looked at within this long are kept fresh
MAX_ENTRIES = 512
BUSY_SHARE = 3  # the refresher waits at least this many times as long as it worked

Key = tuple[str, tuple[tuple[str, str], ...], str]


@dataclass
class _Entry:
    answer: Any
    computed: float  # clock() when computed
    seen: float  # clock() when last requested
    pinned: bool = False  # prepared: kept no older than max_stale even when nobody looks


class Answers:
    def __init__(self, compute: Callable[[str, dict[str, str]], Any], *, refresh: float,
                 max_stale: float | None = None, clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], str] = lambda: utc_day(time.time())) -> None:
        self.compute = compute
        self.refresh = refresh
        # long enough for a refresh round at 10 million events, short enough to notice
        self.max_stale = max_stale if max_stale is not None else max(10 * refresh, 300.0)
        self.clock = clock
        self.today = today  # rolling periods ("30d") move at midnight: part of the key
        self.computed = 0  # computations run while a browser waited (for tests and logs)
        self.last_round = 0.0
        self._prepared: list[tuple[str, dict[str, str]]] = []
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def key(self, kind: str, params: dict[str, str]) -> Key:
        return kind, tuple(sorted(params.items())), self.today()

    def get(self, kind: str, params: dict[str, str]) -> tuple[Any, float]:
        """(answer, its age in seconds). Errors of a computation are raised, not kept."""
        key = self.key(kind, params)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.computed <= self.max_stale:
                entry.seen = now
                self._entries.move_to_end(key)
                return entry.answer, now - entry.computed
        self._ensure_thread()
        answer = self.compute(kind, dict(params))
        self._store(key, answer, now)
        with self._lock:
            self.computed += 1
        return answer, 0.0

    def status(self) -> dict[str, Any]:
        """For /healthz: answers ready, prepared ones still pending, the last round's time."""
        with self._lock:
            ready = sum(1 for e in self._entries.values() if e.answer is not None)
            return {"ready": ready, "pending": len(self._entries) - ready,
                    "last_round_seconds": round(self.last_round, 3)}

    def prepare(self, requests: Iterable[tuple[str, dict[str, str]]]) -> None:
        """Compute these now, in the background, as if someone had just asked."""
        with self._lock:
            self._prepared += [(kind, dict(params)) for kind, params in requests]
            self._pin_prepared(self.clock())
        self._ensure_thread()
        self._wake.set()

    def _pin_prepared(self, now: float) -> None:
        """Placeholders for today's keys of the prepared requests (lock held)."""
        for kind, params in self._prepared:
            key = self.key(kind, params)
            if key not in self._entries:
                self._entries[key] = _Entry(None, float("-inf"), now, pinned=True)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:  # a thread being started now (`prepare` racing) is started by then
            thread = self._thread
        if thread is not None:
            thread.join(timeout=2)  # a daemon: a query in flight ends with the process

    # -- the refresher ------------------------------------------------------------
    def _store(self, key: Key, answer: Any, computed: float) -> None:
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.computed > computed:
                return  # a newer answer got there first
            self._entries[key] = _Entry(answer, computed, max(old.seen if old else computed, computed),
                                        pinned=bool(old and old.pinned))
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None and self.refresh > 0 and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="tg-dashboard-refresh", daemon=True)
                self._thread.start()

    def _due(self) -> list[Key]:
        now = self.clock()
        today = self.today()
        with self._lock:
            for key in [k for k in self._entries if k[2] != today]:
                del self._entries[key]  # yesterday's rolling periods
            self._pin_prepared(now)  # and today's default views
            return [k for k, e in self._entries.items()
                    if now - e.computed >= (self.refresh if now - e.seen <= WATCH_SECONDS
                                            else self.max_stale / 2 if e.pinned else float("inf"))]

    def refresh_round(self) -> float:
        """Compute every due request again; the seconds it took."""
        started = self.clock()
        for key in self._due():
            if self._stop.is_set():
                break
            kind, params, _ = key
            at = self.clock()
            try:
                answer = self.compute(kind, dict(params))
            except Exception as exc:  # noqa: BLE001 - keep the last answer; a browser asking gets the error
                if isinstance(exc, Unavailable):  # files replaced under the read (a compaction): expected, and
                    # handled by the next round, so one line without a traceback
                    log.info("refreshing the dashboard's %s: %s; keeping the last answer", kind, exc.message)
                else:
                    log.warning("refreshing the dashboard's %s failed", kind, exc_info=True)
                with self._lock:
                    entry = self._entries.get(key)
                    if entry is not None and entry.answer is None:
                        del self._entries[key]  # never computed: the next request computes it
                continue
            self._store(key, answer, at)
        worked = self.clock() - started
        if worked > 0.001:
            self.last_round = worked
        return worked

    def _run(self) -> None:
        while not self._stop.is_set():
            worked = self.refresh_round()
            self._wake.wait(max(self.refresh, BUSY_SHARE * worked))
            self._wake.clear()


PREPARED_SITES = 3


def build_answers(settings: Settings, get_engine: Callable[[], Engine],
                  clock: Callable[[], float] = time.time) -> Answers | None:
    """The answers of an app's dashboard (`app.create_app` owns and closes them), or None
    with TG_DASHBOARD_REFRESH=0 or on Lambda. `clock` (wall time, the app's) dates
    the rolling periods and measures the answers' ages."""
    refresh = settings.dashboard_refresh
    if refresh <= 0 or settings.mode != "server":
        return None  # on Lambda a process is frozen between calls: no background thread
    from traceglider.stats.api import handle

    return Answers(lambda kind, params: handle(kind, get_engine(), params), refresh=refresh,
                   clock=clock, today=lambda: utc_day(clock()))


def prepare_dashboards(settings: Settings, storage: Storage, answers: Answers,
                       get_engine: Callable[[], Engine]) -> list[str]:
    """Queue the default view of up to PREPARED_SITES sites; the sites prepared."""
    from datetime import date

    from traceglider.dashboard.panels import default_requests
    from traceglider.stats.service import site_config

    sites = list(settings.sites) or sites_in(storage)
    engine = get_engine()
    today = date.fromisoformat(answers.today())
    for site in sites[:PREPARED_SITES]:
        answers.prepare(default_requests(site, lambda s: site_config(engine, s), today))
    return sites[:PREPARED_SITES]


def sites_in(storage: Any) -> list[str]:
    """Sites with events in storage, from the partition names."""
    found = set()
    for info in storage.list("events/site="):
        found.add(info.key.split("/")[1].removeprefix("site="))
    return sorted(found)
