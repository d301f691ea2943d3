"""The `traceglider` command line. Bad input exits 2 with one line saying why."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from traceglider import __version__
from traceglider.config import Settings, load
from traceglider.errors import ConfigError, StorageError, TGError


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (or TG_CONFIG)")
    parser.add_argument("--storage", help="local path, file:///abs/path or s3://bucket/prefix (TG_STORAGE)")
    parser.add_argument("--s3-endpoint-url", help="S3-compatible endpoint (TG_S3_ENDPOINT_URL)")


def _days(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _date(raw: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError("must be a date as YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="traceglider",
        description="Privacy-first web analytics that lands as Parquet in your own storage.",
    )
    parser.add_argument("--version", action="version", version=f"traceglider {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the collector, tracker, dashboard and stats API")
    _add_common(serve)
    serve.add_argument("--host", help="address to listen on (TG_HOST, default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (TG_PORT, default 8000)")
    serve.add_argument("--workers", help="worker processes, each with its own spool (TG_WORKERS)")
    serve.set_defaults(run=cmd_serve)

    compact = commands.add_parser("compact", help="merge small files of partitions, dropping duplicate event ids")
    _add_common(compact)
    compact.add_argument("--site", help="only this site")
    compact.add_argument("--date", type=_date, help="only this UTC date (YYYY-MM-DD)")
    compact.set_defaults(run=cmd_compact)

    retention = commands.add_parser("retention", help="delete partitions older than N days")
    _add_common(retention)
    retention.add_argument("--days", type=_days, required=True, help="days to keep (25 months = 760)")
    retention.set_defaults(run=cmd_retention)

    forget = commands.add_parser("forget", help="erase every event of one visitor (GDPR Art. 17)")
    _add_common(forget)
    forget.add_argument("--visitor", required=True, help="the visitor id (the tg_vid cookie value or a stored id)")
    forget.add_argument("--site", help="only this site's partitions")
    forget.set_defaults(run=cmd_forget)

    stats = commands.add_parser("stats", help="headline figures and top pages, sources and countries")
    _add_common(stats)
    stats.add_argument("--site", required=True, help="the site domain")
    stats.add_argument("--period", default="7d", help="day, 7d, 30d, month, 6mo, 12mo (default 7d)")
    stats.add_argument("--json", action="store_true", help="print the aggregate as the stats API does")
    stats.set_defaults(run=cmd_stats)

    ddl = commands.add_parser("ddl", help="table definition of the dataset for Athena, DuckDB or Spark")
    _add_common(ddl)
    ddl.add_argument("--engine", required=True, choices=["athena", "duckdb", "spark"],
                     help="the engine whose SQL to print: athena, duckdb or spark")
    ddl.add_argument("--location", metavar="URL",
                     help="where the engine reads the files, such as s3://bucket/prefix for Athena when "
                          "the storage here is local (default: the storage)")
    ddl.set_defaults(run=cmd_ddl)

    export = commands.add_parser("export", help="raw events of a site and date range as Parquet, NDJSON or CSV")
    _add_common(export)
    export.add_argument("--site", required=True)
    export.add_argument("--from", dest="start", type=_date, required=True, help="first UTC date, YYYY-MM-DD")
    export.add_argument("--to", dest="end", type=_date, required=True, help="last UTC date, YYYY-MM-DD")
    export.add_argument("--format", dest="fmt", choices=["parquet", "ndjson", "csv"], default="parquet")
    export.add_argument("--output", "-o", required=True, help="file to write ('-' for stdout, not for parquet)")
    export.set_defaults(run=cmd_export)

    demo = commands.add_parser("demo-data", help="write realistic synthetic traffic for first looks and benchmarks")
    _add_common(demo)
    demo.add_argument("--site", required=True)
    demo.add_argument("--events", type=_days, required=True, help="how many events")
    demo.add_argument("--days", type=_days, default=30, help="spread over the last N days (default 30)")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(run=cmd_demo_data)

    from traceglider.site_config_cli import add_commands

    add_commands(commands, _add_common, lambda args: _storage(_settings(args)))
    return parser


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    flags = {"storage": getattr(args, "storage", None),
             "s3_endpoint_url": getattr(args, "s3_endpoint_url", None), **extra}
    return load(flags=flags, config_file=getattr(args, "config", None))


def _storage(settings: Settings) -> Any:
    from traceglider.storage import open_storage

    return open_storage(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port, workers=args.workers)
    from traceglider.serve import serve

    return serve(settings, config_file=args.config)


def cmd_compact(args: argparse.Namespace) -> int:
    from traceglider.storage.compact import compact

    storage = _storage(_settings(args))

    def show(result: Any) -> None:
        print(f"site={result.site} date={result.date}: {result.files_before} files -> "
              f"{result.files_after}, {result.rows_before} rows -> {result.rows_after}", flush=True)

    results = compact(storage, site=args.site, date=args.date, progress=show)
    print(f"compacted {len(results)} partition(s)")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from traceglider.ingest.enrich.identity import purge_old_salts
    from traceglider.storage.retention import apply_retention

    storage = _storage(_settings(args))

    def show(part: tuple[str, str], files: int) -> None:
        print(f"deleted site={part[0]} date={part[1]} ({files} files)", flush=True)

    removed = apply_retention(storage, args.days, progress=show)
    print(f"removed {removed} file(s) older than {args.days} days")
    # salts of days without traffic are not deleted by a collector: a daily job does it
    salts = purge_old_salts(storage, datetime.now(UTC).date().isoformat())
    print(f"deleted {len(salts)} cookieless salt(s) of past days")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from traceglider.spool.erase import erase_from_quarantine
    from traceglider.storage.forget import forget_visitor

    if not args.visitor.strip():
        raise ConfigError("--visitor must not be empty")
    settings = _settings(args)
    storage = _storage(settings)
    waiting = list(settings.spool_path.glob("worker-*/*.wal")) + list(settings.spool_path.glob("worker-*/*.open"))
    if waiting:
        print(f"warning: {len(waiting)} spool segment(s) in {settings.spool_path} are not delivered yet; their "
              "events are not erased. With the server running, use POST /api/v1/forget, which delivers first.",
              file=sys.stderr)

    def show(done: int, total: int) -> None:
        print(f"\rscanned {done}/{total} files", end="", flush=True)

    report = forget_visitor(storage, args.visitor.strip(), progress=show, site=args.site)
    quarantined = erase_from_quarantine(settings.spool_path, args.visitor.strip())
    print()
    print(report.summary() + (f"; {quarantined} from quarantined spool segments" if quarantined else ""))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from traceglider.sites import normalize_site
    from traceglider.stats.cli import stats_command

    return stats_command(_settings(args), normalize_site(args.site, "--site"), args.period, args.json)


def cmd_ddl(args: argparse.Namespace) -> int:
    from traceglider.stats.cli import ddl_command

    print(ddl_command(args.engine, _settings(args), args.location), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from traceglider.sites import normalize_site
    from traceglider.stats.cli import export_command

    return export_command(_settings(args), normalize_site(args.site, "--site"), args.start, args.end, args.fmt,
                          args.output)


def cmd_demo_data(args: argparse.Namespace) -> int:
    import time

    from traceglider.demo_data import generate
    from traceglider.sites import normalize_site

    site = normalize_site(args.site, "--site")
    storage = _storage(_settings(args))
    started = time.monotonic()

    def show(written: int, target: int) -> None:
        rate = written / max(time.monotonic() - started, 1e-6)
        print(f"\r{written:,}/{target:,} events ({written / target:.0%}, {rate:,.0f}/s)", end="", flush=True)

    written = generate(storage, site, args.events, days=args.days, seed=args.seed, progress=show)
    print(f"\nwrote {written:,} events for {site} over {args.days} days to {storage.url} "
          f"in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TG_LOG_LEVEL", "INFO").upper()
                        if os.environ.get("TG_LOG_LEVEL", "INFO").upper() in
                        ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"traceglider: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `traceglider stats | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (StorageError, TGError) as exc:
        print(f"traceglider: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("traceglider: interrupted", file=sys.stderr)
        return 130
