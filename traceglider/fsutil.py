"""Small filesystem helpers for durable writes (a leaf module)."""

from __future__ import annotations

import os
from pathlib import Path


def write_durably(path: Path, data: bytes, tmp_suffix: str = ".tmp") -> None:
    """Replace `path` with `data` so that after a crash it holds the old contents or all
    of the new, never a part: a temporary file beside it (`tmp_suffix`), fsynced,
    renamed over it, and the directory fsynced so the rename itself survives."""
    tmp = path.with_name(path.name + tmp_suffix)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (files created, renamed or removed) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
