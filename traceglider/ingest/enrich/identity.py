"""Who is who, within what the visitor allowed: the visitor id and the visit.

With consent (a grant through `POST /consent`, which sets the cookie, or
`TG_COOKIES_WITHOUT_CONSENT`), the visitor id is a random value in the server-set
cookie (`TG_COOKIE_NAME`, default `tg_vid`): HttpOnly, Secure on HTTPS, SameSite=Lax,
Domain from `TG_COOKIE_DOMAIN`, Max-Age `TG_COOKIE_DAYS` (at most 400), refreshed on
every request that carries it. The cookie's presence is the consent record.

Without consent, and always under `Sec-GPC: 1` or `DNT: 1`, the id is cookieless:
a keyed BLAKE2b hash of a random salt of the UTC day, the site, the IP and the user
agent. Salts live in the storage (`_salts/<date>`), written first-writer-wins so every
collector and Lambda shares them, and are deleted once their day is over; with the
salt gone, an id can be neither recomputed nor linked to the next day's.

Visits: a new session starts after 30 minutes without an event from the visitor. The
collector keeps an in-memory map per process; the query layer recomputes visits from
`visitor_id` and `received_at` by the same rule (`SESSION_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from traceglider.errors import StorageError
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.storage.layout import VISIT_TIMEOUT_MINUTES

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.storage.base import Storage

log = logging.getLogger(__name__)

SESSION_TIMEOUT_SECONDS = VISIT_TIMEOUT_MINUTES * 60
SALT_PREFIX = "_salts/"
SALT_BYTES = 32
SALT_RETRY_SECONDS = 60.0
COOKIE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 random bytes, base64url
MAX_SESSIONS = 1_000_000
SALT_PREFETCH_SECONDS = 600  # tomorrow's salt is fetched in the last ten minutes of today


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def valid_cookie_id(value: str | None) -> bool:
    return bool(value) and COOKIE_ID.match(value or "") is not None


def _utc_date(micros: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(micros // 1_000_000))


# --- cookies ------------------------------------------------------------------------

def visitor_cookie(settings: Settings, value: str, secure: bool) -> dict[str, Any]:
    """Keyword arguments for Starlette's `response.set_cookie` that set the cookie."""
    return {
        "key": settings.cookie_name,
        "value": value,
        "max_age": min(int(settings.cookie_days), 400) * 86_400,
        "path": "/",
        "domain": settings.cookie_domain or None,
        "secure": bool(secure),
        "httponly": True,
        "samesite": "lax",
    }


def clear_cookie(settings: Settings, secure: bool) -> dict[str, Any]:
    """Keyword arguments for `response.set_cookie` that delete the cookie (as
    Starlette's `delete_cookie` does: empty value, Max-Age=0, expired)."""
    return {**visitor_cookie(settings, "", secure), "max_age": 0, "expires": 0}


def consent_cookie(
    settings: Settings, granted: bool, secure: bool, existing: str | None
) -> list[dict[str, Any]]:
    """The cookie instructions answering `POST /consent`: a grant sets the cookie
    (keeping a valid existing id, so a repeated grant is not a new visitor); a denial
    clears it."""
    if not granted:
        return [clear_cookie(settings, secure)]
    value = existing if existing and valid_cookie_id(existing) else new_visitor_id()
    return [visitor_cookie(settings, value, secure)]


# --- salts --------------------------------------------------------------------------

class SaltStore:
    """The cookieless salts, one random 32-byte value per UTC day, shared through
    storage. If storage cannot be reached, a process-local salt is used for the day
    (ids from this process then differ from other collectors') and storage is tried
    again every `SALT_RETRY_SECONDS`."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.monotonic) -> None:
        self.storage = storage
        self.clock = clock
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
        return salt

    def _forget_before(self, day: str) -> None:
        for old in [d for d in self._salts if d < _previous(day)]:
            del self._salts[old]


def _previous(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def purge_old_salts(storage: Storage, today: str) -> list[str]:
    """Delete the salts of days before yesterday; returns the keys deleted. Called on
    the first event of each day and worth calling from a daily job too (compaction or
    retention), so salts go even on days without traffic."""
    keep_from = _previous(today)
    old = [info.key for info in storage.list(SALT_PREFIX)
           if info.key[len(SALT_PREFIX):] < keep_from]
    if old:
        storage.delete(old)
    return old


def cookieless_id(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    digest = hashlib.blake2b(
        f"{site}\0{ip}\0{user_agent}".encode(), key=salt, digest_size=8
    )
    return digest.hexdigest()


# --- sessions -----------------------------------------------------------------------

class Sessions:
    """Visit ids by the 30-minute inactivity rule, per process, pruned as they expire."""

    def __init__(self, timeout_seconds: int = SESSION_TIMEOUT_SECONDS,
                 max_entries: int = MAX_SESSIONS) -> None:
        self.timeout = timeout_seconds * 1_000_000
        self.max_entries = max_entries
        self._open: dict[tuple[str, str], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def session_id(self, site: str, visitor_id: str, at: int) -> str:
        key = (site, visitor_id)
        with self._lock:
            current = self._open.pop(key, None)
            if current is not None and at - current[1] <= self.timeout:
                session = current[0]
                last = max(at, current[1])
            else:
                session = hashlib.blake2b(
                    f"{site}\0{visitor_id}\0{at}".encode(), digest_size=8
                ).hexdigest()
                last = at
            self._open[key] = (session, last)  # re-inserted: the dict stays in last-seen order
            self._prune(at)
            return session

    def _prune(self, now: int) -> None:
        opened = self._open
        while opened:
            oldest = next(iter(opened))
            if now - opened[oldest][1] <= self.timeout and len(opened) <= self.max_entries:
                break
            del opened[oldest]

    def __len__(self) -> int:
        return len(self._open)


# --- steps --------------------------------------------------------------------------

def make_privacy_step(gpc_policy: str) -> Callable[[dict[str, Any], RequestInfo], dict[str, Any] | Drop]:
    def privacy(row: dict[str, Any], request: RequestInfo) -> dict[str, Any] | Drop:
        if gpc_policy == "drop" and request.gpc:
            return Drop("privacy", "Sec-GPC or DNT")
        return row

    return privacy


def make_identity_step(
    settings: Settings, salts: SaltStore, sessions: Sessions
) -> Callable[[dict[str, Any], RequestInfo], dict[str, Any] | Drop]:
    cookie_name = settings.cookie_name
    without_consent = bool(settings.cookies_without_consent)

    def cookie_visitor(request: RequestInfo) -> str | None:
        cached = request.cache.get("cookie_visitor")
        if cached is not None:
            return cached or None
        value = ""
        if not request.gpc:
            existing = request.cookies.get(cookie_name)
            if valid_cookie_id(existing):
                value = existing or ""
            elif without_consent:
                value = new_visitor_id()
            if value:
                request.set_cookies.append(visitor_cookie(settings, value, request.secure))
        request.cache["cookie_visitor"] = value
        return value or None

    def identity(row: dict[str, Any], request: RequestInfo) -> dict[str, Any] | Drop:
        site = row.get("site") or request.site
        visitor = cookie_visitor(request)
        if visitor is None:
            key = ("cookieless", site)
            visitor = request.cache.get(key)
            if visitor is None:
                salt = salts.salt(_utc_date(request.received_at))
                visitor = cookieless_id(salt, site, request.ip or "", request.user_agent)
                request.cache[key] = visitor
        row["visitor_id"] = visitor
        # Every event of a request shares its receipt time, hence its visit.
        session_key = ("session", site, visitor)
        session = request.cache.get(session_key)
        if session is None:
            session = request.cache[session_key] = sessions.session_id(site, visitor, row["received_at"])
        row["session_id"] = session
        return row

    def prefetch_salts() -> None:
        # Run periodically off the request path (see app.lifespan): fetching a day's
        # salt touches storage, which must not happen on the event loop at midnight.
        now = time.time()
        salts.salt(_utc_date(int(now * 1_000_000)))
        if (now + SALT_PREFETCH_SECONDS) // 86_400 != now // 86_400:
            salts.salt(_utc_date(int((now + SALT_PREFETCH_SECONDS) * 1_000_000)))

    identity.warm_up = prefetch_salts  # type: ignore[attr-defined]
    return identity
