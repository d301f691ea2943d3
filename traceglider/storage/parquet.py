"""Events to and from Hive-partitioned zstd Parquet: the dataset layout lives here.

Rows are plain dicts keyed by the columns of `traceglider.schema`, with
`received_at` in microseconds and `client_ts` in milliseconds since the epoch.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from traceglider.schema import FILE_SCHEMA
from traceglider.storage.base import Storage

EVENTS_PREFIX = "events/"
_PARTITION = re.compile(r"^events/site=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+\.parquet)$")
ROW_GROUP_SIZE = 256 * 1024


def partition_prefix(site: str, date: str) -> str:
    return f"{EVENTS_PREFIX}site={site}/date={date}/"


def object_key(site: str, date: str, name: str) -> str:
    return f"{partition_prefix(site, date)}{name}.parquet"


def parse_key(key: str) -> tuple[str, str, str] | None:
    """(site, date, file name) of an event object key, or None for other keys."""
    match = _PARTITION.match(key)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def utc_date(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%d")


def group_by_partition(rows: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["site"], utc_date(row["received_at"]))].append(row)
    return groups


def rows_to_table(rows: list[dict]) -> pa.Table:
    columns = {
        field.name: pa.array([row.get(field.name) for row in rows], type=_wire_type(field.type))
        for field in FILE_SCHEMA
    }
    return pa.table(columns).cast(FILE_SCHEMA)


def _wire_type(kind: pa.DataType) -> pa.DataType:
    # Timestamps arrive as integers; build them as int64 and cast to the unit.
    return pa.int64() if pa.types.is_timestamp(kind) else kind


def table_to_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table.cast(FILE_SCHEMA),
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_SIZE,
        use_dictionary=True,
        write_statistics=True,
    )
    return sink.getvalue()


def read_table(storage: Storage, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.get(key)), schema=FILE_SCHEMA)


def write_rows(storage: Storage, rows: list[dict], name: str) -> list[str]:
    """Write rows to their partitions as `<name>.parquet`, once: a retry with the same
    name keeps the object already there. Returns the keys written or found."""
    keys = []
    for (site, date), part in sorted(group_by_partition(rows).items()):
        key = object_key(site, date, name)
        storage.put(key, table_to_bytes(rows_to_table(part)), if_absent=True)
        keys.append(key)
    return keys


def dedupe(table: pa.Table) -> pa.Table:
    """Keep the first row of every event_id."""
    if table.num_rows == 0:
        return table
    indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    first = indexed.group_by("event_id", use_threads=False).aggregate([("__row", "min")])
    keep = pc.sort_indices(first.column("__row_min"))
    rows = pc.take(first.column("__row_min"), keep)
    return table.take(rows)


def list_partitions(storage: Storage, site: str | None = None) -> dict[tuple[str, str], list[str]]:
    """Every (site, date) partition with the keys of its Parquet objects."""
    prefix = EVENTS_PREFIX + (f"site={site}/" if site else "")
    partitions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for info in storage.list(prefix):
        parsed = parse_key(info.key)
        if parsed:
            partitions[(parsed[0], parsed[1])].append(info.key)
    return dict(partitions)
