"""`demo-data --events N` writes exactly N events, however N and the days fall."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import stored_ids
from traceglider import demo_data
from traceglider.cli import main
from traceglider.storage.local import LocalStorage

MIDNIGHT = 1_764_460_800.0  # 2025-11-30T00:00:00Z


@pytest.mark.parametrize(("events", "days"), [(1, 1), (7, 30), (100, 30), (1000, 7), (25_000, 30)])
def test_exactly_the_asked_number_of_events_is_written(tmp_path: Path, events: int, days: int) -> None:
    storage = LocalStorage(tmp_path)
    assert demo_data.generate(storage, "d.example", events, days=days, now=MIDNIGHT + 15 * 3600) == events
    ids = stored_ids(storage)
    assert len(ids) == len(set(ids)) == events


def test_a_day_that_has_barely_begun_passes_its_events_to_the_day_before(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert demo_data.generate(storage, "d.example", 500, days=2, now=MIDNIGHT + 90) == 500
    assert len(stored_ids(storage)) == 500


def test_the_command_writes_the_events_it_is_asked_for_into_a_new_nested_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "srv" / "analytics" / "tg-data"
    assert main(["demo-data", "--storage", str(root), "--site", "d.example", "--events", "100", "--days", "3"]) == 0
    assert len(stored_ids(LocalStorage(root))) == 100
    assert "wrote 100 events" in capsys.readouterr().out


def test_the_command_leaves_the_store_as_a_collector_and_its_maintenance_would(tmp_path: Path) -> None:
    import time

    from traceglider.storage.compact import list_visits
    from traceglider.storage.layout import compacted_group
    from traceglider.storage.parquet import list_partitions

    assert main(["demo-data", "--storage", str(tmp_path), "--site", "d.example", "--events", "2000",
                 "--days", "4"]) == 0
    storage = LocalStorage(tmp_path)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    parts, visits = list_partitions(storage), list_visits(storage)
    for (site, day), keys in parts.items():
        if day < today:  # compacted, with its visits
            assert compacted_group(keys) is not None and visits.get((site, day)), day
        else:  # today's files as the collector wrote them
            assert compacted_group(keys) is None
