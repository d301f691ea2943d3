"""Compaction: merge a partition's small files into few, dropping duplicate event ids.

Safe to kill at any moment: the merged file is written (under a name derived from
its inputs) before any input is deleted, and readers count each event_id once, so a
half-done run shows every event exactly once and a rerun finishes the job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from traceglider.storage.base import Storage
from traceglider.storage.parquet import (
    dedupe,
    list_partitions,
    object_key,
    read_table,
    table_to_bytes,
)

ROWS_PER_FILE = 2_000_000


@dataclass
class CompactionResult:
    site: str
    date: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int


def compact_partition(storage: Storage, site: str, date: str, keys: list[str]) -> CompactionResult:
    tables = [read_table(storage, key) for key in keys]
    merged = pa.concat_tables(tables) if tables else pa.table({})
    rows_before = merged.num_rows
    merged = dedupe(merged)
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("received_at", "ascending")]))
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]
    written = []
    for part, start in enumerate(range(0, max(merged.num_rows, 1), ROWS_PER_FILE)):
        chunk = merged.slice(start, ROWS_PER_FILE)
        key = object_key(site, date, f"c-{digest}-{part}")
        storage.put(key, table_to_bytes(chunk), if_absent=True)
        written.append(key)
    storage.delete([key for key in keys if key not in written])
    return CompactionResult(site, date, len(keys), len(written), rows_before, merged.num_rows)


def compact(
    storage: Storage,
    site: str | None = None,
    date: str | None = None,
    progress: Callable[[CompactionResult], None] | None = None,
    min_files: int = 2,
) -> list[CompactionResult]:
    """Compact every partition (or those of one site and/or date) with at least
    `min_files` files."""
    results = []
    for (part_site, part_date), keys in sorted(list_partitions(storage, site).items()):
        if date and part_date != date:
            continue
        if len(keys) < min_files:
            continue
        result = compact_partition(storage, part_site, part_date, keys)
        results.append(result)
        if progress:
            progress(result)
    return results
