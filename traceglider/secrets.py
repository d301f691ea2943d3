"""The instance secret (signs sessions and visitor cookies, keys the cookieless ids,
derives the API token) and the API token.

When TG_SECRET is unset, a random secret is generated once and kept where every
collector of the deployment finds it and the readers of the data do not: on local
storage in a file of its own outside the data directory (TG_SECRET_FILE, by default
`<storage>.secret` beside it, mode 0600), since the data directory is what gets shared
with analysts, copied and backed up; on S3 as a private object in the bucket, so that
every collector and Lambda agree on it. Versions before this one kept it in the data
directory as `.secret`: that file is moved out on start (or, where the new place cannot
be written, still read, with a warning).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from traceglider.config import Settings
from traceglider.errors import ConfigError
from traceglider.fsutil import fsync_dir
from traceglider.storage.base import Storage

log = logging.getLogger(__name__)

SECRET_KEY = "_meta/secret"
LEGACY_FILE = ".secret"  # inside the data directory, where older versions kept it
SECRET_SUFFIX = ".secret"
MIN_SECRET = 32


def ensure_secret(settings: Settings, storage: Storage) -> Settings:
    """Settings with `secret` and `api_token` filled in."""
    if settings.secret is not None and len(settings.secret) < MIN_SECRET:
        raise ConfigError(f"invalid TG_SECRET: must be at least {MIN_SECRET} characters")
    secret = settings.secret or _stored_secret(settings, storage)
    token = settings.api_token or derive(secret, "api-token")
    return settings.replace(secret=secret, api_token=token)


def derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:40]


def secret_file(settings: Settings) -> Path | None:
    """Where the generated secret is kept on local storage (None on S3): TG_SECRET_FILE,
    or the data directory's path plus `.secret` (`./tg-data` -> `./tg-data.secret`)."""
    data = settings.data_dir
    if data is None:
        return None
    configured = settings.values.get("secret_file")
    if configured:
        return Path(str(configured)).expanduser().absolute()
    return data.with_name(data.name + SECRET_SUFFIX)


def _stored_secret(settings: Settings, storage: Storage) -> str:
    path = secret_file(settings)
    if settings.data_dir is not None and path is not None:
        return _local_secret(settings.data_dir, path)
    storage.put(SECRET_KEY, secrets.token_hex(32).encode(), if_absent=True)
    return _checked(storage.get(SECRET_KEY).decode().strip(), SECRET_KEY)


def _local_secret(data: Path, path: Path) -> str:
    if path.resolve().is_relative_to(data.resolve()):
        raise ConfigError(f"invalid TG_SECRET_FILE: {path} is inside the data directory {data}, "
                          "where readers of the data could read it")
    legacy = data / LEGACY_FILE
    if not path.exists():
        if legacy.exists():
            old = _checked(legacy.read_text().strip(), str(legacy))
            try:
                _create_secret_file(path, old)
            except OSError as exc:
                log.warning("the instance secret stays in %s, inside the data directory, where whoever "
                            "may read the data can read it: cannot write %s (%s). Set TG_SECRET_FILE to a "
                            "file outside the data directory that this user may write, or TG_SECRET",
                            legacy, path, exc.strerror or exc)
                return old
        else:
            try:
                _create_secret_file(path, secrets.token_hex(32))
            except OSError as exc:
                raise ConfigError(f"cannot keep the generated secret in {path} ({exc.strerror or exc}): set "
                                  "TG_SECRET_FILE to a file outside the data directory that this user may "
                                  "write, or TG_SECRET") from None
    secret = _checked(path.read_text().strip(), str(path))
    _keep_private(path)
    if legacy.exists():
        try:
            legacy.unlink()
            log.warning("moved the instance secret out of the data directory, where whoever may read "
                        "the data could read it: %s -> %s. Copies of the data directory made before may "
                        "still hold it (see docs/privacy.md)", legacy, path)
        except FileNotFoundError:
            pass  # another worker moved it this instant
        except OSError as exc:
            log.warning("could not delete the old copy of the instance secret %s: %s", legacy, exc)
    return secret


def _keep_private(path: Path) -> None:
    """A secret file others may read (copied in by hand, say) is made owner-only."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            path.chmod(0o600)
            log.warning("%s could be read by other users (mode %o); made it 0600", path, mode)
        except OSError as exc:
            log.warning("%s can be read by other users (mode %o) and cannot be changed: %s", path, mode, exc)


def _create_secret_file(path: Path, secret: str) -> None:
    """Write to a temp file (0600 from the start), fsync, then link into place: the
    secret file is either absent or complete, never empty (an empty secret would make a
    guessable token). Another process that won the race keeps its file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # another process may have won the race: keep theirs
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)


def _checked(secret: str, where: str) -> str:
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"the stored secret in {where} is shorter than {MIN_SECRET} characters; "
                          "delete it to generate a new one, or set TG_SECRET")
    return secret


if __name__ == "__main__":  # pragma: no cover - `python -m traceglider.secrets`
    from traceglider.config import load
    from traceglider.storage import open_storage

    _settings = load()
    print(ensure_secret(_settings, open_storage(_settings)).api_token)
