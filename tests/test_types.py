"""The row types of `traceglider.types` say what the rows are: `EventRow` has exactly
the columns a writer fills (the wire shape of `storage.parquet`), with the Python type
of each column's Arrow type, and the rows the parsers and the pipeline really make
have only keys it names, with values of the types it gives."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pyarrow as pa

from tests.ingest.enrich.conftest import make_request
from traceglider.app import build_pipeline
from traceglider.config import load
from traceglider.ingest.plausible import parse_plausible
from traceglider.ingest.request import parse_batch
from traceglider.schema import COMPACTION_COLUMNS, FILE_COLUMNS, STORED_SCHEMA
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import WIRE_SCHEMA
from traceglider.storage.salts import SaltStore
from traceglider.types import EventRow, LaterWork, PipelineRow

NOW_US = 1_764_280_000_000_000


def _keys(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)


def _python_type(arrow: pa.DataType) -> type:
    if pa.types.is_string(arrow):
        return str
    if pa.types.is_integer(arrow) or pa.types.is_timestamp(arrow):  # timestamps travel as integers
        return int
    if pa.types.is_floating(arrow):
        return float
    raise AssertionError(f"no Python type for {arrow}")


def _allowed(hint: Any) -> tuple[type, ...]:
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(t for arg in get_args(hint) for t in _allowed(arg))
    if hint is type(None):
        return (type(None),)
    if hint is LaterWork:
        return (dict,)
    return (get_origin(hint) or hint,)


def test_the_event_row_has_the_columns_a_writer_fills_and_site() -> None:
    assert _keys(EventRow) == set(WIRE_SCHEMA.names) == {"site", *FILE_COLUMNS}
    assert _keys(EventRow) == ({"site"} | set(STORED_SCHEMA.names)) - set(COMPACTION_COLUMNS)
    assert _keys(PipelineRow) == _keys(EventRow) | {"_later"}  # the flusher pops it before storing


def test_each_column_has_the_python_type_of_its_arrow_type() -> None:
    hints = get_type_hints(EventRow)
    for field in WIRE_SCHEMA:
        allowed = set(_allowed(hints[field.name])) - {type(None)}
        assert allowed == {_python_type(field.type)}, field.name


def _assert_typed(rows: list[PipelineRow]) -> None:
    hints = get_type_hints(PipelineRow)
    assert rows
    for row in rows:
        assert set(row) <= set(hints), set(row) - set(hints)
        for key, value in row.items():
            assert isinstance(value, _allowed(hints[key])), (key, value)


def test_parsed_and_enriched_rows_match_their_types(tmp_path: Path) -> None:
    _, ctx, rows = parse_batch({
        "site": "example.com",
        "ctx": {"sw": 1920, "sh": 1080, "vw": 1280, "vh": 720, "lang": "en-GB", "tz": "Europe/London", "cs": "dark"},
        "events": [
            {"id": "e1", "type": "pageview", "url": "https://example.com/a?utm_source=x", "ts": 1764280000000,
             "ref": "https://news.ycombinator.com/", "title": "A"},
            {"id": "e2", "type": "engagement", "url": "https://example.com/", "scroll": 80, "eng": 5000},
            {"id": "e3", "type": "vital", "url": "https://example.com/", "metric": "CLS", "value": 0.02},
            {"id": "e4", "type": "custom", "name": "Signup", "url": "https://example.com/", "props": {"plan": "pro"}},
        ],
    }, NOW_US)
    _assert_typed(rows)
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SITES": "example.com",
                         "TG_SECRET": "types-test-secret-0123456789abcdef", "TG_STORE_USER_AGENT": "true"})
    pipeline = build_pipeline(settings, SaltStore(LocalStorage(tmp_path / "salts")))
    # A user agent not seen before, on a spooled request: its work is left for later.
    request = make_request(ctx=ctx, defer=True, user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:140.7) "
                           "Gecko/20100101 Firefox/140.7 TypesTest/1")
    kept = pipeline.run(rows, request)
    assert len(kept) == 4 and all("_later" in row and row["visitor_id"] for row in kept)
    _assert_typed(kept)
    _, plausible = parse_plausible({"name": "Signup", "url": "https://example.com/p", "domain": "example.com",
                                    "props": {"plan": "pro"}, "revenue": {"amount": "9.5", "currency": "EUR"}},
                                   NOW_US)
    _assert_typed(plausible)
