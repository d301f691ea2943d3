"""Small builders shared by tests."""

from __future__ import annotations

import socket
import time
from typing import Any

import pyarrow.dataset as ds

from traceglider.storage.base import Storage
from traceglider.storage.parquet import list_partitions, read_table

DAY_US = 86_400_000_000
# A real browser's user agent: requests without one are dropped as bots.
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


def free_port() -> int:
    """A free TCP port on loopback (the only address tests use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MovableClock:
    """Wall time plus an offset a test moves forward (`advance`) instead of sleeping;
    given to `create_app` or the parts it builds, it is the time they all read."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def row(event_id: str, site: str = "example.com", when_us: int | None = None, **extra: Any) -> dict[str, Any]:
    """A stored row with the columns the pipeline would fill."""
    base: dict[str, Any] = {
        "event_id": event_id, "site": site, "type": "pageview", "name": "pageview",
        "received_at": when_us if when_us is not None else int(time.time() * 1_000_000),
        "url": f"https://{site}/p", "hostname": site, "path": "/p",
    }
    base.update(extra)
    return base


def wait_for(condition: Any, timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll `condition` until it is true or `timeout` passes; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def stored_ids(storage: Storage, site: str | None = None) -> list[str]:
    """Every event_id stored (duplicates included), read back through storage."""
    ids: list[str] = []
    for keys in list_partitions(storage, site).values():
        for key in keys:
            ids.extend(read_table(storage, key).column("event_id").to_pylist())
    return ids


def dataset_ids(root: str) -> list[str]:
    """Event ids as an outside reader sees the local dataset (Hive partitions)."""
    import glob

    if not glob.glob(root + "/events/site=*/date=*/*.parquet"):
        return []
    table = ds.dataset(root + "/events", format="parquet", partitioning="hive").to_table(
        columns=["event_id"])
    return table.column("event_id").to_pylist()


def batch(site: str, ids: list[str], **event: Any) -> dict[str, Any]:
    return {"site": site, "events": [
        {"id": i, "type": "pageview", "url": f"https://{site}/page/{i}", **event} for i in ids]}


def recent_step_us(now_us: int, steps: int, step_us: int = 60_000_000) -> int:
    """A spacing for `steps` rows placed before `now_us` that keeps them all on today's
    date: a minute, or less in the first minutes after UTC midnight (a test's "today"
    view would otherwise lose the rows that fell on yesterday)."""
    since_midnight = now_us % DAY_US
    return max(1, min(step_us, since_midnight // (steps + 1)))

