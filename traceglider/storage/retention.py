"""Retention: delete whole partitions older than N days (by UTC date of receipt), of
the events and of the visits (dated by their start)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from traceglider.storage.base import Storage
from traceglider.storage.lock import maintenance
from traceglider.storage.parquet import list_partitions

DEFAULT_DAYS = 760  # 25 months


def expired_partitions(storage: Storage, days: int, now: datetime | None = None) -> dict[tuple[str, str], list[str]]:
    today = (now or datetime.now(UTC)).date()
    cutoff = (today - timedelta(days=days)).isoformat()
    from traceglider.storage.compact import list_visits

    expired: dict[tuple[str, str], list[str]] = {}
    for listing in (list_partitions(storage), list_visits(storage)):
        for part, keys in listing.items():
            if part[1] < cutoff:
                expired.setdefault(part, []).extend(keys)
    return expired


def apply_retention(
    storage: Storage,
    days: int,
    now: datetime | None = None,
    progress: Callable[[tuple[str, str], int], None] | None = None,
) -> int:
    """Delete partitions older than `days`; returns the number of files removed.
    Interrupting is harmless: a rerun deletes what is left."""
    removed = 0
    with maintenance(storage, "retention"):
        for part, keys in sorted(expired_partitions(storage, days, now).items()):
            storage.delete(keys)
            removed += len(keys)
            if progress:
                progress(part, len(keys))
    return removed
