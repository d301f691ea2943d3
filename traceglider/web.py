"""Helpers every router shares: the bearer-token check and the one renderer of errors
as JSON (the app's exception handlers and the routes that catch their own errors both
answer through `error_response`). A leaf: it imports only the errors, so any router may
use it without importing another router. (Whether a request came over HTTPS is
`proxies.is_secure`: the collect path on Lambda must not import FastAPI.)"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse

from traceglider.errors import StorageError, TGError, Unauthorized

if TYPE_CHECKING:
    from starlette.requests import Request

    from traceglider.config import Settings

MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
INVALID_KEY = ("Invalid API key or site ID. Please make sure you're using a valid API key "
               "with access to the site you've requested.")
# A refusal says when to come back, even where the error did not.
DEFAULT_RETRY_AFTER = "5"


def api_token(settings: Settings) -> str | None:
    """TG_API_TOKEN, or the one `traceglider.secrets.ensure_secret` derived from TG_SECRET."""
    token = settings.api_token
    return str(token) if token else None


def check_bearer(settings: Settings, request: Request) -> None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise Unauthorized(MISSING_KEY)
    expected = api_token(settings)
    if not expected or not hmac.compare_digest(header[7:].strip().encode(), expected.encode()):
        raise Unauthorized(INVALID_KEY)


def error_response(exc: TGError | StorageError, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` with the error's status (Plausible's shape, which every route
    uses); a storage failure is a 503; every 429 and 503 carries Retry-After."""
    if isinstance(exc, TGError):
        status, message, extra = exc.status, exc.message, exc.headers
    else:
        status, message, extra = 503, f"storage unavailable: {exc}", {}
    merged = {**(headers or {}), **extra}
    if status in (429, 503):
        merged.setdefault("Retry-After", DEFAULT_RETRY_AFTER)
    return JSONResponse({"error": message}, status_code=status, headers=merged)


def plausible_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors of a route, storage failures included, answered by `error_response`, for
    plain and async routes."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except (TGError, StorageError) as exc:
                return error_response(exc)
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (TGError, StorageError) as exc:
            return error_response(exc)
    return wrapper
