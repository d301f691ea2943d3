"""The dashboard: a token login, signed session cookies, revocable share links, and
read-only JSON endpoints the page's script calls. No event data is ever put into
HTML on the server; the script writes it with textContent."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from traceglider import site_config
from traceglider.dashboard.answers import Answers, sites_in
from traceglider.dashboard.panels import PREPARED_KINDS, PROFILE_KINDS, profile_answer
from traceglider.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    StorageError,
    TGError,
    Unauthorized,
    UnsupportedMediaType,
)
from traceglider.proxies import client_ip, is_secure
from traceglider.ratelimit import RateLimiter
from traceglider.sites import site_id as parse_site_id
from traceglider.stats.api import handle, params_of
from traceglider.web import api_token, plausible_errors

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.stats.engine import Engine
    from traceglider.storage.base import Storage

HERE = Path(__file__).parent
COOKIE = "tg_dash"
SESSION_DAYS = 30
SHARES_PREFIX = "_shares/"
SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Only files that exist: a name listed without its file was a 500 (login.css was).
STATIC = {"dashboard.js": "application/javascript", "manage.js": "application/javascript",
          "dashboard.css": "text/css"}
KINDS = ("aggregate", "timeseries", "breakdown", "realtime", "goals", "funnel", "navigation",
         "props", "config")


def _key(settings: Settings) -> bytes:
    """The session key: from the secret and the API token both, so that rotating
    TG_API_TOKEN (or the secret) ends every session signed before."""
    secret = settings.secret or ""
    token = api_token(settings) or ""
    return hashlib.sha256(b"traceglider dashboard session\0" + str(secret).encode() + b"\0"
                          + str(token).encode()).digest()


def sign(settings: Settings, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":")).encode().hex()
    mac = hmac.new(_key(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def unsign(settings: Settings, value: str, now: float) -> dict[str, Any] | None:
    """The payload of a cookie we signed, unless forged or expired at `now`."""
    body, _, mac = value.partition(".")
    good = hmac.new(_key(settings), body.encode(), hashlib.sha256).hexdigest()
    if not mac or not hmac.compare_digest(mac, good):
        return None
    try:
        payload = json.loads(bytes.fromhex(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < now:
        return None
    return payload


ENDED_PREFIX = "_sessions/ended/"
ENDED_CACHE_SECONDS = 5.0
LOGIN_TRIES_PER_MINUTE = 10


class EndedSessions:
    """Sessions ended by a logout, kept in storage (`_sessions/ended/<sid>`) so that
    every worker and Lambda refuses them; a lookup is cached for a few seconds, an
    ending is known to this process at once. Entries go when the session would have
    expired anyway."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.clock = clock  # wall time: the sessions' expiry, as in their cookies
        self._known: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def has(self, sid: str) -> bool:
        if not SESSION_ID.match(sid):
            return False  # sessions signed before this version carry none
        now = time.monotonic()
        with self._lock:
            found = self._known.get(sid)
        if found is not None and (found[0] or now < found[1]):
            return found[0]
        try:
            self.storage.get(ENDED_PREFIX + sid)
            ended = True
        except StorageError:
            ended = False
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[sid] = (ended, now + ENDED_CACHE_SECONDS)
        return ended

    def end(self, sid: str, expires: int) -> None:
        if not SESSION_ID.match(sid):
            return
        with self._lock:
            self._known[sid] = (True, float("inf"))
        self.storage.put(ENDED_PREFIX + sid, str(expires).encode())
        try:
            now = self.clock()
            old = [info.key for info in self.storage.list(ENDED_PREFIX)
                   if _expired(self.storage, info.key, now)]
            if old:
                self.storage.delete(old)
        except StorageError:
            pass  # tidied at the next logout


def _expired(storage: Storage, key: str, now: float) -> bool:
    try:
        return int(storage.get(key) or b"0") < now
    except (StorageError, ValueError):
        return False


def check_same_origin(request: Request) -> None:
    """A change made from the dashboard comes from the dashboard's own page: the
    session cookie is SameSite=Strict already, and this refuses a request another
    origin sends even where a browser would attach it (a sibling subdomain)."""
    origin = request.headers.get("origin")
    host = (request.headers.get("host") or "").lower()
    if origin is not None:
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            netloc = ""
        if netloc != host:
            raise Forbidden("changes to share links must come from the dashboard itself")
    elif request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("changes to share links must come from the dashboard itself")


def _page(name: str) -> HTMLResponse:
    html = (HERE / "templates" / name).read_text(encoding="utf-8")
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _json_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`plausible_errors` for an async route: a TGError answers with its status."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except TGError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        except StorageError as exc:
            return JSONResponse({"error": f"storage unavailable: {exc}"}, status_code=503)
    return wrapper


def dashboard_router(settings: Settings, storage: Storage, get_engine: Callable[[], Engine],
                     answers: Answers | None = None, clock: Callable[[], float] = time.time) -> APIRouter:
    """The dashboard's routes over the app's engine and, when it keeps them, its
    prepared answers (None: every panel computed while the browser waits); `clock`
    (the app's) dates sessions and share links."""
    router = APIRouter(include_in_schema=False)
    login_limiter = RateLimiter(LOGIN_TRIES_PER_MINUTE)

    ended = EndedSessions(storage, clock)

    def session(request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(COOKIE)
        payload = unsign(settings, raw, clock()) if raw else None
        if payload and ended.has(str(payload.get("sid", ""))):
            return None  # logged out: the cookie a browser may still hold is dead
        if payload and payload.get("share"):
            share = read_share(payload["share"])
            if share is None:  # revoked
                return None
            payload["site"] = share["site"]
        return payload

    def read_share(share_id: str) -> dict[str, Any] | None:
        if not SHARE_ID.match(share_id):
            return None
        try:
            data = json.loads(storage.get(f"{SHARES_PREFIX}{share_id}.json"))
        except Exception:  # noqa: BLE001 - missing or unreadable: not a valid link
            return None
        return data if isinstance(data, dict) and data.get("site") else None

    def set_cookie(response: Response, request: Request, payload: dict[str, Any]) -> None:
        payload = {**payload, "exp": int(clock()) + SESSION_DAYS * 86400,
                   "sid": secrets.token_urlsafe(16)}
        response.set_cookie(COOKIE, sign(settings, payload), max_age=SESSION_DAYS * 86400,
                            httponly=True, samesite="strict", path="/",
                            secure=is_secure(request, settings.trusted_proxies))

    @router.get("/dashboard")
    def dashboard(request: Request) -> Response:
        if session(request) is None:
            return _page("login.html")
        return _page("dashboard.html")

    @router.post("/dashboard/login")
    async def login(request: Request) -> Response:
        # Guessing the token: ten wrong tries a minute per address, then 429 for every
        # try (a right one too) until the minute has passed. Right tries cost nothing:
        # people who log in often, or share an address, are never locked out.
        address = client_ip(request, settings.trusted_proxies)
        if login_limiter.exhausted(address):
            try:
                login_limiter.check(address)
            except TGError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        expected = api_token(settings)
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            try:
                login_limiter.check(address)
            except TGError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
            failed = _page("login.html")
            failed.status_code = 401
            return failed
        response = RedirectResponse("/dashboard", status_code=303, headers=SECURITY_HEADERS)
        set_cookie(response, request, {"role": "owner"})
        return response

    @router.post("/dashboard/logout")
    def logout(request: Request) -> Response:
        raw = request.cookies.get(COOKIE)
        payload = unsign(settings, raw, clock()) if raw else None
        if payload and payload.get("sid"):
            ended.end(str(payload["sid"]), int(payload.get("exp", 0)))
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/share/{share_id}")
    def open_share(share_id: str, request: Request) -> Response:
        share = read_share(share_id)
        if share is None:
            return JSONResponse({"error": "This link was revoked or never existed"}, status_code=404)
        response = RedirectResponse(f"/dashboard#site={share['site']}", status_code=303)
        set_cookie(response, request, {"share": share_id})
        return response

    @router.get("/dashboard/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response(status_code=404)
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    def guarded(request: Request, site: str | None) -> dict[str, Any]:
        who = session(request)
        if who is None:
            raise Unauthorized("Log in with the API token first")
        if who.get("share") and site is not None and site != who.get("site"):
            raise Forbidden("This share link is for another site")
        return who

    @router.get("/dashboard/api/me")
    @plausible_errors
    def me(request: Request) -> Any:
        who = guarded(request, None)
        if who.get("share"):
            return {"role": "viewer", "sites": [who["site"]]}
        return {"role": "owner", "sites": list_sites()}

    def list_sites() -> list[str]:
        return list(settings.sites) or sites_in(storage)

    @router.get("/dashboard/api/shares")
    @plausible_errors
    def shares(request: Request) -> Any:
        if guarded(request, None).get("role") != "owner":
            raise Forbidden("Only the owner manages share links")
        out = []
        for info in storage.list(SHARES_PREFIX):
            share_id = info.key.removeprefix(SHARES_PREFIX).removesuffix(".json")
            data = read_share(share_id)
            if data:
                out.append({"id": share_id, "site": data["site"], "created": data.get("created")})
        return {"results": out}

    @router.post("/dashboard/api/shares")
    @plausible_errors
    def create_share(request: Request, site_id: str = "") -> Any:
        check_same_origin(request)
        if guarded(request, None).get("role") != "owner":
            raise Forbidden("Only the owner creates share links")
        site = parse_site_id(site_id, "site_id is required")
        share_id = secrets.token_urlsafe(24)  # 192 bits
        storage.put(f"{SHARES_PREFIX}{share_id}.json",
                    json.dumps({"site": site, "created": int(clock())}).encode())
        return {"id": share_id, "url": f"/share/{share_id}", "site": site}

    @router.delete("/dashboard/api/shares/{share_id}")
    @plausible_errors
    def revoke_share(share_id: str, request: Request) -> Any:
        check_same_origin(request)
        if guarded(request, None).get("role") != "owner":
            raise Forbidden("Only the owner revokes share links")
        if not SHARE_ID.match(share_id):
            raise NotFound("no such share link")
        storage.delete([f"{SHARES_PREFIX}{share_id}.json"])
        return {"revoked": share_id}

    # -- goals and funnels, managed from the page (the owner only) --------------------
    def owner_site(request: Request) -> str:
        if guarded(request, None).get("role") != "owner":
            raise Forbidden("Only the owner changes goals and funnels")
        return parse_site_id(request.query_params.get("site_id"))

    async def json_body(request: Request) -> Any:
        # a JSON body only: a cross-site form cannot send one (with the SameSite cookie)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise UnsupportedMediaType("Send the goal or funnel as application/json")
        raw = await request.body()
        if len(raw) > 16_384:
            raise BadRequest("The body is limited to 16 KB")
        try:
            return json.loads(raw)
        except ValueError:
            raise BadRequest("The body is not JSON") from None

    def config_answer(config: site_config.SiteConfig) -> dict[str, Any]:
        return {"goals": config.goals, "funnels": config.funnels}

    @router.api_route("/dashboard/api/site/goals", methods=["POST", "PUT", "DELETE"])
    @_json_errors
    async def manage_goals(request: Request) -> Any:
        site = owner_site(request)
        old = request.query_params.get("goal")
        if request.method == "DELETE":
            return config_answer(site_config.remove_goal(storage, site, old or ""))
        body = await json_body(request)
        goal = body.get("goal") if isinstance(body, dict) else None
        if request.method == "PUT" and old is None:
            raise BadRequest("goal: say which goal to change (?goal=...)")
        replace = old if request.method == "PUT" else None
        return config_answer(site_config.add_goal(storage, site, goal, replace=replace))

    @router.api_route("/dashboard/api/site/funnels", methods=["POST", "PUT", "DELETE"])
    @_json_errors
    async def manage_funnels(request: Request) -> Any:
        site = owner_site(request)
        old = request.query_params.get("name")
        if request.method == "DELETE":
            return config_answer(site_config.remove_funnel(storage, site, old or ""))
        body = await json_body(request)
        if request.method == "PUT" and old is None:
            raise BadRequest("funnel: say which funnel to change (?name=...)")
        replace = old if request.method == "PUT" else None
        return config_answer(site_config.put_funnel(storage, site, body, replace=replace))

    @router.get("/dashboard/api/{kind}")
    @plausible_errors
    def data(kind: str, request: Request) -> Any:
        if kind not in KINDS and kind not in PROFILE_KINDS:
            raise NotFound("unknown panel")
        params = params_of(request)
        site = parse_site_id(params.get("site_id"))
        guarded(request, site)
        if kind == "config":  # as validated by the module that writes it
            return config_answer(site_config.read(storage, site))
        if kind in PROFILE_KINDS:
            engine = get_engine()
            return engine.reading(lambda: profile_answer(kind, engine, params))
        if answers is None or kind not in PREPARED_KINDS:
            return handle(kind, get_engine(), params)
        answer, age = answers.get(kind, params)
        return JSONResponse(jsonable_encoder(answer), headers={"Age": str(int(age))})

    return router
