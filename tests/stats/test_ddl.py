"""The DDL of each engine: the same names everywhere, run against demo data (DuckDB,
Spark), Athena's checked by sqlglot's Athena and Trino parsers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from traceglider import demo_data
from traceglider.cli import main
from traceglider.errors import BadRequest
from traceglider.schema import STORED_SCHEMA, VISIT_SCHEMA
from traceglider.stats.ddl import DATASETS, ENGINES, ddl
from traceglider.storage.local import LocalStorage

SITE = "ddl.example"
COLUMNS = [*STORED_SCHEMA.names, "site", "date"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddl")
    demo_data.generate(LocalStorage(path), SITE, 3000, days=3, seed=11, now=1_764_244_800.0,
                       duplicate_rate=0.05)
    from traceglider.storage.compact import compact

    compact(LocalStorage(path), before="2025-11-27")  # visits for two days; the last raw, with copies
    return path


def _statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _created(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"CREATE (?:OR REPLACE )?(?:EXTERNAL |TEMP )?(?:TABLE|VIEW) "
                                            r"(?:IF NOT EXISTS )?[`\"]?(\w+)", text)]


def test_every_engine_gets_the_same_names_a_table_and_a_unique_view() -> None:
    names = {engine: _created(ddl(engine, "s3://bucket/prefix")) for engine in ENGINES}
    assert names["athena"] == names["duckdb"] == names["spark"] == [
        "traceglider_events", "traceglider_events_unique", "traceglider_visits"]
    assert [d.table for d in DATASETS] == ["traceglider_events", "traceglider_visits"]


def test_duckdb_ddl_reads_every_copy_in_the_table_and_each_event_once_in_the_view(root: Path) -> None:
    import duckdb

    con = duckdb.connect()
    for statement in _statements(ddl("duckdb", str(root))):
        con.execute(statement)
    total, unique, sites, dates = con.execute(
        "SELECT (SELECT count(*) FROM traceglider_events), count(*), count(DISTINCT site), "
        "count(DISTINCT date) FROM traceglider_events_unique").fetchone()
    assert total > unique == 3000 and sites == 1 and dates >= 3
    columns = con.execute("DESCRIBE traceglider_events_unique").fetchall()
    assert [c[0] for c in columns] == COLUMNS
    assert dict((c[0], c[1]) for c in columns)["date"] == "DATE"
    visits, days = con.execute("SELECT count(*), count(DISTINCT date) FROM traceglider_visits").fetchone()
    assert visits > 0 and days == 2
    described = [c[0] for c in con.execute("DESCRIBE traceglider_visits").fetchall()]
    n = len(VISIT_SCHEMA)
    assert described[:n] == VISIT_SCHEMA.names and set(described[n:]) == {"site", "date"}


def test_spark_ddl_reads_the_dataset(root: Path, spark: Any) -> None:
    for statement in _statements(ddl("spark", str(root))):
        spark.sql(statement)
    row = spark.sql("SELECT count(*) AS n, count(DISTINCT `date`) AS d, max(received_at) AS t "
                    "FROM traceglider_events_unique WHERE site = 'ddl.example'").collect()[0]
    assert row.n == 3000 and row.d >= 3 and row.t is not None
    assert spark.table("traceglider_events").count() > 3000
    view = spark.table("traceglider_events_unique").schema
    assert view.fieldNames() == COLUMNS and view["date"].dataType.simpleString() == "date"
    visits = spark.sql("SELECT count(*) AS n, sum(CASE WHEN bounce THEN 1 ELSE 0 END) AS b FROM traceglider_visits "
                       "WHERE site = 'ddl.example'").collect()[0]
    assert visits.n > 0 and visits.b is not None


@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_the_athena_views_parse_as_queries_with_the_dataset_columns_only(dialect: str) -> None:
    statements = _statements(ddl("athena", "s3://bucket/prefix"))
    tables = [s for s in statements if s.startswith("CREATE EXTERNAL TABLE")]
    views = [s for s in statements if s.startswith("CREATE OR REPLACE VIEW")]
    assert len(tables) == len(DATASETS) and len(views) == len([d for d in DATASETS if d.unique_key])
    for view in views:
        assert "`" not in view  # Athena's view engine (Trino) rejects backticks
        parsed = sqlglot.parse_one(view, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        assert isinstance(parsed, exp.Create) and parsed.args["kind"] == "VIEW"
        (dataset,) = [d for d in DATASETS if f'"{d.unique_view}"' in view.split("\n", 1)[0]]
        assert parsed.expression.named_selects == dataset.columns  # no helper column such as rn
    assert sqlglot.parse_one(views[0], read=dialect).expression.named_selects == COLUMNS
    if dialect == "athena":  # the tables are Hive DDL, which the Trino dialect does not take
        for table in tables:
            create = sqlglot.parse_one(table, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
            assert isinstance(create, exp.Create) and create.args["kind"] == "TABLE"


def test_athena_ddl_uses_partition_projection_with_a_date_partition() -> None:
    text = ddl("athena", "s3://bucket/prefix")
    for needle in ("'projection.enabled' = 'true'", "'projection.site.type' = 'injected'",
                   "'projection.date.type' = 'date'", "'projection.date.format' = 'yyyy-MM-dd'",
                   "'projection.date.interval.unit' = 'DAYS'",
                   "'storage.location.template' = 's3://bucket/prefix/events/site=${site}/date=${date}/'",
                   "PARTITIONED BY (`site` string, `date` date)", "STORED AS PARQUET"):
        assert needle in text
    assert text.count("` ") >= len(STORED_SCHEMA)


def test_athena_ddl_prints_for_local_storage_with_the_bucket_as_a_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BadRequest, match="--location s3://"):
        ddl("athena", str(tmp_path))
    assert main(["ddl", "--engine", "athena", "--storage", str(tmp_path), "--location", "s3://bk/tg"]) == 0
    assert "LOCATION 's3://bk/tg/events/'" in capsys.readouterr().out
    assert main(["ddl", "--engine", "athena", "--storage", str(tmp_path)]) == 1
    assert "--location s3://bucket/prefix" in capsys.readouterr().err
