"""Who is who, within what the visitor allowed: the visitor id and the visit.

With consent (a grant through `POST /consent`, which sets the cookie, or
`TG_COOKIES_WITHOUT_CONSENT`), the visitor id is a random value in the server-set
cookie (`TG_COOKIE_NAME`, default `tg_vid`): HttpOnly, Secure on HTTPS, SameSite=Lax,
Domain from `TG_COOKIE_DOMAIN`, Max-Age `TG_COOKIE_DAYS` (at most 400), refreshed on
every request that carries it. The cookie's presence is the consent record, so the
collector only honours values it issued: `<22-character id>.<MAC>`, the MAC keyed
with the instance secret. A value it did not issue (planted by a page script, a
third-party script or a sibling subdomain, or an unsigned cookie of a version before
0.2) counts as no cookie: it is neither stored nor refreshed.

Without consent, and always under `Sec-GPC: 1` or `DNT: 1`, the id is cookieless:
a keyed BLAKE2b hash of the site and the user agent, under a key derived from the
address with scrypt (memory-hard: `KDF_N`, `KDF_R`), salted with the random salt of
the UTC day and a key from the instance secret. The derived key is cached in memory
per (salt, address), so only an address's first request of the day pays for it, and
then on a worker thread, never on the event loop. Salts come from a store the app
hands in (`traceglider.storage.salts`: kept apart from the data, deleted once their
day is over); with the salt gone, an id can be neither recomputed nor linked to the
next day's.

Visits: a new session starts after 30 minutes without an event from the visitor. The
collector keeps an in-memory map per process; the query layer recomputes visits from
`visitor_id` and `received_at` by the same rule (`SESSION_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from traceglider.dates import utc_day
from traceglider.errors import ConfigError
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.types import PipelineRow
from traceglider.visits import VISIT_TIMEOUT_MINUTES

if TYPE_CHECKING:
    from traceglider.config import Settings

SESSION_TIMEOUT_SECONDS = VISIT_TIMEOUT_MINUTES * 60
ID_CHARS = 22  # 16 random bytes, base64url
MAC_CHARS = 16  # 12 bytes of HMAC-SHA256, base64url
COOKIE_VALUE = re.compile(rf"^([A-Za-z0-9_-]{{{ID_CHARS}}})\.([A-Za-z0-9_-]{{{MAC_CHARS}}})$")
COOKIE_ID = re.compile(rf"^[A-Za-z0-9_-]{{{ID_CHARS}}}$")
MAX_SESSIONS = 1_000_000
SALT_PREFETCH_SECONDS = 600  # tomorrow's salt is fetched in the last ten minutes of today
# scrypt with N=2^12, r=8: 4 MiB and a few milliseconds per address (docs/privacy.md
# has the measured cost and what it means for someone holding a day's salt).
KDF_N = 2 ** 12
KDF_R = 8
KDF_MAXMEM = 64 * 1024 * 1024
MAX_ADDRESS_KEYS = 200_000  # per salt; at about 150 bytes each, 30 MB at most


class Salts(Protocol):
    """Where the day's salt comes from (`traceglider.storage.salts.SaltStore`)."""

    def salt(self, day: str) -> bytes: ...


def _utc_date(micros: int) -> str:
    """`utc_day_us`, computed once per day: it is asked on every request."""
    return _day_name(micros // 86_400_000_000)


@lru_cache(maxsize=8)
def _day_name(day: int) -> str:
    return utc_day(day * 86_400)


def _key(settings: Settings, purpose: str) -> bytes:
    secret = settings.secret
    if not secret:
        raise ConfigError("the identity step needs the instance secret (ensure_secret first)")
    return hashlib.sha256(f"traceglider {purpose}\0{secret}".encode()).digest()


# --- cookies ------------------------------------------------------------------------

class VisitorCookies:
    """Cookie values the collector issued: a random id and its MAC, so that a value
    someone else planted is recognised as not ours."""

    def __init__(self, settings: Settings) -> None:
        self._key = _key(settings, "visitor cookie")

    def _mac(self, visitor_id: str) -> str:
        digest = hmac.new(self._key, visitor_id.encode(), hashlib.sha256).digest()
        return _b64(digest[:12])

    def issue(self, visitor_id: str | None = None) -> str:
        visitor_id = visitor_id or secrets.token_urlsafe(16)
        return f"{visitor_id}.{self._mac(visitor_id)}"

    def visitor(self, value: str | None) -> str | None:
        """The visitor id in a value we issued, or None for anything else."""
        match = COOKIE_VALUE.match(value or "")
        if match is None or not hmac.compare_digest(match.group(2), self._mac(match.group(1))):
            return None
        return match.group(1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def valid_cookie_id(value: str | None) -> bool:
    """A visitor id as stored: 22 base64url characters."""
    return bool(value) and COOKIE_ID.match(value or "") is not None


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
    (keeping an existing value we issued, so a repeated grant is not a new visitor;
    replacing anything else); a denial clears it."""
    if not granted:
        return [clear_cookie(settings, secure)]
    cookies = VisitorCookies(settings)
    value = existing if existing and cookies.visitor(existing) else cookies.issue()
    return [visitor_cookie(settings, value, secure)]


# --- cookieless ids -----------------------------------------------------------------

class AddressKeys:
    """The costly part of a cookieless id: a memory-hard key per (day's salt, address),
    cached in memory for the salts in use (today's and, around midnight, yesterday's)."""

    def __init__(self, settings: Settings, max_entries: int = MAX_ADDRESS_KEYS) -> None:
        self._pepper = _key(settings, "cookieless address")
        self.max_entries = max_entries
        self._by_salt: OrderedDict[bytes, OrderedDict[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.derived = 0

    def cached(self, salt: bytes, address: str) -> bool:
        return self.known(salt, address) is not None

    def known(self, salt: bytes, address: str) -> bytes | None:
        """The key if it is derived already, else None (and nothing is derived)."""
        with self._lock:
            keys = self._by_salt.get(salt)
            return None if keys is None else keys.get(address)

    def key(self, salt: bytes, address: str) -> bytes:
        with self._lock:
            keys = self._by_salt.get(salt)
            if keys is not None and address in keys:
                keys.move_to_end(address)
                return keys[address]
        derived = derive_address_key(salt, self._pepper, address)  # the GIL is released
        with self._lock:
            keys = self._by_salt.get(salt)
            if keys is None:
                keys = self._by_salt[salt] = OrderedDict()
                while len(self._by_salt) > 2:  # a salt two days old is deleted: so are its keys
                    self._by_salt.popitem(last=False)
            keys[address] = derived
            while len(keys) > self.max_entries:
                keys.popitem(last=False)
            self.derived += 1
        return derived


def derive_address_key(salt: bytes, pepper: bytes, address: str) -> bytes:
    return hashlib.scrypt(address.encode(), salt=salt + pepper, n=KDF_N, r=KDF_R, p=1,
                          dklen=32, maxmem=KDF_MAXMEM)


def cookieless_id(address_key: bytes, site: str, user_agent: str) -> str:
    digest = hashlib.blake2b(f"{site}\0{user_agent}".encode(), key=address_key, digest_size=8)
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

def make_privacy_step(gpc_policy: str) -> Callable[[PipelineRow, RequestInfo], PipelineRow | Drop]:
    def privacy(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
        if gpc_policy == "drop" and request.gpc:
            return Drop("privacy", "Sec-GPC or DNT")
        return row

    return privacy


def make_identity_step(
    settings: Settings, salts: Salts, sessions: Sessions, keys: AddressKeys | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[PipelineRow, RequestInfo], PipelineRow | Drop]:
    """`clock`: the app's; the salt prefetch fetches its today's (and, near midnight,
    its tomorrow's) salt."""
    cookie_name = settings.cookie_name
    without_consent = bool(settings.cookies_without_consent)
    cookies = VisitorCookies(settings)
    keys = keys or AddressKeys(settings)

    def cookie_visitor(request: RequestInfo) -> str | None:
        cached = request.cache.get("cookie_visitor")
        if cached is not None:
            return cached or None
        visitor, value = "", ""
        if not request.gpc:
            existing = request.cookies.get(cookie_name)
            visitor = cookies.visitor(existing) or ""
            if visitor:
                value = existing or ""
            elif without_consent:
                value = cookies.issue()
                visitor = cookies.visitor(value) or ""
            if value:
                request.set_cookies.append(visitor_cookie(settings, value, request.secure))
        request.cache["cookie_visitor"] = visitor
        return visitor or None

    def cookieless(request: RequestInfo, site: str) -> str:
        key = request.cache.get("address_key")  # found by `blocking` a moment ago
        if key is None:
            key = keys.key(salts.salt(_utc_date(request.received_at)), request.ip or "")
        return cookieless_id(key, site, request.user_agent)

    def identity(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
        site = row.get("site") or request.site
        visitor = cookie_visitor(request)
        if visitor is None:
            key = ("cookieless", site)
            visitor = request.cache.get(key)
            if visitor is None:
                visitor = request.cache[key] = cookieless(request, site)
        row["visitor_id"] = visitor
        # Every event of a request shares its receipt time, hence its visit.
        session_key = ("session", site, visitor)
        session = request.cache.get(session_key)
        if session is None:
            session = request.cache[session_key] = sessions.session_id(site, visitor, row["received_at"])
        row["session_id"] = session
        return row

    def blocking(request: RequestInfo) -> bool:
        """True when this request's id needs the costly derivation (an address's first
        request under today's salt): the route then runs the pipeline on a thread."""
        if not request.gpc and cookies.visitor(request.cookies.get(cookie_name)):
            return False
        if without_consent and not request.gpc:
            return False
        key = keys.known(salts.salt(_utc_date(request.received_at)), request.ip or "")
        if key is None:
            return True
        request.cache["address_key"] = key  # the id needs it next: one lookup, not two
        return False

    def prefetch_salts() -> None:
        # Run periodically off the request path (see app.lifespan): fetching a day's
        # salt touches storage, which must not happen on the event loop at midnight.
        now = clock()
        salts.salt(utc_day(now))
        if (now + SALT_PREFETCH_SECONDS) // 86_400 != now // 86_400:
            salts.salt(utc_day(now + SALT_PREFETCH_SECONDS))

    identity.warm_up = prefetch_salts  # type: ignore[attr-defined]
    identity.blocking = blocking  # type: ignore[attr-defined]
    identity.address_keys = keys  # type: ignore[attr-defined]
    return identity
