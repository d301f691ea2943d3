"""Table definitions of the dataset for Athena (partition projection), DuckDB and Spark.

Every engine gets the same names: for each dataset in `DATASETS`, a table of every
row as stored (`traceglider_events`) and, where rows can repeat, a view with each
row once (`traceglider_events_unique`). Columns come from the dataset's Arrow schema,
so the DDL never drifts from the files; `site` (string) and `date` (a date) are the
partition columns, read from the Hive path.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from traceglider.errors import BadRequest
from traceglider.schema import STORED_SCHEMA, VISIT_SCHEMA

ENGINES = ("athena", "duckdb", "spark")
PARTITIONS = (("site", "string"), ("date", "date"))
DQ = '"'  # the identifier quote of Athena's views and of DuckDB


@dataclass(frozen=True)
class Dataset:
    """One Hive-partitioned tree of Parquet files: `<root>/<prefix>/site=S/date=D/`."""
    table: str
    prefix: str
    schema: pa.Schema
    # rows with the same key are copies (retries, interrupted compactions): the
    # `<table>_unique` view keeps the first by `order_by`; None: no such view
    unique_key: str | None = None
    order_by: str = ""

    @property
    def unique_view(self) -> str:
        return f"{self.table}_unique"

    @property
    def columns(self) -> list[str]:
        """The columns a query sees: the file's, then the partition columns."""
        return [*self.schema.names, *(name for name, _ in PARTITIONS)]


DATASETS: list[Dataset] = [
    Dataset("traceglider_events", "events", STORED_SCHEMA, unique_key="event_id", order_by="received_at"),
    # one row per visit, dated by its start, written by compaction (docs/storage.md)
    Dataset("traceglider_visits", "visits", VISIT_SCHEMA),
]
TABLE = DATASETS[0].table


def _hive_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float64(t):
        return "double"
    return "string"


def _root(location: str) -> str:
    if location.startswith("s3://"):
        return location.rstrip("/")
    return str(Path(location.removeprefix("file://")).absolute())


def ddl(engine: str, location: str) -> str:
    """The statements that define every dataset at `location` (a local path or
    s3://bucket/prefix) for `engine`."""
    if engine not in ENGINES:
        raise BadRequest(f"engine must be one of {', '.join(ENGINES)}")
    root = _root(location)
    if engine == "athena" and not root.startswith("s3://"):
        raise BadRequest(f"Athena reads S3, and the storage is {root}: give the bucket the files are in "
                         "with --location s3://bucket/prefix")
    build = {"athena": athena_ddl, "duckdb": duckdb_ddl, "spark": spark_ddl}[engine]
    return "".join(build(root, dataset) for dataset in DATASETS)


def _unique_select(dataset: Dataset, quote: str, source: str) -> str:
    """The first row of each key, with the dataset's columns only (no helper column).
    The key is partitioned by site and date too, so that a query's filters on them
    reach the table below the window (Athena needs `site` there for its projection)."""
    def q(name: str) -> str:
        return f"{quote}{name}{quote}"

    cols = textwrap.fill(", ".join(q(c) for c in dataset.columns), 100, subsequent_indent="  ",
                         break_long_words=False, break_on_hyphens=False)
    key = ", ".join(q(c) for c in ("site", "date", dataset.unique_key or ""))
    return (f"SELECT {cols} FROM (\n"
            f"  SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {q(dataset.order_by)}) AS {q('rn')}\n"
            f"  FROM {source})\nWHERE {q('rn')} = 1")


def athena_ddl(root: str, dataset: Dataset = DATASETS[0]) -> str:
    # Athena: backticks in DDL (Hive), double quotes in views and queries (Trino)
    cols = ",\n".join(f"  `{f.name}` {_hive_type(f.type)}" for f in dataset.schema)
    parts = ", ".join(f"`{name}` {kind}" for name, kind in PARTITIONS)
    location = f"{root}/{dataset.prefix}"
    text = f"""-- Athena (engine v3). Partition projection: no crawler, no MSCK REPAIR.
-- `site` is injected, so every query names it: WHERE site = 'example.com'.
CREATE EXTERNAL TABLE IF NOT EXISTS `{dataset.table}` (
{cols}
)
PARTITIONED BY ({parts})
STORED AS PARQUET
LOCATION '{location}/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.site.type' = 'injected',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = 'NOW-1830DAYS,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = '{location}/site=${{site}}/date=${{date}}/'
);
"""
    if dataset.unique_key:
        view, table = f'"{dataset.unique_view}"', f'"{dataset.table}"'
        text += (f"-- Each {dataset.unique_key} once: retries and interrupted compactions can leave copies.\n"
                 f"CREATE OR REPLACE VIEW {view} AS\n{_unique_select(dataset, DQ, table)};\n")
    return text


def duckdb_ddl(root: str, dataset: Dataset = DATASETS[0]) -> str:
    glob = f"{root}/{dataset.prefix}/*/*/*.parquet".replace("'", "''")
    # the partition types are given, not inferred: a site named 2024 stays a string
    hive_types = ", ".join(f"'{name}': {'DATE' if kind == 'date' else 'VARCHAR'}" for name, kind in PARTITIONS)
    text = f"""-- DuckDB. For s3:// load httpfs and CREATE SECRET first (see docs/stats.md).
CREATE OR REPLACE VIEW {dataset.table} AS
SELECT * FROM read_parquet('{glob}', hive_partitioning = true,
  hive_types = {{{hive_types}}}, union_by_name = true);
"""
    if dataset.unique_key:
        text += (f"-- Each {dataset.unique_key} once: retries and interrupted compactions can leave copies.\n"
                 f"CREATE OR REPLACE VIEW {dataset.unique_view} AS\n"
                 f"{_unique_select(dataset, DQ, dataset.table)};\n")
    return text


def spark_ddl(root: str, dataset: Dataset = DATASETS[0]) -> str:
    cols = ",\n".join(f"  `{f.name}` {_hive_type(f.type).upper()}" for f in dataset.schema)
    parts = ",\n".join(f"  `{name}` {kind.upper()}" for name, kind in PARTITIONS)
    location = (root if root.startswith("s3://") else "file://" + root).replace("s3://", "s3a://")
    text = f"""-- Spark SQL (3.x/4.x). Run MSCK REPAIR TABLE after new dates land.
CREATE TABLE IF NOT EXISTS {dataset.table} (
{cols},
{parts}
)
USING PARQUET
PARTITIONED BY ({", ".join(f"`{name}`" for name, _ in PARTITIONS)})
LOCATION '{location}/{dataset.prefix}';
MSCK REPAIR TABLE {dataset.table};
"""
    if dataset.unique_key:
        text += (f"-- Each {dataset.unique_key} once: retries and interrupted compactions can leave copies.\n"
                 f"CREATE OR REPLACE TEMP VIEW {dataset.unique_view} AS\n"
                 f"{_unique_select(dataset, '`', dataset.table)};\n")
    return text
