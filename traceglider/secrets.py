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
from traceglider.storage.base import Storage

SECRET_KEY = "_meta/secret"


def ensure_secret(settings: Settings, storage: Storage) -> Settings:
    """Settings with `secret` and `api_token` filled in."""
    secret = settings.secret or _stored_secret(settings, storage)
    token = settings.api_token or derive(secret, "api-token")
    return settings.replace(secret=secret, api_token=token)


def derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:40]


def _stored_secret(settings: Settings, storage: Storage) -> str:
    if settings.data_dir is not None:
        path = Path(settings.data_dir) / ".secret"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(fresh + "\n")
        return fresh
    storage.put(SECRET_KEY, secrets.token_hex(32).encode(), if_absent=True)
    return storage.get(SECRET_KEY).decode().strip()
