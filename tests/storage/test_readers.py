"""Every file has one schema, so the readers users bring read a mixed store (the
collector's files, compacted files, Lambda batch files, demo data) on their defaults:
the same rows, and the same column types as a single file of the full schema."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.helpers import row
from traceglider import demo_data
from traceglider.schema import DATE_TYPE, STORED_SCHEMA
from traceglider.sinks import DirectSink
from traceglider.storage.compact import compact_partition
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import list_partitions, ndjson_to_table, write_table

SITE = "mixed.example"
NOW = 1_764_244_800.0  # 2025-11-27 12:00 UTC
# What the documentation tells pyarrow and pandas users to pass (docs/storage.md).
PARTITIONING = ds.partitioning(pa.schema([("site", pa.string()), ("date", DATE_TYPE)]), flavor="hive")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    storage = LocalStorage(root)
    demo_data.generate(storage, SITE, 900, days=3, now=NOW)
    # the last day compacted: a reader that takes its schema from the first file it
    # finds then meets a collector's file first
    last = "2025-11-27"
    compact_partition(storage, SITE, last, list_partitions(storage)[(SITE, last)])
    when = int(NOW * 1_000_000)
    # the collector: a spool segment's NDJSON, delivered as the flusher does
    segment = b"\n".join(json.dumps(row(f"c{i}", site=SITE, when_us=when + i)).encode() for i in range(5))
    write_table(storage, ndjson_to_table(segment), "seg-1")
    # a Lambda collector writes each batch directly
    asyncio.run(DirectSink(storage).accept([row(f"l{i}", site=SITE, when_us=when + 10 + i) for i in range(4)]))
    names = [key.rsplit("/", 1)[1] for keys in list_partitions(storage).values() for key in keys]
    for kind in ("cv-", "seg-", "b-", "demo-"):
        assert any(name.startswith(kind) for name in names), kind
    return root / "events"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file of the full schema, holding one row of nulls: how each reader types it."""
    part = tmp_path_factory.mktemp("reference") / "events" / "site=r.example" / "date=2025-11-27"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{}], schema=STORED_SCHEMA), part / "r.parquet")
    return part.parents[1]


def _polars(root: Path) -> tuple[int, dict[str, Any]]:
    import polars as pl

    frame = pl.scan_parquet(root, hive_partitioning=True).collect()
    return frame.height, dict(frame.schema)


def _pandas(root: Path, **options: Any) -> tuple[int, dict[str, Any]]:
    import pandas as pd

    frame = pd.read_parquet(root, **options)
    return len(frame), {name: str(dtype) for name, dtype in frame.dtypes.items()}


def _pyarrow(root: Path, **options: Any) -> tuple[int, dict[str, Any]]:
    table = ds.dataset(root, partitioning=options.get("partitioning", "hive")).to_table()
    return table.num_rows, {f.name: f.type for f in table.schema}


def _duckdb(root: Path) -> tuple[int, dict[str, Any]]:
    import duckdb

    rel = duckdb.sql(f"SELECT * FROM read_parquet('{root}/*/*/*.parquet')")
    return rel.aggregate("count(*)").fetchone()[0], dict(zip(rel.columns, map(str, rel.types), strict=True))


READERS = {"polars": _polars, "pandas": _pandas, "pyarrow": _pyarrow, "duckdb": _duckdb}


@pytest.mark.parametrize("reader", READERS)
def test_a_mixed_store_reads_on_defaults_as_one_schema(mixed: Path, reference: Path, reader: str) -> None:
    rows, types = READERS[reader](mixed)
    _, expected = READERS[reader](reference)
    assert rows == _pyarrow(mixed)[0] > 900
    assert types == expected
    assert set(types) == {*STORED_SCHEMA.names, "site", "date"}


def test_spark_reads_a_mixed_store_on_defaults_as_one_schema(mixed: Path, reference: Path, spark: Any) -> None:
    frame = spark.read.parquet(str(mixed))
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    assert types == {f.name: f.dataType.simpleString() for f in spark.read.parquet(str(reference)).schema.fields}
    assert frame.count() == _pyarrow(mixed)[0]
    assert types["date"] == "date" and types["visit_id"] == "bigint"


def test_the_date_column_is_a_date_where_a_reader_infers_it(mixed: Path) -> None:
    assert str(_polars(mixed)[1]["date"]) == "Date"
    assert _duckdb(mixed)[1]["date"] == "DATE"
    # pyarrow and pandas infer only integers and strings from a path: told, they agree
    assert _pyarrow(mixed)[1]["date"] == pa.string()
    assert _pyarrow(mixed, partitioning=PARTITIONING)[1]["date"] == pa.date32()
    assert _pandas(mixed)[1]["date"] == "category"
    import pandas as pd

    dates = pd.read_parquet(mixed, partitioning=PARTITIONING)["date"]
    assert {type(d) for d in dates} == {dt.date} and dates.min() == dt.date(2025, 11, 25)


def test_every_writer_writes_every_column(mixed: Path) -> None:
    for path in mixed.rglob("*.parquet"):
        assert pq.read_schema(path).remove_metadata() == STORED_SCHEMA, path.name
