"""Settings: flags beat env beat file; bad values are one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from traceglider.config import SETTINGS, load, markdown_table
from traceglider.errors import ConfigError


def test_defaults():
    settings = load(env={})
    assert (settings.storage, settings.cookie_name, settings.cookie_days) == ("./tg-data", "tg_vid", 395)
    assert (settings.flush_seconds, settings.flush_events, settings.sites) == (10.0, 10000, ())


def test_flags_beat_env_beat_file(tmp_path: Path):
    config = tmp_path / "tg.toml"
    config.write_text('storage = "/from/file"\nflush_events = 5\nsites = ["a.com", "b.com"]\nport = 9000\n')
    settings = load(flags={"port": "9100"}, env={"TG_CONFIG": str(config), "TG_STORAGE": "/from/env"})
    assert settings.storage == "/from/env"  # env beats file
    assert settings.port == 9100  # flag beats file
    assert settings.flush_events == 5 and settings.sites == ("a.com", "b.com")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TG_FLUSH_SECONDS": "soon"}, "invalid TG_FLUSH_SECONDS"),
        ({"TG_FLUSH_EVENTS": "0"}, "invalid TG_FLUSH_EVENTS: must be a whole number greater than 0"),
        ({"TG_COOKIE_DAYS": "500"}, "invalid TG_COOKIE_DAYS: must be from 1 to 400"),
        ({"TG_STORAGE": "ftp://x"}, "invalid TG_STORAGE"),
        ({"TG_STORAGE": "s3://"}, "invalid TG_STORAGE: an s3:// URL needs a bucket"),
        ({"TG_PORT": "70000"}, "invalid TG_PORT"),
        ({"TG_MODE": "cloud"}, "invalid TG_MODE: must be 'server' or 'lambda'"),
        ({"TG_STORE_USER_AGENT": "maybe"}, "invalid TG_STORE_USER_AGENT: must be true or false"),
        ({"TG_CONFIG": "/does/not/exist.toml"}, "cannot read config file"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(env=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path):
    config = tmp_path / "tg.toml"
    config.write_text("stroage = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'stroage'"):
        load(env={"TG_CONFIG": str(config)})


def test_the_cli_prints_one_line_and_exits_2_on_a_bad_setting(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "traceglider", "serve", "--port", "http"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TG_STORAGE": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["traceglider: invalid --port: wrong type (got 'http')"]


def test_every_setting_is_documented():
    docs = Path(__file__).parents[1].joinpath("docs", "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in docs, f"{setting.env} is missing from docs/configuration.md"
    assert markdown_table() in docs, "docs/configuration.md is out of date: run `make docs`"


def test_sites_are_normalised_as_event_sites_are():
    assert load(env={"TG_SITES": "www.Example.com, shop.example.org,example.com"}).sites == (
        "example.com", "shop.example.org")
    with pytest.raises(ConfigError, match="invalid TG_SITES: site: not a valid site domain"):
        load(env={"TG_SITES": "exa mple.com"})


def test_a_short_secret_is_refused(tmp_path: Path):
    from traceglider.secrets import ensure_secret
    from traceglider.storage.local import LocalStorage

    data = tmp_path / "data"
    with pytest.raises(ConfigError, match="at least 32"):
        ensure_secret(load(env={"TG_SECRET": "short"}), LocalStorage(data))
    (tmp_path / "data.secret").write_text("")  # what a crash mid-write could have left
    with pytest.raises(ConfigError, match="shorter than 32"):
        ensure_secret(load(env={"TG_STORAGE": str(data)}), LocalStorage(data))


def test_a_generated_secret_is_kept_and_reused(tmp_path: Path):
    from traceglider.secrets import ensure_secret
    from traceglider.storage.local import LocalStorage

    data = tmp_path / "data"
    first = ensure_secret(load(env={"TG_STORAGE": str(data)}), LocalStorage(data))
    again = ensure_secret(load(env={"TG_STORAGE": str(data)}), LocalStorage(data))
    assert len(first.secret) == 64 and first.secret == again.secret and first.api_token == again.api_token
    assert (tmp_path / "data.secret").stat().st_mode & 0o777 == 0o600


def test_the_typed_settings_module_is_generated_from_the_table():
    from traceglider import config

    generated = (Path(config.__file__).with_name("settings_types.py")).read_text()
    assert generated == config.typed_attributes(), "run `python -m traceglider.config` to regenerate it"


def test_every_setting_is_a_typed_attribute_and_nothing_else_is():
    from typing import get_type_hints

    from traceglider import config
    from traceglider.proxies import TrustedProxies
    from traceglider.settings_types import SettingsAttributes

    hints = get_type_hints(SettingsAttributes, {"TrustedProxies": TrustedProxies})
    assert list(hints) == [s.name for s in config.SETTINGS]
    assert hints["workers"] is int and hints["sites"] == tuple[str, ...]
    assert hints["retention_days"] == int | None  # no default: None until set
    settings = load(env={"TG_WORKERS": "3"})
    assert settings.workers == 3 and settings.retention_days is None
    with pytest.raises(AttributeError):
        settings.no_such_setting  # noqa: B018 - mypy refuses it too


def test_the_log_level_comes_from_the_settings_table(monkeypatch, tmp_path: Path):
    from traceglider import cli

    config_file = tmp_path / "tg.toml"
    config_file.write_text('log_level = "warning"\n')
    monkeypatch.setenv("TG_CONFIG", str(config_file))
    assert cli._log_level() == "WARNING"
    monkeypatch.setenv("TG_LOG_LEVEL", "loud")
    assert cli._log_level() == "INFO"
