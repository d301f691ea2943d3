"""A function's answers kept by argument, that can be asked without computing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class Remembered(Generic[K, V]):
    """`compute(key)`, kept for the last `size` keys computed (the oldest go first),
    with `known(key)`: the answer if kept, else None, never computing it. That is
    what `functools.lru_cache` cannot say, and what lets the request path leave an
    unknown user agent to the flusher. Threads may share one: each dict operation is
    atomic, and two threads computing one key at once both get the same answer."""

    def __init__(self, compute: Callable[[K], V], size: int) -> None:
        self.compute = compute
        self.size = size
        self._values: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        found = self._values.get(key, _MISSING)
        if found is _MISSING:
            found = self._values[key] = self.compute(key)
            if len(self._values) > self.size:
                self._values.pop(next(iter(self._values)), None)
        return found  # type: ignore[return-value]

    def known(self, key: K) -> V | None:
        return self._values.get(key)
