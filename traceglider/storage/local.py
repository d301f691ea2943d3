"""Local filesystem storage: atomic writes by temp file + rename (or link when the
name must not exist yet), fsynced so that a written object survives a power cut."""

from __future__ import annotations

import builtins
import errno
import os
import uuid
from pathlib import Path

from traceglider.errors import StorageError
from traceglider.fsutil import fsync_dir
from traceglider.storage.base import ObjectInfo

_TMP_SUFFIX = ".tmp"


class LocalStorage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(str(root).removeprefix("file://")).absolute()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key escapes the storage root: {key!r}")
        return path

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
        try:
            _make_dirs(path.parent, self.root)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if if_absent:
                try:
                    os.link(tmp, path)  # fails if the name exists: no second copy
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, path)
            fsync_dir(path.parent)
            return True
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise StorageError(f"cannot write {key}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        # Walk from the deepest existing directory named by the prefix.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base
        if not start.is_dir():
            return []
        found = []
        try:
            for dirpath, _dirs, files in os.walk(start):
                for name in files:
                    if name.startswith(".") or name.endswith(_TMP_SUFFIX):
                        continue
                    full = os.path.join(dirpath, name)
                    key = os.path.relpath(full, self.root).replace(os.sep, "/")
                    if key.startswith(prefix):
                        try:
                            found.append(ObjectInfo(key, os.path.getsize(full)))
                        except FileNotFoundError:
                            continue  # removed while we walked
        except OSError as exc:
            raise StorageError(f"cannot list {prefix}: {exc.strerror or exc}") from exc
        return sorted(found, key=lambda o: o.key)

    def delete(self, keys: builtins.list[str]) -> None:
        parents = set()
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
                parents.add(path.parent)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from exc
        # the parents are resolved paths (see _path), so is the root they stop at: a
        # storage path through a symlink would otherwise keep every empty directory
        root = self.root.resolve()
        for parent in parents:
            _remove_empty_dirs(parent, root)

    def health(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".health-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"{self.root} is not writable: {exc.strerror or exc}") from exc

    def duckdb_uri(self, key: str) -> str:
        return str(self.root / key)

    def duckdb_secret(self) -> None:
        """Local files need no credentials."""
        return None


def _make_dirs(path: Path, root: Path) -> None:
    """mkdir -p, fsyncing the parent of every directory created: a new `date=`
    directory must survive a power cut as surely as the file written into it."""
    # up past the root too: a fresh server's --storage /srv/analytics/tg-data may
    # name directories that do not exist yet
    missing = []
    while not path.is_dir() and path.parent != path:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        fsync_dir(directory.parent)


def _remove_empty_dirs(path: Path, root: Path) -> None:
    while path != root and path.is_relative_to(root):
        try:
            path.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                return
            raise
        path = path.parent
