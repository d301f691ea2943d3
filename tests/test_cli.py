"""The command line as people use it: progress on stderr only on a terminal or when
asked for, quiet when piped; help for every flag with its default; `compact --date`
compacts that date only."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tests.helpers import row
from traceglider import demo_data
from traceglider.cli import build_parser, main
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import list_partitions, write_rows

SITE = "cli.example"
NOW = 1_764_244_800.0  # 2025-11-27 12:00 UTC
# tqdm's line: a rate, and elapsed<left once the total is known
RATE = re.compile(r"\d+(\.\d+)?(k?(event|partition|query|file)/s|s/(event|partition|query|file))")
TIME_LEFT = re.compile(r"\[\d\d:\d\d<\d\d:\d\d")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    demo_data.generate(LocalStorage(tmp_path / "data"), SITE, 3000, days=5, now=NOW, files_per_day=2)
    return tmp_path / "data"


COMMANDS = {
    "demo-data": ["demo-data", "--site", SITE, "--events", "20000", "--days", "3"],
    "compact": ["compact"],
    "export": ["export", "--site", SITE, "--from", "2025-11-20", "--to", "2025-11-30", "--format", "csv",
               "-o", "{tmp}/out.csv"],
    "stats": ["stats", "--site", SITE, "--period", "30d"],
    "forget": ["forget", "--visitor", "v1"],
}


def _run(command: str, root: Path, tmp: Path, *extra: str) -> int:
    argv = [a.format(tmp=tmp) for a in COMMANDS[command]]
    return main([argv[0], "--storage", str(root), *argv[1:], *extra])


@pytest.mark.parametrize("command", COMMANDS)
def test_progress_is_drawn_on_stderr_with_a_rate_and_time_left_when_asked(
        command: str, root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("traceglider.progress.MIN_INTERVAL", 0)  # every step drawn, however fast it goes
    assert _run(command, root, tmp_path, "--progress") == 0
    out, err = capsys.readouterr()
    assert RATE.search(err) and TIME_LEFT.search(err), err
    assert "\r" not in out and not RATE.search(out)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_piped_run_prints_no_progress(command: str, root: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(command, root, tmp_path) == 0  # stderr here is not a terminal
    out, err = capsys.readouterr()
    assert "\r" not in out + err and not RATE.search(out + err)


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every command and nested command (`goals add`) by its name."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found.update(_commands(sub, f"{prefix}{name} "))
    return found


def test_every_flag_has_help_and_shows_its_default() -> None:
    commands = _commands(build_parser())
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.dest == "help" or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, False):
                assert f"default: {action.default}" in text or f"default {action.default}" in text, \
                    f"{name} {action.option_strings} does not show its default {action.default!r}"
    export = " ".join(commands["export"].format_help().split())
    assert "parquet, ndjson or csv (default: parquet)" in export


def test_compact_with_a_date_compacts_that_date_only(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = LocalStorage(root)
    write_rows(storage, [row("late", site=SITE, when_us=int(NOW * 1_000_000) - 86_400_000_000)], "late")
    before = list_partitions(storage)
    assert main(["compact", "--storage", str(root), "--date", "2025-11-26"]) == 0
    after = list_partitions(storage)
    changed = sorted(d for (s, d), keys in after.items() if keys != before[(s, d)])
    assert changed == ["2025-11-26"]
    assert all(k.rsplit("/", 1)[1].startswith("cv-") for k in after[(SITE, "2025-11-26")])
    assert capsys.readouterr().out.strip().endswith("compacted 1 partition(s)")


def test_flags_for_settings_take_their_help_and_default_from_the_settings_table():
    from traceglider.cli import build_parser
    from traceglider.config import setting_named

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    helps = {a.dest: a.help for a in serve._actions}
    for name in ("storage", "host", "port", "workers"):
        setting = setting_named(name)
        assert helps[name].startswith(setting.help) and setting.env in helps[name]
        assert f"default {setting.default}" in helps[name]
