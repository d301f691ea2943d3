"""Visitor ids with and without consent, the cookie's flags, salts and visits."""

from __future__ import annotations

from typing import Any

import pytest

from traceglider.config import load
from traceglider.errors import StorageError
from traceglider.ingest.enrich.identity import (
    SALT_PREFIX,
    SaltStore,
    Sessions,
    consent_cookie,
    cookieless_id,
    make_identity_step,
    make_privacy_step,
    purge_old_salts,
    valid_cookie_id,
)
from traceglider.ingest.pipeline import Drop, RequestInfo

from .conftest import NOW_US, make_request, make_row

MINUTE = 60_000_000
COOKIE = "AAAAAAAAAAAAAAAAAAAAAA"


def settings(**env: str) -> Any:
    return load(env={"TG_STORAGE": "/nonexistent", **env})


@pytest.fixture
def identify(local_storage):  # type: ignore[no-untyped-def]
    def run(request: RequestInfo, **env: str) -> dict[str, Any]:
        step = make_identity_step(settings(**env), SaltStore(local_storage), Sessions())
        row = step(make_row(), request)
        assert isinstance(row, dict)
        return row

    return run


def test_the_cookie_flags_are_exact() -> None:
    [grant] = consent_cookie(settings(TG_COOKIE_DOMAIN="example.com"), True, True, None)
    assert valid_cookie_id(grant.pop("value"))
    assert grant == {"key": "tg_vid", "max_age": 395 * 86_400, "path": "/", "domain": "example.com",
                     "secure": True, "httponly": True, "samesite": "lax"}


def test_the_set_cookie_headers_are_exact() -> None:
    from starlette.responses import Response

    response = Response()
    for instruction in (consent_cookie(settings(TG_COOKIE_DOMAIN="example.com"), True, True, COOKIE)
                        + consent_cookie(settings(), True, False, COOKIE)
                        + consent_cookie(settings(), False, True, COOKIE)):
        response.set_cookie(**instruction)
    granted, plain, cleared = response.headers.getlist("set-cookie")
    assert granted == (f"tg_vid={COOKIE}; Domain=example.com; HttpOnly; Max-Age=34128000; Path=/; "
                       "SameSite=lax; Secure")
    assert plain == f"tg_vid={COOKIE}; HttpOnly; Max-Age=34128000; Path=/; SameSite=lax"
    assert cleared.startswith('tg_vid=""; expires=')
    assert cleared.endswith("GMT; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure")


@pytest.mark.parametrize(("env", "secure", "domain", "max_age"), [
    ({}, False, None, 395 * 86_400),
    ({"TG_COOKIE_DAYS": "400"}, True, None, 400 * 86_400),
    ({"TG_COOKIE_DAYS": "30", "TG_COOKIE_DOMAIN": "example.com"}, True, "example.com", 30 * 86_400),
])
def test_the_cookie_follows_the_settings(env: dict, secure: bool, domain: str | None, max_age: int) -> None:
    [grant] = consent_cookie(settings(**env), True, secure, None)
    assert (grant["secure"], grant["domain"], grant["max_age"]) == (secure, domain, max_age)


def test_a_repeated_grant_keeps_the_id_and_a_denial_clears_the_cookie() -> None:
    assert consent_cookie(settings(), True, True, COOKIE)[0]["value"] == COOKIE
    assert consent_cookie(settings(), True, True, "forged<>")[0]["value"] != "forged<>"
    [deny] = consent_cookie(settings(), False, True, COOKIE)
    assert deny == {"key": "tg_vid", "value": "", "max_age": 0, "expires": 0, "path": "/",
                    "domain": None, "secure": True, "httponly": True, "samesite": "lax"}


def test_with_a_consent_cookie_the_id_is_the_cookie_and_it_is_refreshed(identify) -> None:  # type: ignore[no-untyped-def]
    request = make_request(cookies={"tg_vid": COOKIE}, secure=False)
    assert identify(request)["visitor_id"] == COOKIE
    assert [(c["value"], c["max_age"], c["secure"]) for c in request.set_cookies] == [
        (COOKIE, 395 * 86_400, False)]


def test_without_consent_no_cookie_is_set_and_the_id_is_a_hash(identify) -> None:  # type: ignore[no-untyped-def]
    request = make_request()
    visitor = identify(request)["visitor_id"]
    assert len(visitor) == 16 and request.set_cookies == []
    assert identify(make_request())["visitor_id"] == visitor  # same day, same inputs
    assert identify(make_request(user_agent="other"))["visitor_id"] != visitor
    assert identify(make_request(ip="127.0.0.2"))["visitor_id"] != visitor
    assert identify(make_request(received_at=NOW_US + 86_400_000_000))["visitor_id"] != visitor


def test_cookies_without_consent_sets_a_new_cookie(identify) -> None:  # type: ignore[no-untyped-def]
    request = make_request()
    visitor = identify(request, TG_COOKIES_WITHOUT_CONSENT="true")["visitor_id"]
    assert valid_cookie_id(visitor) and request.set_cookies[0]["value"] == visitor


@pytest.mark.parametrize("headers", [{"sec-gpc": "1"}, {"dnt": "1"}])
def test_gpc_and_dnt_force_cookieless(identify, headers: dict) -> None:  # type: ignore[no-untyped-def]
    request = make_request(headers=headers, cookies={"tg_vid": COOKIE})
    visitor = identify(request, TG_COOKIES_WITHOUT_CONSENT="true")["visitor_id"]
    assert visitor != COOKIE and len(visitor) == 16 and request.set_cookies == []


@pytest.mark.parametrize(("policy", "headers", "dropped"), [
    ("cookieless", {"sec-gpc": "1"}, False),
    ("drop", {"sec-gpc": "1"}, True),
    ("drop", {"dnt": "1"}, True),
    ("drop", {"dnt": "0"}, False),
    ("drop", {}, False),
])
def test_the_gpc_policy(policy: str, headers: dict, dropped: bool) -> None:
    result = make_privacy_step(policy)(make_row(), make_request(headers=headers))
    assert (result == Drop("privacy", "Sec-GPC or DNT")) is dropped


def test_collectors_sharing_storage_share_the_salt(local_storage) -> None:  # type: ignore[no-untyped-def]
    first, second = SaltStore(local_storage), SaltStore(local_storage)
    assert first.salt("2026-11-27") == second.salt("2026-11-27")
    assert first.salt("2026-11-27") != first.salt("2026-11-28")


def test_salts_older_than_yesterday_are_destroyed(local_storage) -> None:  # type: ignore[no-untyped-def]
    store = SaltStore(local_storage)
    for day in ("2026-11-24", "2026-11-25", "2026-11-26"):
        store.salt(day)
    assert [i.key for i in local_storage.list(SALT_PREFIX)] == [
        SALT_PREFIX + "2026-11-25", SALT_PREFIX + "2026-11-26"]
    assert purge_old_salts(local_storage, "2026-11-28") == [
        SALT_PREFIX + "2026-11-25", SALT_PREFIX + "2026-11-26"]
    assert "2026-11-24" not in store._salts


class Unreachable:
    def put(self, *a: Any, **k: Any) -> bool:
        raise StorageError("down")

    get = list = put


def test_unreachable_storage_falls_back_to_a_local_salt_for_a_while() -> None:
    now = [0.0]
    store = SaltStore(Unreachable(), clock=lambda: now[0])  # type: ignore[arg-type]
    salt = store.salt("2026-11-27")
    assert len(salt) == 32 and store.salt("2026-11-27") == salt
    now[0] += 3600  # retried, still down: the same local salt, so ids stay stable
    assert store.salt("2026-11-27") == salt


def test_the_cookieless_hash_is_keyed() -> None:
    assert cookieless_id(b"a" * 32, "s", "ip", "ua") != cookieless_id(b"b" * 32, "s", "ip", "ua")


@pytest.mark.parametrize(("gaps_minutes", "new_sessions"), [
    ([0, 5, 10, 29], [True, False, False, False]),
    ([0, 30], [True, False]),
    ([0, 31], [True, True]),
    ([0, 20, 20, 20], [True, False, False, False]),  # activity keeps a visit open
    ([0, 45, 1], [True, True, False]),
])
def test_visits_follow_the_30_minute_inactivity_rule(gaps_minutes: list[int], new_sessions: list[bool]) -> None:
    sessions, at, seen = Sessions(), NOW_US, []
    for gap, new in zip(gaps_minutes, new_sessions, strict=True):
        at += gap * MINUTE
        session = sessions.session_id("example.com", "v1", at)
        assert (session not in seen) is new
        seen.append(session)


def test_expired_visits_are_forgotten() -> None:
    sessions = Sessions()
    for index in range(100):
        sessions.session_id("example.com", f"v{index}", NOW_US)
    sessions.session_id("example.com", "late", NOW_US + 31 * MINUTE)
    assert len(sessions) == 1


def test_the_session_map_is_bounded() -> None:
    sessions = Sessions(max_entries=10)
    for index in range(50):
        sessions.session_id("example.com", f"v{index}", NOW_US)
    assert len(sessions) == 10
