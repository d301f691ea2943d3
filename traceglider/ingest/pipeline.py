"""The enrichment pipeline: an ordered list of named steps over one request's events.

Each step takes a row (a dict keyed by the stored columns) and the request it came
with, and returns the row (changed in place or replaced) or a `Drop` with a reason
from `DROP_REASONS`. Drops are counted per reason and shown on /healthz, never silent.

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("traceglider.pipeline")

DROP_REASONS = (
    "bot",  # a crawler, monitor, headless or automated browser
    "privacy",  # GPC or DNT with TG_GPC_POLICY=drop
    "consent",  # the site requires consent and none was given
    "excluded",  # a path or host the site excluded
    "invalid",  # a value that passed parsing but cannot be used (e.g. no host)
    "error",  # a step failed unexpectedly: a bug, logged with its traceback
)


@dataclass(frozen=True)
class Drop:
    reason: str
    detail: str = ""

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
    # Steps leave instructions for the response here (for example a cookie to set).
    set_cookies: list[dict[str, Any]] = field(default_factory=list)
    # Steps may cache per-request work here (a parsed user agent, the visitor id).
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def gpc(self) -> bool:
        return self.headers.get("sec-gpc") == "1" or self.headers.get("dnt") == "1"


Step = Callable[[dict[str, Any], RequestInfo], "dict[str, Any] | Drop"]
RequestStep = Callable[[RequestInfo], "dict[str, Any] | Drop"]


def per_request(step: Step, whole: RequestStep) -> Step:
    """Mark `step` as depending on the request alone; `whole` gives its columns."""
    step.per_request = whole  # type: ignore[attr-defined]
    return step


class Pipeline:
    def __init__(self, steps: list[tuple[str, Step]]) -> None:
        self.steps = steps
        self.drops: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    def run(self, rows: list[dict[str, Any]], request: RequestInfo) -> list[dict[str, Any]]:
        drops: Counter[str] = Counter()
        # Request-level steps apply to rows of the request's site and time (all of a
        # /collect batch); rows of other sites (the Events API may mix) go row by row.
        shared = all(row.get("site", request.site) == request.site
                     and row.get("received_at", request.received_at) == request.received_at for row in rows)
        current = rows
        for name, step in self.steps:
            if not current:
                break
            whole: RequestStep | None = getattr(step, "per_request", None) if shared else None
            if whole is not None:
                try:
                    columns = whole(request)
                except Exception:
                    log.exception("pipeline step %s failed", name)
                    columns = Drop("error")
                if isinstance(columns, Drop):
                    drops[columns.reason] += len(current)
                    current = []
                elif columns:
                    for row in current:
                        row.update(columns)
                continue
            kept: list[dict[str, Any]] = []
            for row in current:
                try:
                    result = step(row, request)
                except Exception:
                    # A bug must not turn a client's request into a 500 or take the
                    # batch down with it; it is counted and logged (rows hold no IP).
                    log.exception("pipeline step %s failed", name)
                    result = Drop("error")
                if isinstance(result, Drop):
                    drops[result.reason] += 1
                else:
                    kept.append(result)
            current = kept
        if drops:
            with self._lock:
                self.drops.update(drops)
        return current

    def blocking(self, request: RequestInfo) -> bool:
        """True when a step says this request will hold the CPU for a while (a costly
        derivation not cached yet); the route then runs the pipeline on a thread so the
        event loop keeps serving. A step opts in with a `blocking(request)` attribute."""
        for _name, step in self.steps:
            check = getattr(step, "blocking", None)
            if check is not None and check(request):
                return True
        return False

    def warm_up(self) -> None:
        """Load what steps load lazily (databases, parsers) ahead of the first request.
        A step opts in with a `warm_up` attribute."""
        for _name, step in self.steps:
            warm = getattr(step, "warm_up", None)
            if warm is not None:
                warm()

    def drop_counts(self) -> dict[str, int]:
        with self._lock:
            return {reason: self.drops.get(reason, 0) for reason in DROP_REASONS}
