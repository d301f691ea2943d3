"""What the HTTP edge decides before parsing: body size and type, the client's
address, CORS and site checks, and rate limits."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from traceglider.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType
from traceglider.ingest.request import MAX_BODY_BYTES

log = logging.getLogger("traceglider.ingest")

if TYPE_CHECKING:  # only annotations: the Lambda /collect path runs these checks without Starlette
    from starlette.requests import Request

ACCEPTED_TYPES = ("application/json", "text/plain")
PREFLIGHT_MAX_AGE = "86400"


def check_content_type(request: Request) -> None:
    check_media_type(request.headers.get("content-type", ""))


def check_media_type(content_type: str) -> None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"content-type must be application/json or text/plain, not {kind[:80] or 'missing'}"
        )


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read with a hard cap: never more than `limit` bytes are held."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body is larger than {limit} bytes")
        except ValueError:
            pass
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def site_allowed(site: str, sites: tuple[str, ...]) -> bool:
    return not sites or site in sites


@lru_cache(maxsize=1024)  # a collector sees few origins
def origin_allowed(origin: str | None, sites: tuple[str, ...], own_host: str | None) -> bool:
    """An origin may send if it is a configured site or a subdomain of one (or any
    origin when no sites are configured, or our own origin)."""
    if origin is None or not sites:
        return True
    try:
        host = (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return False
    if own_host and host == own_host.split(":")[0].lower():
        return True
    host = host.removeprefix("www.")
    return any(host == site.split(":")[0] or host.endswith("." + site.split(":")[0]) for site in sites)


def host_of_site(host: str, site: str) -> bool:
    """`host` (a page's) belongs to `site`: the site itself, www. or a subdomain."""
    site_host = site.split(":")[0]
    host = host.lower().removeprefix("www.")
    return host == site_host or host.endswith("." + site_host)


def _url_host(value: str) -> str | None:
    try:
        return (urlsplit(value).hostname or "").lower() or None
    except ValueError:
        return None


def _own_host(own: str | None, host: str) -> bool:
    return bool(own) and host == (own or "").split(":")[0].lower()


def check_page_of_site(request: Request, sites: list[str]) -> None:
    """A consent change must come from a page of the site it is for, whatever
    TG_SITES says: otherwise any page on the web could auto-submit a form that sets
    or clears a visitor's cookie for someone else's site. The page is known from
    Origin, else Referer; a browser request that names neither but says cross-site
    (Sec-Fetch-Site) is refused too. A client that is not a browser sends none and
    cannot set a cookie in anyone's browser, so it passes."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = _url_host(origin) if origin != "null" else None
        where = "this origin"
    else:
        referer = request.headers.get("referer")
        host = _url_host(referer) if referer else None
        where = "this page"
        if referer is None:
            if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
                raise Forbidden("a consent change must come from a page of the site it is for")
            return
    own = request.headers.get("host")
    if host is None or not (_own_host(own, host) or any(host_of_site(host, site) for site in sites)):
        raise Forbidden(f"{where} is not a page of {', '.join(sites)[:200]}: "
                        "a consent change must come from a page of the site it is for")


def check_origin_sends_for(origin: str | None, own: str | None, sites: list[str],
                           configured: tuple[str, ...]) -> None:
    """With TG_SITES set, a page of one configured site may not send events for
    another: the Origin must belong to one of the sites named (or be our own host,
    `own`)."""
    if not configured or not origin or origin == "null":
        return
    host = _url_host(origin)
    if host is None or not (_own_host(own, host) or any(host_of_site(host, site) for site in sites)):
        raise Forbidden("this origin may not send events for " + ", ".join(sites)[:200])


def check_origin(request: Request, sites: tuple[str, ...]) -> str | None:
    return checked_origin(request.headers.get("origin"), request.headers.get("host"), sites)


def checked_origin(origin: str | None, host: str | None, sites: tuple[str, ...]) -> str | None:
    """The request's Origin if it may send events here, else Forbidden."""
    if origin == "null":  # sandboxed iframes and file: pages
        origin = None if not sites else origin
    if not origin_allowed(origin, sites, host):
        raise Forbidden("this origin may not send events here")
    return origin


def allow_origin(request: Request, sites: tuple[str, ...]) -> str | None:
    """Check the origin and remember its CORS headers on the request, so that error
    answers carry them too (the app's error handler adds `request.state.cors`)."""
    origin = check_origin(request, sites)
    request.state.cors = cors_headers(origin)
    return origin


def cors_headers(origin: str | None, preflight: bool = False) -> dict[str, str]:
    if not origin:
        return {}
    # Credentials so the collector's own first-party cookie travels with fetch and
    # beacon; that requires echoing the origin rather than '*'.
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        # The tracker waits as long as a 429 or 503 asks before it sends the batch again.
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }
    if preflight:
        headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
        headers["Access-Control-Allow-Headers"] = "Content-Type"
        headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return headers
