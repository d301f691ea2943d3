"""The storage interface: a flat key space of immutable objects, local or S3.

Keys are `/`-separated and relative to the configured root, such as
`events/site=example.com/date=2026-11-27/<name>.parquet`. Core code only sees this
interface; the backends are one module each and the only ones to import their SDK.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage(Protocol):
    url: str

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Store `data` under `key` atomically. With `if_absent`, an existing object is
        kept and False is returned, so a retried write never makes a second copy."""

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    def delete(self, keys: builtins.list[str]) -> None:
        """Remove objects; keys that are already gone are not an error."""

    def health(self) -> None:
        """Return when storage is reachable and writable; raise StorageError if not."""

    def duckdb_uri(self, key: str) -> str:
        """The path or URL under which DuckDB reads `key` (globs allowed)."""

    def duckdb_secret(self) -> dict[str, str] | None:
        """Options of the DuckDB S3 secret that reads these URIs (None: local paths)."""
