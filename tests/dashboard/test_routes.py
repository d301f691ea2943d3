"""Dashboard sessions end when the token rotates and when their holder logs out, on
the server: a copy of the cookie is worth nothing after either."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers import MovableClock
from traceglider.app import create_app
from traceglider.config import load
from traceglider.dashboard.routes import COOKIE, dashboard_router
from traceglider.stats.api import AppEngine
from traceglider.storage.local import LocalStorage

SECRET = "sessions-test-secret-0123456789abcdef"


def dashboard(root: Path, token: str, clock: Callable[[], float] = time.time) -> TestClient:
    settings = load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": token, "TG_SECRET": SECRET})
    app = FastAPI()
    storage = LocalStorage(root)
    app.include_router(dashboard_router(settings, storage, AppEngine(settings, storage), clock=clock))
    return TestClient(app)


def logged_in(client: TestClient, token: str) -> str:
    response = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    return response.cookies[COOKIE]


def me(client: TestClient, cookie: str) -> int:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    return client.get("/dashboard/api/me").status_code


def test_rotating_the_api_token_ends_every_session(tmp_path: Path) -> None:
    before = dashboard(tmp_path, "first-token-0123456789")
    cookie = logged_in(before, "first-token-0123456789")
    assert me(before, cookie) == 200
    after = dashboard(tmp_path, "second-token-0123456789")  # same secret, same storage
    assert me(after, cookie) == 401


def test_logout_ends_the_session_on_the_server(tmp_path: Path) -> None:
    client = dashboard(tmp_path, "owner-token-0123456789")
    cookie = logged_in(client, "owner-token-0123456789")
    other = logged_in(client, "owner-token-0123456789")  # a second browser
    assert me(client, cookie) == 200
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    assert client.post("/dashboard/logout", follow_redirects=False).status_code == 303
    assert me(client, cookie) == 401  # a copy kept from before the logout
    assert me(dashboard(tmp_path, "owner-token-0123456789"), cookie) == 401  # in another worker too
    assert me(client, other) == 200  # the other browser's session goes on


def test_guessing_the_token_is_slowed_down(tmp_path: Path) -> None:
    client = dashboard(tmp_path, "owner-token-0123456789")
    answers = [client.post("/dashboard/login", data={"token": f"guess-{i}"}).status_code for i in range(12)]
    assert answers[:10] == [401] * 10 and answers[-1] == 429
    # once the wrong tries are used up, the right token is refused too until the minute passes
    right = client.post("/dashboard/login", data={"token": "owner-token-0123456789"}, follow_redirects=False)
    assert right.status_code == 429


def test_logging_in_often_with_the_right_token_is_never_refused(tmp_path: Path) -> None:
    # the browser tests log in once per test, dozens of times a minute from one address
    client = dashboard(tmp_path, "owner-token-0123456789")
    answers = [client.post("/dashboard/login", data={"token": "owner-token-0123456789"},
                           follow_redirects=False).status_code for _ in range(30)]
    assert answers == [303] * 30


def test_a_session_lasts_its_30_days_on_the_apps_clock(tmp_path: Path) -> None:
    clock = MovableClock()
    client = dashboard(tmp_path, "owner-token-0123456789", clock)
    cookie = logged_in(client, "owner-token-0123456789")
    clock.advance(29 * 86_400)
    assert me(client, cookie) == 200
    clock.advance(2 * 86_400)  # 31 days on: expired, though no wall-clock second passed
    assert me(client, cookie) == 401


def test_the_apps_clock_reaches_the_dashboard(tmp_path: Path) -> None:
    clock = MovableClock()
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": "app-token-0123456789",
                         "TG_SECRET": SECRET})
    client = TestClient(create_app(settings, clock=clock))
    cookie = logged_in(client, "app-token-0123456789")
    assert me(client, cookie) == 200
    clock.advance(31 * 86_400)
    assert me(client, cookie) == 401
