"""Visitor ids with and without consent, the cookie's flags, salts and visits."""

from __future__ import annotations

from typing import Any

import pytest

from traceglider.config import load
from traceglider.ingest.enrich.identity import (
    Sessions,
    VisitorCookies,
    consent_cookie,
    cookieless_id,
    make_identity_step,
    make_privacy_step,
    valid_cookie_id,
)
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.storage.salts import SaltStore

from .conftest import NOW_US, make_request, make_row

MINUTE = 60_000_000
SECRET = "identity-test-secret-0123456789abcdef"


def settings(**env: str) -> Any:
    return load(env={"TG_STORAGE": "/nonexistent", "TG_SECRET": SECRET, **env})


VISITOR = "AAAAAAAAAAAAAAAAAAAAAA"
COOKIE = VisitorCookies(settings()).issue(VISITOR)  # a value this instance issued


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
    assert VisitorCookies(settings()).visitor(grant.pop("value"))
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
    assert identify(request)["visitor_id"] == VISITOR
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
    value = request.set_cookies[0]["value"]
    assert valid_cookie_id(visitor) and VisitorCookies(settings()).visitor(value) == visitor


@pytest.mark.parametrize("headers", [{"sec-gpc": "1"}, {"dnt": "1"}])
def test_gpc_and_dnt_force_cookieless(identify, headers: dict) -> None:  # type: ignore[no-untyped-def]
    request = make_request(headers=headers, cookies={"tg_vid": COOKIE})
    visitor = identify(request, TG_COOKIES_WITHOUT_CONSENT="true")["visitor_id"]
    assert visitor != VISITOR and len(visitor) == 16 and request.set_cookies == []


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


def test_the_cookieless_hash_is_keyed() -> None:
    assert cookieless_id(b"a" * 32, "s", "ua") != cookieless_id(b"b" * 32, "s", "ua")


@pytest.mark.parametrize("planted", [
    "AAAAAAAAAAAAAAAAAAAAAA",  # an unsigned id, as versions before 0.2 issued
    "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA",  # the right shape, a made-up MAC
    VisitorCookies(settings(TG_SECRET="another-instance-secret-0123456789")).issue(VISITOR),
])
def test_a_cookie_value_this_instance_did_not_issue_counts_as_no_cookie(identify, planted) -> None:  # type: ignore[no-untyped-def]
    request = make_request(cookies={"tg_vid": planted})
    visitor = identify(request)["visitor_id"]
    assert visitor != VISITOR and len(visitor) == 16  # cookieless
    assert request.set_cookies == []  # not refreshed, not stored
    assert identify(make_request())["visitor_id"] == visitor
    # where cookies are set without consent, it is replaced by one we issued
    replaced = make_request(cookies={"tg_vid": planted})
    identify(replaced, TG_COOKIES_WITHOUT_CONSENT="true")
    assert replaced.set_cookies[0]["value"] != planted
    assert VisitorCookies(settings()).visitor(replaced.set_cookies[0]["value"])
    # and a consent grant issues a fresh value rather than adopting the planted one
    assert consent_cookie(settings(), True, True, planted)[0]["value"] != planted


def test_the_costly_derivation_runs_once_per_address_and_salt(local_storage) -> None:  # type: ignore[no-untyped-def]
    step = make_identity_step(settings(), SaltStore(local_storage), Sessions())
    keys = step.address_keys  # type: ignore[attr-defined]
    first = make_request()
    assert step.blocking(first)  # type: ignore[attr-defined]
    step(make_row(), first)
    assert not step.blocking(make_request(user_agent="other"))  # type: ignore[attr-defined]
    for _ in range(3):
        step(make_row(), make_request(user_agent="other"))
    assert keys.derived == 1
    assert step.blocking(make_request(ip="127.0.0.9"))  # type: ignore[attr-defined]
    assert not step.blocking(make_request(cookies={"tg_vid": COOKIE}))  # type: ignore[attr-defined]


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
