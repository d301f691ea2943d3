"""docs/storage.md lists every stored column with its type, in the schema's order."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from traceglider.schema import EVENT_SCHEMA

DOC = (Path(__file__).parents[1] / "docs" / "storage.md").read_text()


def _doc_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, tz={t.tz}]"
    return {"float64": "double"}.get(str(t), str(t))


def test_the_columns_table_matches_the_schema() -> None:
    section = DOC[DOC.index("## Columns"):DOC.index("### One schema in every file")]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.M)
    assert [name for name, _ in rows] == [*EVENT_SCHEMA.names, "date"]
    documented = dict(rows)
    for field in EVENT_SCHEMA:
        assert documented[field.name].strip() == _doc_type(field.type), field.name
    assert documented["date"].strip() == "date"
