"""The enrichment pipeline: an ordered list of named steps over one request's events.

Each step takes a row (a dict keyed by the stored columns) and the request it came
with, and returns the row (changed in place or replaced) or a `Drop` with a reason
(`DropReason`) and a detail. Drops are counted per reason and per step, with each
step's cumulative time, and shown on /healthz, never silent; the detail (which bot
rule matched, why a URL was refused) is logged at debug level, never stored.

A step whose answer depends on the request alone (bots, privacy, the user agent, the
country, the visitor) also carries `per_request`: the request in, the columns every
row gets (or a `Drop` for all of them) out. The pipeline then calls it once per
request instead of once per event; the result is the same, with a tenth of the calls
for a 10-event batch. Steps run one after the other over all rows (not row by row),
so a request-level step sees only the rows that earlier steps kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from traceglider.types import PipelineRow

log = logging.getLogger("traceglider.pipeline")

DropReason = Literal[
    "bot",  # a crawler, monitor, headless or automated browser
    "privacy",  # GPC or DNT with TG_GPC_POLICY=drop
    "consent",  # the site requires consent and none was given
    "excluded",  # a path or host the site excluded
    "invalid",  # a value that passed parsing but cannot be used (e.g. no host)
    "error",  # a step failed unexpectedly: a bug, logged with its traceback
]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)


@dataclass(frozen=True)
class Drop:
    reason: DropReason
    detail: str = ""  # for the debug log: which rule, never client data worth keeping

    def __post_init__(self) -> None:
        if self.reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {self.reason!r}")


@dataclass
class RequestInfo:
    """What the pipeline may know about the request. The client IP is only ever held
    here, in memory; no step may copy it into a row."""

    site: str
    ip: str | None
    user_agent: str
    headers: dict[str, str]  # lower-cased names
    cookies: dict[str, str]
    received_at: int  # microseconds since the epoch, UTC
    secure: bool  # the request came over HTTPS (directly or via a trusted proxy)
    ctx: dict[str, Any] = field(default_factory=dict)
    # The sink completes rows before it stores them (the spool's flusher): user-agent
    # work not cached yet may be left to it (`traceglider.ingest.later`).
    defer: bool = False
    # Steps leave instructions for the response here (for example a cookie to set).
    set_cookies: list[dict[str, Any]] = field(default_factory=list)
    # Steps may cache per-request work here (a parsed user agent, the visitor id).
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def gpc(self) -> bool:
        return self.headers.get("sec-gpc") == "1" or self.headers.get("dnt") == "1"


Step = Callable[[PipelineRow, RequestInfo], "PipelineRow | Drop"]
RequestStep = Callable[[RequestInfo], "PipelineRow | Drop"]


def per_request(step: Step, whole: RequestStep) -> Step:
    """Mark `step` as depending on the request alone; `whole` gives its columns."""
    step.per_request = whole  # type: ignore[attr-defined]
    return step


class Pipeline:
    def __init__(self, steps: list[tuple[str, Step]]) -> None:
        self.steps = steps
        self.step_drops: Counter[tuple[str, str]] = Counter()  # (step, reason) -> rows
        # Each step's seconds in all, by position: `run` adds to it once per request,
        # under the lock (a blocking request runs on a thread of its own).
        self._spent = [0.0] * len(steps)
        # What `run` and `blocking` look up of each step, once: a profile had those
        # getattr calls and the per-request bookkeeping at a third of `run`'s own time.
        wholes: list[RequestStep | None] = [getattr(step, "per_request", None) for _, step in steps]
        # Request-level steps in a row (bots, privacy, useragent, geo) read no row, so
        # their columns go into the rows once, after the last of them: the same rows,
        # a quarter of the dict updates (they were 6% of a request's time in-process).
        last_of_run = [whole is not None and (index + 1 == len(steps) or wholes[index + 1] is None)
                       for index, whole in enumerate(wholes)]
        self._plan = [(name, step, whole, last)
                      for (name, step), whole, last in zip(steps, wholes, last_of_run, strict=True)]
        self._checks = [check for _, step in steps if (check := getattr(step, "blocking", None)) is not None]
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    @property
    def step_seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(zip(self.names, self._spent, strict=True))

    def run(self, rows: list[PipelineRow], request: RequestInfo) -> list[PipelineRow]:
        drops: Counter[tuple[str, str]] | None = None
        clock = time.perf_counter
        # Request-level steps apply to rows of the request's site and time (all of a
        # /collect batch); rows of other sites (the Events API may mix) go row by row.
        site, received = request.site, request.received_at
        shared = all(row.get("site", site) == site and row.get("received_at", received) == received for row in rows)
        current = rows
        times = [clock()]  # one clock reading between steps (not two per step)
        pending: PipelineRow | None = None  # columns of request-level steps not yet in the rows
        for name, step, whole, last_of_run in self._plan:
            if not current:
                break
            if whole is not None and shared:
                try:
                    columns = whole(request)
                except Exception:
                    log.exception("pipeline step %s failed", name)
                    columns = Drop("error")
                if isinstance(columns, Drop):
                    _dropped(name, columns, len(current))
                    drops = drops or Counter()
                    drops[name, columns.reason] += len(current)
                    current, pending = [], None
                elif columns:
                    # Never changed in place: a step may hand out a cached dict.
                    pending = columns if pending is None else {**pending, **columns}  # type: ignore[typeddict-item]
                if last_of_run and pending:
                    for row in current:
                        row.update(pending)
                    pending = None
                times.append(clock())
                continue
            kept: list[PipelineRow] = []
            for row in current:
                try:
                    result = step(row, request)
                except Exception:
                    # A bug must not turn a client's request into a 500 or take the
                    # batch down with it; it is counted and logged (rows hold no IP).
                    log.exception("pipeline step %s failed", name)
                    result = Drop("error")
                if isinstance(result, Drop):
                    _dropped(name, result, 1)
                    drops = drops or Counter()
                    drops[name, result.reason] += 1
                else:
                    kept.append(result)
            current = kept
            times.append(clock())
        spent = self._spent
        with self._lock:
            # Steps ran in order from the first: the n-th interval is the n-th step's.
            for index in range(len(times) - 1):
                spent[index] += times[index + 1] - times[index]
            if drops:
                self.step_drops.update(drops)
        return current

    def blocking(self, request: RequestInfo) -> bool:
        """True when a step says this request will hold the CPU for a while (a costly
        derivation not cached yet); the route then runs the pipeline on a thread so the
        event loop keeps serving. A step opts in with a `blocking(request)` attribute."""
        return any(check(request) for check in self._checks)

    def warm_up(self) -> None:
        """Load what steps load lazily (databases, parsers) ahead of the first request.
        A step opts in with a `warm_up` attribute."""
        for _name, step in self.steps:
            warm = getattr(step, "warm_up", None)
            if warm is not None:
                warm()

    def count(self, drops: Counter[tuple[str, str]]) -> None:
        """Count drops by (step, reason) found after the pipeline ran: rows the flusher
        completed and dropped (`traceglider.ingest.later`), as if the step had."""
        with self._lock:
            self.step_drops.update(drops)

    def drop_counts(self) -> dict[str, int]:
        """Rows dropped by reason, over every step."""
        counts: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        with self._lock:
            for (_, reason), count in self.step_drops.items():
                if reason in counts:
                    counts[reason] += count
        return counts

    def step_status(self) -> dict[str, dict[str, Any]]:
        """For /healthz: per step, in order, the rows it dropped by reason and the
        seconds it has run in all (a slow step shows here, not only in a profile)."""
        with self._lock:
            return {name: {"seconds": round(spent, 6),
                           "dropped": {reason: count for (step, reason), count in sorted(self.step_drops.items())
                                       if step == name}}
                    for name, spent in zip(self.names, self._spent, strict=True)}


def _dropped(step: str, drop: Drop, rows: int) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("step %s dropped %d row(s): %s%s", step, rows, drop.reason,
                  f" ({drop.detail})" if drop.detail else "")
