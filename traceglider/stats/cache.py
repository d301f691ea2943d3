"""Answers of stats queries, kept under a key naming the exact files they read.

New data, a compaction, an erasure: new file names or sizes, a new key, so no stale
answer is ever served; the oldest answers go first beyond `entries`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class ResultCache:
    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, list[tuple]] = OrderedDict()

    def get(self, key: str) -> list[tuple] | None:
        with self._lock:
            if key not in self._rows:
                return None
            self._rows.move_to_end(key)
            return list(self._rows[key])

    def put(self, key: str, rows: list[tuple]) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._rows[key] = list(rows)
            while len(self._rows) > self.entries:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
