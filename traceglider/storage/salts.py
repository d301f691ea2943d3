"""The cookieless salts: one random 32-byte value per UTC day, kept where the readers
of the data cannot reach them, and destroyed once their day is over.

They live in a storage of their own (`TG_SALTS`): by default a sibling of the data,
never inside it (`./tg-data` -> `./tg-data.salts/`, `s3://bucket/prefix` ->
`s3://bucket/prefix.salts/`), so that whoever may read the events (a DuckDB user, an
Athena role, a backup of the data directory) does not also hold the salts. Every
collector and Lambda of one deployment shares them: the first writer of a day wins.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from traceglider.dates import previous_date
from traceglider.errors import ConfigError, StorageError
from traceglider.storage.base import Storage

if TYPE_CHECKING:
    from traceglider.config import Settings

log = logging.getLogger(__name__)

SALT_PREFIX = "salts/"
LEGACY_PREFIX = "_salts/"  # where versions before 0.2 kept them, beside the events
SALT_BYTES = 32
SALT_RETRY_SECONDS = 60.0
SALTS_SUFFIX = ".salts"


def salt_location(settings: Settings) -> str:
    """Where the salts live: `TG_SALTS`, or the data location plus `.salts`."""
    configured = settings.values.get("salts")
    if configured:
        return str(configured)
    storage = str(settings.storage).rstrip("/")
    if storage.startswith("s3://"):
        bucket, _, prefix = storage.removeprefix("s3://").partition("/")
        # A bucket-root data set has no sibling prefix: a top-level one is the nearest.
        return f"s3://{bucket}/{prefix}{SALTS_SUFFIX}" if prefix else f"s3://{bucket}/_traceglider{SALTS_SUFFIX}"
    data = Path(storage.removeprefix("file://")).absolute()
    return str(data.with_name(data.name + SALTS_SUFFIX))


def check_apart(settings: Settings) -> None:
    """A ConfigError when the salts would sit inside the data directory."""
    location, data = salt_location(settings), settings.data_dir
    if (data is not None and not location.startswith("s3://")
            and Path(location.removeprefix("file://")).absolute().is_relative_to(data)):
        raise ConfigError(f"invalid TG_SALTS: {location} is inside the data directory {data}, "
                          "where readers of the data could reach the salts")


def open_salt_storage(settings: Settings,
                      open_s3: Callable[[str], Storage] | None = None) -> Storage:
    """The salts' own storage; `open_s3(url)` opens an S3 location (the Lambda passes its
    light client), boto3's otherwise."""
    check_apart(settings)
    location = salt_location(settings)
    if location.startswith("s3://"):
        if open_s3 is not None:
            return open_s3(location)
        from traceglider.storage.s3 import S3Storage

        return S3Storage(location, endpoint_url=settings.s3_endpoint_url, timeout=settings.storage_timeout)
    from traceglider.storage.local import LocalStorage

    path = Path(location.removeprefix("file://")).absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # only the collector's user
    except OSError:
        pass  # unreachable for now: the store falls back to a process-local salt
    return LocalStorage(path)


class SaltStore:
    """The day's salt, shared through the salt storage. If it cannot be reached, a
    process-local salt is used for the day (ids from this process then differ from
    other collectors') and the storage is tried again every `SALT_RETRY_SECONDS`."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.monotonic,
                 legacy: Storage | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.legacy = legacy  # the data storage, where old versions left salts to delete
        self._salts: dict[str, bytes] = {}
        self._local: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def salt(self, day: str) -> bytes:
        found = self._salts.get(day)
        if found is not None:
            return found
        with self._lock:
            found = self._salts.get(day)
            if found is not None:
                return found
            local = self._local.get(day)
            if local and self.clock() < local[1]:
                return local[0]
            try:
                found = self._load(day)
            except StorageError:
                log.warning("salt storage unreachable; using a process-local salt for now")
                salt = local[0] if local else secrets.token_bytes(SALT_BYTES)
                self._local[day] = (salt, self.clock() + SALT_RETRY_SECONDS)
                return salt
            self._local.pop(day, None)
            self._forget_before(day)
            self._salts[day] = found
            return found

    def _load(self, day: str) -> bytes:
        key = SALT_PREFIX + day
        self.storage.put(key, secrets.token_bytes(SALT_BYTES), if_absent=True)
        salt = self.storage.get(key)  # the first writer's, whoever that was
        if len(salt) != SALT_BYTES:
            raise StorageError(f"{key} is not a salt")
        purge_old_salts(self.storage, day)
        if self.legacy is not None:
            try:
                purge_legacy_salts(self.legacy)
            except StorageError:
                log.warning("could not delete the salts older versions kept beside the data")
        return salt

    def _forget_before(self, day: str) -> None:
        for old in [d for d in self._salts if d < previous_date(day)]:
            del self._salts[old]


def purge_old_salts(storage: Storage, today: str) -> list[str]:
    """Delete the salts of days before yesterday; returns the keys deleted. Called on
    the first salt of each day."""
    keep_from = previous_date(today)
    old = [info.key for info in storage.list(SALT_PREFIX) if info.key[len(SALT_PREFIX):] < keep_from]
    if old:
        storage.delete(old)
    return old


def purge_legacy_salts(storage: Storage) -> list[str]:
    """Delete every salt that versions before this one kept beside the events
    (`_salts/` in the data storage), where readers of the data could reach them.
    Called by each maintenance round and at the first salt of each day."""
    old = [info.key for info in storage.list(LEGACY_PREFIX)]
    if old:
        storage.delete(old)
    return old
