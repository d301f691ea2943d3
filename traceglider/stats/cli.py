"""Command-line helpers of `traceglider stats`, `ddl` and `export` (wired in cli.py)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from traceglider.errors import TGError

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.engine import Engine

HEADLINE = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")


def _engine(settings: Settings) -> Engine:
    from traceglider.stats.engine import from_settings
    from traceglider.storage import open_storage

    return from_settings(settings, open_storage(settings))


def stats_command(settings: Settings, site: str, period: str = "7d", as_json: bool = False,
                  out: TextIO | None = None, progress: bool | None = None) -> int:
    """Headline figures and top pages, sources and countries; --json prints the API's
    aggregate answer. Returns the exit code (2 with a one-line reason on bad input)."""
    from traceglider.progress import progress_bar
    from traceglider.stats import query as Q
    from traceglider.stats import service

    out = out or sys.stdout
    # every figure reads the files directly (only the columns it needs)
    engine = _engine(settings)
    unknown = _unknown_site(engine, site)
    if unknown:
        engine.close()
        sys.stderr.write(f"traceglider stats: {unknown}\n")
        return 2

    breakdowns = () if as_json else (("event:page", "Top pages"), ("visit:source", "Top sources"),
                                     ("visit:country", "Top countries"))
    bar = progress_bar(1 + len(breakdowns), "query", "querying", progress)

    def figures() -> tuple[Any, dict, dict]:
        bar.reset()
        q = Q.parse({"site_id": site, "period": period, "metrics": ",".join(HEADLINE),
                     "compare": "previous_period"})
        agg = service.aggregate(engine, q)
        bar.update(1)
        tables = {}
        for prop, title in breakdowns:
            bq = Q.parse({"site_id": site, "period": period, "property": prop, "limit": "10",
                          "metrics": "visitors"})
            tables[title] = (Q.result_key(prop), service.breakdown(engine, bq)["results"])
            bar.update(1)
        return q, agg, tables

    try:
        q, agg, tables = engine.reading(figures)  # once more if compaction replaced files meanwhile
        bar.close()
        if as_json:
            out.write(json.dumps(agg) + "\n")
            return 0
    except TGError as exc:
        sys.stderr.write(f"traceglider stats: {exc.message}\n")
        return 2
    finally:
        bar.close()
        engine.close()
    last = q.end - timedelta(days=1)
    out.write(f"{site} · {period} · {q.start:%Y-%m-%d} to {last:%Y-%m-%d}\n\n")
    for m in HEADLINE:
        r = agg["results"][m]
        change = r.get("change")
        shown = "" if change is None else f"  ({change:+d}{' pts' if m == 'bounce_rate' else '%'})"
        out.write(f"  {m.replace('_', ' '):<16}{_fmt(m, r['value']):>12}{shown}\n")
    for title, (key, rows) in tables.items():
        out.write(f"\n{title}\n")
        for row in rows:
            label = str(row[key])
            label = label if len(label) <= 48 else label[:47] + "…"
            out.write(f"  {label:<50}{row['visitors']:>10}\n")
        if not rows:
            out.write("  (no data)\n")
    return 0


def _fmt(metric: str, value: float) -> str:
    if metric == "bounce_rate":
        return f"{value}%"
    if metric == "visit_duration":
        return f"{int(value) // 60}m {int(value) % 60:02d}s"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _unknown_site(engine: Engine, site: str) -> str | None:
    """Why `site` cannot be shown (no event stored for it, with the sites that have
    some), or None. A typo would otherwise look like a site without traffic."""
    if engine.partitions(site):
        return None
    from traceglider.storage.layout import EVENTS_PREFIX, parse_key

    # only on this error path is every key listed: the site names are in the keys
    sites = sorted({parsed[0] for info in engine.storage.list(EVENTS_PREFIX) if (parsed := parse_key(info.key))})
    known = f"sites with events: {', '.join(sites)}" if sites else f"no site has events in {engine.storage.url} yet"
    return f"no events stored for site {site}; {known}"


def ddl_command(engine: str, settings: Settings, location: str | None = None) -> str:
    """The table definitions for athena, duckdb or spark, over `location` (by default
    the configured storage)."""
    from traceglider.stats.ddl import ddl

    return ddl(engine, location or settings.storage)


def export_command(settings: Settings, site: str, start: str, end: str, fmt: str, output: str,
                   stdout: BinaryIO | None = None, progress: bool | None = None) -> int:
    """Write the raw events of `site` from `start` to `end` (YYYY-MM-DD, inclusive) to
    the file `output`, or to stdout for `-` (Parquet only into a pipe or a file)."""
    from traceglider.progress import advance_to, progress_bar
    from traceglider.stats.export import export_events, stored_rows

    to_stdout = output == "-"
    stdout = stdout or sys.stdout.buffer
    if to_stdout and fmt == "parquet" and stdout.isatty():
        sys.stderr.write("traceglider export: Parquet is binary: redirect stdout to a file or a pipe "
                         "(-o - > events.parquet), or give a file name with -o\n")
        return 2
    engine = _engine(settings)
    try:
        unknown = _unknown_site(engine, site)
        if unknown:
            sys.stderr.write(f"traceglider export: {unknown}\n")
            return 2
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        # the total counts copies too: the bar may end short of it, never past it
        total = stored_rows(engine, site, first, last) if progress or (progress is None and sys.stderr.isatty()) \
            else None
        with progress_bar(total, "event", "exporting", progress) as bar:
            def show(done: int) -> None:
                advance_to(bar, done)

            if to_stdout:
                # through a temporary file: a read that compaction interrupts starts again
                # from the top, which a file can and a pipe cannot
                with tempfile.TemporaryDirectory(prefix="traceglider-export-") as tmp:
                    path = f"{tmp}/events.{fmt}"
                    count = export_events(engine, site, first, last, fmt, path, show)
                    with open(path, "rb") as written:
                        shutil.copyfileobj(written, stdout)
                    stdout.flush()
            else:
                count = export_events(engine, site, first, last, fmt, output, show)
    except ValueError as exc:
        sys.stderr.write(f"traceglider export: {exc}\n")
        return 2
    except TGError as exc:
        sys.stderr.write(f"traceglider export: {exc.message}\n")
        return 2
    finally:
        engine.close()
    sys.stderr.write(f"wrote {count} events to {'stdout' if to_stdout else output}\n")
    return 0
