"""The generated secret file: complete or absent, private, and its directory entry
made durable through the one helper (`fsutil.fsync_dir`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from traceglider import secrets
from traceglider.config import load
from traceglider.storage.local import LocalStorage


def test_the_new_secret_files_directory_is_fsynced_by_fsutil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    real = secrets.fsync_dir
    monkeypatch.setattr(secrets, "fsync_dir", lambda path: (synced.append(path), real(path)))
    secrets.ensure_secret(load(env={"TG_STORAGE": str(tmp_path)}), LocalStorage(tmp_path))
    assert synced == [tmp_path]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".secret"]  # the temporary is gone
    assert len((tmp_path / ".secret").read_text().strip()) == 64
