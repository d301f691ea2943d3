"""The instance secret (signs sessions, derives the API token) and the API token.

When TG_SECRET is unset, a random secret is generated once and kept with the data:
in the data directory (mode 0600) for local storage, or as a private object in the
bucket for S3, so that every collector and Lambda of one deployment agree on it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from traceglider.config import Settings
from traceglider.errors import ConfigError
from traceglider.fsutil import fsync_dir
from traceglider.storage.base import Storage

SECRET_KEY = "_meta/secret"
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


def _stored_secret(settings: Settings, storage: Storage) -> str:
    if settings.data_dir is not None:
        path = Path(settings.data_dir) / ".secret"
        if not path.exists():
            _create_secret_file(path)
        return _checked(path.read_text().strip(), str(path))
    storage.put(SECRET_KEY, secrets.token_hex(32).encode(), if_absent=True)
    return _checked(storage.get(SECRET_KEY).decode().strip(), SECRET_KEY)


def _create_secret_file(path: Path) -> None:
    """Write to a temp file, fsync, then link into place: the secret file is either
    absent or complete, never empty (an empty secret would make a guessable token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".secret.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
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
