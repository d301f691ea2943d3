"""The DDL of each engine, executed against demo data (Athena's checked for its syntax)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from traceglider import demo_data
from traceglider.errors import BadRequest
from traceglider.schema import FILE_SCHEMA
from traceglider.stats.ddl import athena_ddl, ddl
from traceglider.storage.local import LocalStorage

SITE = "ddl.example"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddl")
    demo_data.generate(LocalStorage(path), SITE, 3000, days=3, seed=11, now=1_764_244_800.0,
                       duplicate_rate=0.05)
    return path


def test_duckdb_ddl_reads_every_event_once(root: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(ddl("duckdb", str(root)))
    total, unique, sites, dates = con.execute(
        "SELECT (SELECT count(*) FROM traceglider_events_all), count(*), count(DISTINCT site), "
        "count(DISTINCT date) FROM traceglider_events").fetchone()
    assert total > unique > 2500 and sites == 1 and dates >= 3


def test_athena_ddl_uses_partition_projection() -> None:
    text = athena_ddl("s3://bucket/prefix")
    for needle in ("'projection.enabled' = 'true'", "'projection.site.type' = 'injected'",
                   "'projection.date.type' = 'date'", "'projection.date.format' = 'yyyy-MM-dd'",
                   "'projection.date.interval.unit' = 'DAYS'",
                   "'storage.location.template' = 's3://bucket/prefix/events/site=${site}/date=${date}/'",
                   "PARTITIONED BY (`site` string, `date` string)", "STORED AS PARQUET"):
        assert needle in text
    assert text.count("` ") >= len(FILE_SCHEMA)
    with pytest.raises(BadRequest):
        ddl("athena", "/local/path")


def test_spark_ddl_reads_the_dataset(root: Path) -> None:
    assert shutil.which("java"), "Spark needs Java 17 (Debian's openjdk-17-jre-headless)"
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    spark = (SparkSession.builder.master("local[1]").appName("tg-ddl")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.warehouse.dir", str(root / "_warehouse"))
             .getOrCreate())
    try:
        for statement in ddl("spark", str(root)).split(";"):
            lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
            if "".join(lines).strip():
                spark.sql("\n".join(lines))
        row = spark.sql("SELECT count(*) AS n, count(DISTINCT `date`) AS d, max(received_at) AS t "
                        "FROM traceglider_events_unique WHERE site = 'ddl.example'").collect()[0]
        assert row.n > 2500 and row.d >= 3 and row.t is not None
    finally:
        spark.stop()
