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
from traceglider.config import Settings, load, setting_named
from traceglider.errors import ConfigError, StorageError, TGError


class _HelpFormatter(argparse.HelpFormatter):
    """Shows the default of every flag that has one, unless its help already does."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text \
                and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help[:1].upper() + help[1:] + ".", formatter_class=_HelpFormatter)
    _add_common(parser)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    """The flags every command has: where the settings and the data are."""
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (or TG_CONFIG)")
    _setting_flag(parser, "storage", "URL")
    _setting_flag(parser, "s3_endpoint_url", "URL")


def _setting_flag(parser: argparse.ArgumentParser, name: str, metavar: str | None = None) -> None:
    """A flag for a setting of the settings table: its name, help and default are the
    table's, so the command line, the environment and the docs cannot drift apart."""
    setting = setting_named(name)
    default = setting.default
    shown = ",".join(default) if isinstance(default, tuple) else default
    suffix = f"{setting.env}, default {shown}" if shown not in (None, "") else setting.env
    parser.add_argument("--" + name.replace("_", "-"), metavar=metavar, help=f"{setting.help} ({suffix})")


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="draw progress on stderr (default: only when stderr is a terminal)")


def _site(parser: argparse.ArgumentParser, required: bool, help: str) -> None:
    parser.add_argument("--site", metavar="DOMAIN", required=required, help=help)


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

    serve = _command(commands, "serve", "run the collector, tracker, dashboard and stats API")
    for name in ("host", "port", "workers"):
        _setting_flag(serve, name)
    serve.set_defaults(run=cmd_serve)

    compact = _command(commands, "compact", "merge small files of partitions, dropping duplicate event ids")
    _site(compact, False, "only this site (default: every site)")
    compact.add_argument("--date", metavar="YYYY-MM-DD", type=_date,
                         help="only this UTC date; its visits continue from the day before when that is "
                              "compacted, and a run without --date brings every day up to date "
                              "(default: every date that needs it)")
    _add_progress(compact)
    compact.set_defaults(run=cmd_compact)

    retention = _command(commands, "retention", "delete partitions older than N days")
    retention.add_argument("--days", type=_days, required=True, help="days to keep (25 months = 760)")
    retention.set_defaults(run=cmd_retention)

    forget = _command(commands, "forget", "erase every event of one visitor (GDPR Art. 17)")
    forget.add_argument("--visitor", required=True, help="the visitor id (the tg_vid cookie value or a stored id)")
    _site(forget, False, "only this site's partitions (default: every site)")
    _add_progress(forget)
    forget.set_defaults(run=cmd_forget)

    stats = _command(commands, "stats", "headline figures and top pages, sources and countries")
    _site(stats, True, "the site domain, such as example.com")
    stats.add_argument("--period", default="7d", help="day, 7d, 30d, month, 6mo or 12mo")
    stats.add_argument("--json", action="store_true", help="print the aggregate as the stats API does")
    _add_progress(stats)
    stats.set_defaults(run=cmd_stats)

    ddl = _command(commands, "ddl", "table definitions of the dataset for Athena, DuckDB or Spark")
    ddl.add_argument("--engine", required=True, choices=["athena", "duckdb", "spark"],
                     help="the engine whose SQL to print: athena, duckdb or spark")
    ddl.add_argument("--location", metavar="URL",
                     help="where the engine reads the files, such as s3://bucket/prefix for Athena when "
                          "the storage here is local (default: the storage)")
    ddl.set_defaults(run=cmd_ddl)

    export = _command(commands, "export", "raw events of a site and date range as Parquet, NDJSON or CSV")
    _site(export, True, "the site domain, such as example.com")
    export.add_argument("--from", dest="start", metavar="YYYY-MM-DD", type=_date, required=True,
                        help="first UTC date")
    export.add_argument("--to", dest="end", metavar="YYYY-MM-DD", type=_date, required=True,
                        help="last UTC date (included)")
    export.add_argument("--format", dest="fmt", choices=["parquet", "ndjson", "csv"], default="parquet",
                        help="parquet, ndjson or csv")
    export.add_argument("--output", "-o", metavar="FILE", required=True,
                        help="file to write, or '-' for stdout (parquet only into a pipe or a file)")
    _add_progress(export)
    export.set_defaults(run=cmd_export)

    demo = _command(commands, "demo-data", "write realistic synthetic traffic for first looks and benchmarks")
    _site(demo, True, "the site domain to write events for, such as example.com")
    demo.add_argument("--events", type=_days, required=True, help="how many events, exactly")
    demo.add_argument("--days", type=_days, default=30, help="spread over the last N days, today included")
    demo.add_argument("--seed", type=int, default=1,
                      help="seed of the random generator: the same seed writes the same traffic")
    _add_progress(demo)
    demo.set_defaults(run=cmd_demo_data)

    from traceglider.site_config_cli import add_commands

    add_commands(commands, _command, lambda args: _storage(_settings(args)))
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
    from traceglider.progress import progress_bar
    from traceglider.storage.compact import compact

    storage = _storage(_settings(args))
    with progress_bar(_to_compact(storage, args.site, args.date), "partition", "compacting", args.progress) as bar:
        def show(result: Any) -> None:
            bar.write(f"site={result.site} date={result.date}: {result.files_before} files -> "
                      f"{result.files_after}, {result.rows_before} rows -> {result.rows_after}", file=sys.stdout)
            bar.update(1)

        # --date is that date only: the days around it are a full run's work (see compact.py)
        results = compact(storage, site=args.site, date=args.date, progress=show, neighbours=False)
    print(f"compacted {len(results)} partition(s)")
    return 0


def _to_compact(storage: Any, site: str | None, date: str | None) -> int:
    """How many partitions a run will compact, for the progress bar's time left (a
    day whose previous day changes during the run can add one)."""
    from traceglider.storage.layout import previous_date, up_to_date
    from traceglider.storage.parquet import list_partitions

    partitions = list_partitions(storage, site)
    return sum(1 for (s, d), keys in partitions.items()
               if (date is None or d == date) and not up_to_date(keys, partitions.get((s, previous_date(d)))))


def cmd_retention(args: argparse.Namespace) -> int:
    from traceglider.storage.retention import apply_retention
    from traceglider.storage.salts import open_salt_storage, purge_legacy_salts, purge_old_salts

    settings = _settings(args)
    storage = _storage(settings)

    def show(part: tuple[str, str], files: int) -> None:
        print(f"deleted site={part[0]} date={part[1]} ({files} files)", flush=True)

    removed = apply_retention(storage, args.days, progress=show)
    print(f"removed {removed} file(s) older than {args.days} days")
    # salts of days without traffic are not deleted by a collector: a daily job does it
    salts = purge_legacy_salts(storage) + purge_old_salts(
        open_salt_storage(settings), datetime.now(UTC).date().isoformat())
    print(f"deleted {len(salts)} cookieless salt(s) of past days")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from traceglider.progress import advance_to, progress_bar
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

    with progress_bar(None, "file", "scanning", args.progress) as bar:
        report = forget_visitor(storage, args.visitor.strip(), site=args.site,
                                progress=lambda done, total: advance_to(bar, done, total))
    quarantined = erase_from_quarantine(settings.spool_path, args.visitor.strip())
    print(report.summary() + (f"; {quarantined} from quarantined spool segments" if quarantined else ""))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from traceglider.sites import normalize_site
    from traceglider.stats.cli import stats_command

    return stats_command(_settings(args), normalize_site(args.site, "--site"), args.period, args.json,
                         progress=args.progress)


def cmd_ddl(args: argparse.Namespace) -> int:
    from traceglider.stats.cli import ddl_command

    print(ddl_command(args.engine, _settings(args), args.location), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from traceglider.sites import normalize_site
    from traceglider.stats.cli import export_command

    return export_command(_settings(args), normalize_site(args.site, "--site"), args.start, args.end, args.fmt,
                          args.output, progress=args.progress)


def cmd_demo_data(args: argparse.Namespace) -> int:
    import time

    from traceglider.demo_data import generate
    from traceglider.progress import advance_to, progress_bar
    from traceglider.sites import normalize_site

    site = normalize_site(args.site, "--site")
    storage = _storage(_settings(args))
    started = time.monotonic()
    with progress_bar(args.events, "event", "writing", args.progress) as bar:
        written = generate(storage, site, args.events, days=args.days, seed=args.seed,
                           progress=lambda done, _total: advance_to(bar, done))
    print(f"wrote {written:,} events for {site} over {args.days} days to {storage.url} "
          f"in {time.monotonic() - started:.1f} s")
    # as a collector's maintenance leaves a store: the days before today compacted,
    # with their visits written (today's files are sessionised while reading)
    from traceglider.storage.compact import compact

    started = time.monotonic()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    done = compact(storage, site, before=today)
    print(f"compacted {len(done)} past days (events sorted, visits written) in {time.monotonic() - started:.1f} s")
    return 0


def _log_level() -> str:
    """TG_LOG_LEVEL as the settings table reads it (environment or TG_CONFIG file)."""
    try:
        return load().log_level
    except ConfigError:
        return "INFO"  # the command itself reports the bad setting, as one line


def entry() -> int:
    """The `traceglider` command: `main` in a process that is ours alone."""
    from traceglider.memory import keep_pandas_out

    keep_pandas_out()
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=_log_level(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
