"""A rate limit held in memory: a token bucket per client address and user agent.
A leaf, used by the collector's edge and by the dashboard's login."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from traceglider.errors import TooManyRequests


class RateLimiter:
    """A token bucket per client address and user agent, held in memory only.

    Keyed by both, so that visitors who share an address (an office, a mobile
    carrier's NAT, a proxy that is not trusted) are counted apart by their browsers;
    with a minute's worth as the burst, a limit far above what a tracker sends (a
    batch every few seconds at most) only ever stops a loop or a flood. A refusal is a
    429 whose Retry-After says when a token is back."""

    MAX_KEYS = 100_000

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, float(per_minute))
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None, user_agent: str = "") -> None:
        if self.rate <= 0 or address is None:
            return
        key = (address, user_agent)
        now = time.monotonic()
        with self._lock:
            # Least recently seen keys go first: clearing all at once would let
            # anyone rotating addresses reset everybody's limit.
            while len(self._buckets) >= self.MAX_KEYS:
                self._buckets.popitem(last=False)
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) / self.rate))
                raise TooManyRequests("too many requests from this address and browser; slow down",
                                      headers={"Retry-After": str(wait)})
            self._buckets[key] = (tokens - 1, now)

    def exhausted(self, address: str | None, user_agent: str = "") -> bool:
        """Whether `check` would refuse now, without spending a token (a login counts
        only its failures, yet refuses everything once they are used up)."""
        if self.rate <= 0 or address is None:
            return False
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get((address, user_agent), (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate) < 1

