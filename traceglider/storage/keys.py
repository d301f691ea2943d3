"""Values as storage path components: the one check that a name built from data fits
every backend (a file name on local disk, an object key on S3) and means nothing else.

A component that fails here is refused before anything is written, so a value that
slipped past the edge can never become a storage "outage" retried forever.
"""

from __future__ import annotations

import re

# A file or directory name on ext4, XFS, btrfs, APFS and NTFS.
MAX_COMPONENT_BYTES = 255
# An S3 object key (UTF-8), the tighter of our backends' whole-key limits.
MAX_KEY_BYTES = 1024
# Control characters, separators and the characters Windows and DuckDB's Hive
# partition parser give meaning to.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\*?\[\]{}\"<>|]")


class InvalidKey(ValueError):
    """A value cannot be a path component or key: permanent, never worth a retry."""


def path_component(value: str, name: str | None = None) -> str:
    """`value`, or `name=value` (a Hive partition directory), checked to be one safe
    file name."""
    component = value if name is None else f"{name}={value}"
    if not value or value in (".", "..") or _UNSAFE.search(value):
        raise InvalidKey(f"{value[:80]!r} cannot be a path component")
    if len(component.encode()) > MAX_COMPONENT_BYTES:
        raise InvalidKey(f"{component[:60]!r}...: longer than {MAX_COMPONENT_BYTES} bytes")
    return component


def checked_key(key: str) -> str:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"key {key[:80]!r}...: longer than {MAX_KEY_BYTES} bytes")
    return key
