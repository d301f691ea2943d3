"""`traceglider stats` and `export` as a user runs them: stdout for `-o -`, a clear
refusal of binary output to a terminal, and an unknown site named as such."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.stats.conftest import SITE
from traceglider.cli import main
from traceglider.config import load
from traceglider.stats.cli import export_command

RANGE = ["--from", "2025-11-20", "--to", "2025-11-26"]


def _export(demo_root: Path, *args: str) -> int:
    return main(["export", "--storage", str(demo_root), "--site", SITE, *RANGE, *args])


def _rows(fmt: str, data: bytes) -> int:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).num_rows
    if fmt == "ndjson":
        return len([json.loads(line) for line in data.decode().splitlines()])
    return len(list(csv.reader(io.StringIO(data.decode())))) - 1  # less the header


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
def test_export_to_dash_writes_to_stdout_and_leaves_no_file(
        demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsysbinary: pytest.CaptureFixture[bytes], fmt: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert _export(demo_root, "--format", fmt, "-o", str(tmp_path / f"file.{fmt}")) == 0
    in_file = _rows(fmt, (tmp_path / f"file.{fmt}").read_bytes())
    capsysbinary.readouterr()
    assert _export(demo_root, "--format", fmt, "-o", "-") == 0
    out, err = capsysbinary.readouterr()
    assert in_file > 1000 and _rows(fmt, out) == in_file
    assert err.decode().strip().endswith(f"wrote {in_file} events to stdout")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"file.{fmt}"]


def test_parquet_to_a_terminal_is_refused_with_what_to_do(demo_root: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    main_fd, terminal_fd = os.openpty()
    with os.fdopen(terminal_fd, "wb") as terminal:
        code = export_command(load(flags={"storage": str(demo_root)}), SITE, "2025-11-20", "2025-11-26",
                              "parquet", "-", stdout=terminal)
    os.close(main_fd)
    assert code == 2 and "redirect stdout to a file or a pipe" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["stats"], ["export", *RANGE, "-o", "out.csv", "--format", "csv"]])
def test_an_unknown_site_exits_2_and_names_the_sites_there_are(
        demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([command[0], "--storage", str(demo_root), "--site", "nosuch.example", *command[1:]]) == 2
    out, err = capsys.readouterr()
    assert f"no events stored for site nosuch.example; sites with events: {SITE}" in err
    assert out == "" and not list(tmp_path.iterdir())


def test_a_range_without_events_exports_a_csv_with_its_header(
        demo_root: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["export", "--storage", str(demo_root), "--site", SITE, "--from", "2020-01-01",
                 "--to", "2020-01-02", "--format", "csv", "-o", "-"]) == 0
    header = capsysbinary.readouterr().out.decode().splitlines()
    assert len(header) == 1 and header[0].startswith("site,received_at,event_id,")


def test_the_stats_commands_engine_takes_the_memory_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from traceglider.config import load
    from traceglider.memory import duckdb_share
    from traceglider.stats.cli import _engine

    settings = load(env={"TG_STORAGE": str(tmp_path), "TG_STATS_MEMORY_MB": "300"})
    engine = _engine(settings)
    try:
        assert engine.memory_budget == 300 << 20
        assert engine.duckdb_memory == duckdb_share(300 << 20, settings.workers)
    finally:
        engine.close()


def test_the_command_spares_its_process_the_pandas_import(tmp_path: Path) -> None:
    """DuckDB imports pandas (installed here, for the tests) before binding any
    parameter: half a second and 85 MiB of every `traceglider stats`. The command's
    process keeps it out, and everything still works without it: demo-data writes and
    compacts Parquet through pyarrow (which looks for pandas too), stats read it."""
    import subprocess
    import sys

    store = str(tmp_path / "data")
    code = ("import sys; from traceglider import cli; "
            f"sys.argv = ['traceglider', 'demo-data', '--storage', {store!r}, '--site', {SITE!r}, "
            "'--events', '3000']; made = cli.entry(); "
            f"sys.argv = ['traceglider', 'stats', '--storage', {store!r}, '--site', {SITE!r}, '--period', '30d']; "
            "shown = cli.entry(); "
            "print('LOADED', sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules), made, shown)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr[-2000:]
    # pyarrow is there for demo-data's writing; pandas never
    assert "visitors" in out.stdout and out.stdout.strip().splitlines()[-1] == "LOADED ['pyarrow'] 0 0"
