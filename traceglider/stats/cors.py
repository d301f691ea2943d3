"""CORS for the stats and sites APIs, for the origins `TG_STATS_CORS_ORIGINS` allows:
a dashboard tool calling the API from its own page with the token.

The token travels in `Authorization`, never in a cookie, so no credentials are
allowed; a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
here, before any route, with 204 for an allowed origin and 403 otherwise. The
collector's own CORS (`/collect`, `/api/event`: the sites' pages, with cookies) is
`ingest/edge.py`'s and is not touched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIXES = ("/api/v1/stats/", "/api/v2/", "/api/v1/sites", "/api/v1/export")
ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class StatsCORS:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.any = "*" in origins
        self.origins = frozenset(o for o in origins if o != "*")

    def allowed(self, origin: str) -> bool:
        return self.any or origin.lower() in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(origin, send)
            return
        if not self.allowed(origin):
            await self.app(scope, receive, send)  # the browser refuses the answer itself
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"access-control-allow-origin", b"vary")]
                headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, origin: str, send: Send) -> None:
        if self.allowed(origin):
            status, body = 204, b""
            headers = [(b"access-control-allow-origin", origin.encode("latin-1")),
                       (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                       (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                       (b"access-control-max-age", MAX_AGE.encode()), (b"vary", b"Origin")]
        else:
            status = 403
            body = json.dumps({"error": "This origin may not call the stats API from a browser: "
                                        "allow it with TG_STATS_CORS_ORIGINS"}).encode()
            headers = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
