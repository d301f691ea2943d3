"""The generated instance secret on local storage: outside the data directory (which is
what gets shared with analysts, copied and backed up), owner-only, complete or absent,
its directory entry made durable through the one helper (`fsutil.fsync_dir`); and an
install whose secret older versions kept inside the data goes on with the same secret."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from traceglider import secrets
from traceglider.config import load
from traceglider.errors import ConfigError
from traceglider.secrets import ensure_secret
from traceglider.storage.local import LocalStorage


def _start(data: Path, **env: str):  # type: ignore[no-untyped-def]
    return ensure_secret(load(env={"TG_STORAGE": str(data), **env}), LocalStorage(data))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_generated_secret_is_kept_beside_the_data_never_inside_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = _start(data)
    kept = tmp_path / "data.secret"
    assert kept.read_text().strip() == settings.secret and _mode(kept) == 0o600
    inside = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
    assert not [p for p in inside if settings.secret in p.read_text(errors="ignore")]
    assert _start(data).secret == settings.secret  # the next start agrees


def test_the_secret_of_an_older_install_is_moved_out_of_the_data_directory(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = "o" * 64
    (data / ".secret").write_text(old + "\n")
    before = ensure_secret(load(env={"TG_STORAGE": str(data), "TG_SECRET": old}), LocalStorage(data))
    with caplog.at_level(logging.WARNING, logger="traceglider.secrets"):
        after = _start(data)
    # the same secret, so the same API token, sessions and visitor cookies
    assert after.secret == old and after.api_token == before.api_token
    assert not (data / ".secret").exists()
    assert (tmp_path / "data.secret").read_text().strip() == old and _mode(tmp_path / "data.secret") == 0o600
    assert any("moved the instance secret" in r.getMessage() for r in caplog.records)
    assert _start(data).secret == old


def test_an_older_install_still_starts_where_the_new_place_cannot_be_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".secret").write_text("o" * 64 + "\n")
    (tmp_path / "a-file").write_text("")
    with caplog.at_level(logging.WARNING, logger="traceglider.secrets"):
        settings = _start(data, TG_SECRET_FILE=str(tmp_path / "a-file" / "secret"))  # cannot be created
    assert settings.secret == "o" * 64 and (data / ".secret").exists()
    assert any("TG_SECRET_FILE" in r.getMessage() for r in caplog.records)


def test_a_new_install_refuses_to_start_without_a_place_for_the_secret(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="TG_SECRET_FILE"):
        _start(tmp_path / "data", TG_SECRET_FILE=str(tmp_path / "a-file" / "secret"))
    assert not (tmp_path / "data" / ".secret").exists()


def test_a_secret_file_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(ConfigError, match="invalid TG_SECRET_FILE: .* inside the data directory"):
        _start(data, TG_SECRET_FILE=str(data / "keys" / "secret"))


def test_a_configured_secret_file_is_used_and_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secret"
    path.parent.mkdir()
    path.write_text("k" * 64 + "\n")
    path.chmod(0o644)  # copied in by hand
    assert _start(tmp_path / "data", TG_SECRET_FILE=str(path)).secret == "k" * 64
    assert _mode(path) == 0o600
    assert not (tmp_path / "data.secret").exists()


def test_the_new_secret_files_directory_is_fsynced_by_fsutil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    real = secrets.fsync_dir
    monkeypatch.setattr(secrets, "fsync_dir", lambda path: (synced.append(path), real(path)))
    secrets.ensure_secret(load(env={"TG_STORAGE": str(tmp_path / "data")}), LocalStorage(tmp_path / "data"))
    assert synced == [tmp_path]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.secret"]  # the temporary is gone
    assert len((tmp_path / "data.secret").read_text().strip()) == 64
