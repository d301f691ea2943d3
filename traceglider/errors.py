"""Errors that carry their HTTP status; one handler in `app` renders them as JSON."""

from __future__ import annotations


class TGError(Exception):
    """Base error: a message a user can act on, and the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(TGError):
    status = 400


class Unauthorized(TGError):
    status = 401


class Forbidden(TGError):
    status = 403


class NotFound(TGError):
    status = 404


class PayloadTooLarge(TGError):
    status = 413


class UnsupportedMediaType(TGError):
    status = 415


class TooManyRequests(TGError):
    status = 429


class Unavailable(TGError):
    """The server cannot keep what it was sent right now; the client should retry."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ConfigError(Exception):
    """A setting has a bad value; the CLI prints it as one line and exits 2."""


class StorageError(Exception):
    """Storage could not complete an operation (unreachable, refused, full)."""


class WriteConflict(StorageError):
    """A conditional write met a concurrent write of the same key (S3's 409): whether
    the object will exist is not known yet; try again a moment later."""
