"""Export the raw events of a site and date range as Parquet, NDJSON or CSV.

Each event id appears once. CSV cells that a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from traceglider.errors import BadRequest
from traceglider.schema import FILE_COLUMNS, FILE_SCHEMA
from traceglider.stats.query import parse_date, parse_site_id

if TYPE_CHECKING:
    from fastapi.responses import Response

    from traceglider.stats.engine import Engine

FORMATS = {"parquet": "application/vnd.apache.parquet", "ndjson": "application/x-ndjson",
           "csv": "text/csv; charset=utf-8"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_DAYS = 366


def escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _select(engine: Engine, site: str, first: date, last: date) -> tuple[str, dict[str, Any]]:
    lo = datetime.combine(first, datetime.min.time())
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time())
    keys = [k for k, _ in engine.files(site, lo, hi)]
    cols = ", ".join(f'"{c}"::TIMESTAMP AS {c}' if c == "client_ts" else f'"{c}"'
                     for c in FILE_COLUMNS if c != "received_at")
    # no file in the range: the same columns from no rows, so a CSV still has its header
    source = "read_parquet($files, union_by_name = true)" if keys else "_no_events"
    sql = (f"SELECT $site AS site, received_at::TIMESTAMP AS received_at, {cols} FROM {source} "
           "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1 "
           "ORDER BY received_at, event_id")
    return sql, ({"files": engine.uris(keys), "site": site} if keys else {"site": site})


def export_events(engine: Engine, site: str, first: date, last: date, fmt: str, out_path: str,
                  progress: Callable[[int], None] | None = None) -> int:
    """Write the events to `out_path`; returns how many. `progress(n)`: n written so far."""
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
    if last < first or (last - first).days >= MAX_DAYS:
        raise BadRequest(f"the date range must run forwards and span at most {MAX_DAYS} days")
    # read again if compaction or an erasure replaced files meanwhile (the file is rewritten)
    return engine.reading(lambda: _write(engine, site, first, last, fmt, out_path, progress or (lambda n: None)))


def stored_rows(engine: Engine, site: str, first: date, last: date) -> int:
    """The rows stored for the range, copies included (so at least the events an
    export writes), from the files' footers alone: the total of a progress bar."""
    lo = datetime.combine(first, datetime.min.time())
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time())

    def count() -> int:
        keys = [k for k, _ in engine.files(site, lo, hi)]
        if not keys:
            return 0
        cur = engine.cursor()
        try:
            row = cur.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($files)",
                              {"files": engine.uris(keys)}).fetchone()
            return int(row[0]) if row else 0
        finally:
            cur.close()

    return engine.reading(count)


def _write(engine: Engine, site: str, first: date, last: date, fmt: str, out_path: str,
           progress: Callable[[int], None]) -> int:
    sql, params = _select(engine, site, first, last)
    cur = engine.cursor()
    try:
        cur.register("_no_events", FILE_SCHEMA.empty_table())
        rel = cur.execute(sql, params)
        reader = rel.to_arrow_reader(65536)
        count = 0
        if fmt == "parquet":
            import pyarrow.parquet as pq

            writer = None
            try:
                for batch in reader:
                    if writer is None:
                        writer = pq.ParquetWriter(out_path, batch.schema, compression="zstd")
                    writer.write_batch(batch)
                    count += batch.num_rows
                    progress(count)
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                pq.write_table(reader.read_all(), out_path, compression="zstd")
        elif fmt == "ndjson":
            import json

            with open(out_path, "w", encoding="utf-8") as fh:
                for batch in reader:
                    for row in batch.to_pylist():
                        fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
                        count += 1
                    progress(count)
        else:
            with open(out_path, "w", encoding="utf-8", newline="") as fh:
                writer_csv = csv.writer(fh)
                writer_csv.writerow(reader.schema.names)
                for batch in reader:
                    for row in batch.to_pylist():
                        writer_csv.writerow([escape_cell("" if v is None else str(v) if not isinstance(v, str) else v)
                                             for v in row.values()])
                        count += 1
                    progress(count)
        return count
    finally:
        cur.close()


def _parse_range(params: dict[str, str]) -> tuple[str, date, date, str]:
    site = parse_site_id(params)
    raw = params.get("date") or ""
    if not raw:
        raise BadRequest("The `date` parameter is a day or a range: date=2026-11-01,2026-11-30")
    first_s, _, last_s = raw.partition(",")
    first, last = parse_date(first_s), parse_date(last_s or first_s)
    return site, first, last, (params.get("format") or "ndjson").lower()


def export_response(engine: Engine, params: dict[str, str]) -> Response:
    from fastapi.responses import FileResponse
    from starlette.background import BackgroundTask

    site, first, last, fmt = _parse_range(params)
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
    fd, path = tempfile.mkstemp(suffix="." + fmt)
    os.close(fd)
    try:
        export_events(engine, site, first, last, fmt, path)
    except Exception:
        os.unlink(path)
        raise
    name = f"{site}-{first}-{last}.{fmt}"
    return FileResponse(path, media_type=FORMATS[fmt], filename=name,
                        background=BackgroundTask(os.unlink, path))
