"""Durable writes: the whole new contents or the old, never a part, and no leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from traceglider import fsutil
from traceglider.fsutil import write_durably


def test_a_durable_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_durably(target, b"new contents", ".erasing")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_file_and_then_its_directory_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    write_durably(tmp_path / "a", b"x")
    assert synced == [str(tmp_path / "a.tmp"), str(tmp_path)]  # the data before the rename, then the rename


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "file"
    with pytest.raises(FileNotFoundError):
        write_durably(target, b"x")
    assert not target.exists()
