"""A wire table splits into its (site, date) partitions, the same rows whichever way
the split is found (one partition, read off the extremes, or several, grouped)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.helpers import row
from traceglider.storage.parquet import rows_to_table, wire_partitions

DAY = 86_400_000_000
MIDNIGHT = 1_764_201_600 * 1_000_000  # 2025-11-27 00:00 UTC


def grouped(table: pa.Table) -> list[tuple[str, str, list[str]]]:
    return [(site, date, part.column("event_id").to_pylist()) for site, date, part in wire_partitions(table)]


@pytest.mark.parametrize(("rows", "expected"), [
    ([row("a", when_us=MIDNIGHT), row("b", when_us=MIDNIGHT + DAY - 1)],
     [("example.com", "2025-11-27", ["a", "b"])]),
    ([row("a", when_us=MIDNIGHT - 1), row("b", when_us=MIDNIGHT), row("c", when_us=MIDNIGHT - 5)],
     [("example.com", "2025-11-26", ["a", "c"]), ("example.com", "2025-11-27", ["b"])]),
    ([row("a", site="b.example", when_us=MIDNIGHT), row("b", site="a.example", when_us=MIDNIGHT + 1),
      row("c", site="b.example", when_us=MIDNIGHT + 2)],
     [("a.example", "2025-11-27", ["b"]), ("b.example", "2025-11-27", ["a", "c"])]),
    ([row("a", when_us=5)], [("example.com", "1970-01-01", ["a"])]),
    ([row("a", when_us=-1), row("b", when_us=-1)], [("example.com", "1969-12-31", ["a", "b"])]),
])
def test_rows_split_by_site_and_utc_day_in_their_order(rows, expected):
    assert grouped(rows_to_table(rows)) == expected


def test_a_single_partition_is_the_table_itself():
    table = rows_to_table([row("a", when_us=MIDNIGHT), row("b", when_us=MIDNIGHT + 7)])
    [(_, _, part)] = wire_partitions(table)
    assert part.equals(table)


def test_rows_without_a_site_cannot_be_partitioned():
    with pytest.raises(ValueError, match="without a site"):
        wire_partitions(rows_to_table([row("a", site=None)]))  # type: ignore[arg-type]
