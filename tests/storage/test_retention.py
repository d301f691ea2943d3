"""Retention deletes whole partitions older than N days and leaves no empty directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from traceglider import demo_data
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import list_partitions
from traceglider.storage.retention import apply_retention

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize("through_symlink", [False, True])
def test_retention_removes_the_date_directories_it_empties(tmp_path: Path, through_symlink: bool) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    storage = LocalStorage(tmp_path / ("link" if through_symlink else "disk") / "data")
    demo_data.generate(storage, "r.example", 2000, days=20, now=NOW.timestamp())
    before = list_partitions(storage)
    removed = apply_retention(storage, 10, now=NOW)
    after = list_partitions(storage)
    assert removed > 0 and 0 < len(after) < len(before)
    site_dir = tmp_path / "disk" / "data" / "events" / "site=r.example"
    assert sorted(p.name for p in site_dir.iterdir()) == sorted(f"date={d}" for _, d in after)
    assert not [p for p in site_dir.iterdir() if not any(p.iterdir())]
