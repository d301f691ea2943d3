"""Serving the built tracker: precompressed once, with an ETag and cache headers."""

from __future__ import annotations

import gzip
import hashlib
from functools import cached_property
from importlib import resources

import brotli
from starlette.requests import Request
from starlette.responses import Response

TRACKER_CACHE = "public, max-age=3600, stale-while-revalidate=86400"


class TrackerScript:
    def __init__(self, name: str = "t.min.js") -> None:
        self.name = name

    @cached_property
    def body(self) -> bytes:
        return resources.files("traceglider").joinpath("static", self.name).read_bytes()

    @cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    @cached_property
    def encoded(self) -> dict[str, bytes]:
        return {
            "br": brotli.compress(self.body, quality=11),
            "gzip": gzip.compress(self.body, compresslevel=9, mtime=0),
            "identity": self.body,
        }

    def response(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": TRACKER_CACHE,
            "Vary": "Accept-Encoding",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        accepted = {part.split(";")[0].strip() for part in request.headers.get("accept-encoding", "").split(",")}
        encoding = "br" if "br" in accepted else "gzip" if "gzip" in accepted else "identity"
        if encoding != "identity":
            headers["Content-Encoding"] = encoding
        return Response(self.encoded[encoding], media_type="application/javascript; charset=utf-8",
                        headers=headers)
