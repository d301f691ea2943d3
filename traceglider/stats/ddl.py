"""Table definitions of the dataset for Athena (partition projection), DuckDB and Spark.

The column list comes from `traceglider.schema`, so the DDL never drifts from the
files. `site` and `date` are partition columns, read from the Hive path.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from traceglider.errors import BadRequest
from traceglider.schema import COMPACTED_SCHEMA

ENGINES = ("athena", "duckdb", "spark")
TABLE = "traceglider_events"


def _hive_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float64(t):
        return "double"
    return "string"


def _root(storage: str) -> str:
    if storage.startswith("s3://"):
        return storage.rstrip("/")
    return str(Path(storage.removeprefix("file://")).absolute())


def ddl(engine: str, storage: str, table: str = TABLE) -> str:
    if engine not in ENGINES:
        raise BadRequest(f"engine must be one of {', '.join(ENGINES)}")
    root = _root(storage)
    if engine == "duckdb":
        return duckdb_ddl(root, table)
    if engine == "spark":
        return spark_ddl(root, table)
    if not root.startswith("s3://"):
        raise BadRequest("Athena reads S3: set TG_STORAGE to s3://bucket/prefix")
    return athena_ddl(root, table)


def athena_ddl(root: str, table: str = TABLE) -> str:
    cols = ",\n".join(f"  `{f.name}` {_hive_type(f.type)}" for f in COMPACTED_SCHEMA)
    return f"""-- Athena (engine v3). Partition projection: no crawler, no MSCK REPAIR.
-- `site` is injected, so every query names it: WHERE site = 'example.com'.
CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (
{cols}
)
PARTITIONED BY (`site` string, `date` string)
STORED AS PARQUET
LOCATION '{root}/events/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.site.type' = 'injected',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = 'NOW-5YEARS,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = '{root}/events/site=${{site}}/date=${{date}}/'
);
-- Each event once: retries and interrupted compactions can leave copies.
CREATE OR REPLACE VIEW `{table}_unique` AS
SELECT * FROM (
  SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY received_at) AS rn FROM `{table}`)
WHERE rn = 1;
"""


def duckdb_ddl(root: str, table: str = TABLE) -> str:
    glob = f"{root}/events/*/*/*.parquet".replace("'", "''")
    return f"""-- DuckDB. For s3:// load httpfs and CREATE SECRET first (see docs/stats.md).
CREATE OR REPLACE VIEW {table}_all AS
  SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true);
-- Each event once: retries and interrupted compactions can leave copies.
CREATE OR REPLACE VIEW {table} AS
  SELECT * FROM {table}_all
  QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1;
"""


def spark_ddl(root: str, table: str = TABLE) -> str:
    cols = ",\n".join(f"  `{f.name}` {_hive_type(f.type).upper()}" for f in COMPACTED_SCHEMA)
    location = root if root.startswith("s3://") else "file://" + root
    location = location.replace("s3://", "s3a://")
    return f"""-- Spark SQL (3.x/4.x). Run MSCK REPAIR TABLE after new dates land.
CREATE TABLE IF NOT EXISTS {table} (
{cols},
  `site` STRING,
  `date` STRING
)
USING PARQUET
PARTITIONED BY (`site`, `date`)
LOCATION '{location}/events';
MSCK REPAIR TABLE {table};
CREATE OR REPLACE TEMP VIEW {table}_unique AS
  SELECT * EXCEPT (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY received_at) AS rn FROM {table})
  WHERE rn = 1;
"""
