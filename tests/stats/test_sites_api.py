"""Plausible's Sites API (sites-api.md) against the real app and local storage: the
documented requests (curl -F bodies) and answer shapes, goals shared with the stats and
the dashboard, funnels as our extension; /api/health; CORS for the stats API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from traceglider.app import create_app
from traceglider.config import load

TOKEN = "sites-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make(tmp_path: Path, **env: str) -> TestClient:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": TOKEN, "TG_SECRET": "s" * 32,
                         "TG_SITES": "test-domain.com,example.com", "TG_COMPACT_SECONDS": "0",
                         "TG_DASHBOARD_PREPARE": "false", **env})
    return TestClient(create_app(settings), base_url="https://collector.test")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with make(tmp_path, TG_STATS_CORS_ORIGINS="https://tools.example.net") as client:
        yield client


def form(**fields: str) -> dict[str, Any]:
    """A multipart body, as the docs' `curl -F` sends it."""
    return {"files": {k: (None, v) for k, v in fields.items()}}


def test_list_sites(api: TestClient) -> None:
    r = api.get("/api/v1/sites", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"sites": [{"domain": "test-domain.com", "timezone": "Etc/UTC"},
                                  {"domain": "example.com", "timezone": "Etc/UTC"}],
                        "meta": {"after": None, "before": None, "limit": 100}}
    first = api.get("/api/v1/sites", params={"limit": 1}, headers=AUTH).json()
    assert [s["domain"] for s in first["sites"]] == ["test-domain.com"] and first["meta"]["after"]
    rest = api.get("/api/v1/sites", params={"limit": 1, "after": first["meta"]["after"]}, headers=AUTH).json()
    assert [s["domain"] for s in rest["sites"]] == ["example.com"] and rest["meta"]["after"] is None


def test_get_a_site(api: TestClient) -> None:
    r = api.get("/api/v1/sites/test-domain.com", headers=AUTH)
    assert r.json() == {"domain": "test-domain.com", "timezone": "Etc/UTC", "custom_properties": []}
    missing = api.get("/api/v1/sites/nope.example", headers=AUTH)
    assert missing.status_code == 404 and missing.json() == {"error": "Site could not be found"}


def test_goals_are_found_or_created_listed_and_deleted(api: TestClient) -> None:
    r = api.put("/api/v1/sites/goals", headers=AUTH,
                **form(site_id="test-domain.com", goal_type="event", event_name="Signup"))
    assert r.status_code == 200, r.text
    signup = r.json()
    assert signup == {"domain": "test-domain.com", "id": signup["id"], "display_name": "Signup",
                      "goal_type": "event", "event_name": "Signup", "page_path": None}
    again = api.put("/api/v1/sites/goals", headers=AUTH,
                    json={"site_id": "test-domain.com", "goal_type": "event", "event_name": "Signup"})
    assert again.json() == signup  # idempotent
    page = api.put("/api/v1/sites/goals", headers=AUTH,
                   **form(site_id="test-domain.com", goal_type="page", page_path="/register")).json()
    assert (page["display_name"], page["goal_type"], page["page_path"]) == ("Visit /register", "page", "/register")

    listed = api.get("/api/v1/sites/goals", params={"site_id": "test-domain.com"}, headers=AUTH).json()
    assert listed == {"goals": [
        {"id": signup["id"], "goal_type": "event", "display_name": "Signup", "event_name": "Signup",
         "page_path": None},
        {"id": page["id"], "goal_type": "page", "display_name": "Visit /register", "event_name": None,
         "page_path": "/register"},
    ], "meta": {"after": None, "before": None, "limit": 100}}

    deleted = api.request("DELETE", f"/api/v1/sites/goals/{signup['id']}", headers=AUTH,
                          **form(site_id="test-domain.com"))
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "true"}
    gone = api.request("DELETE", f"/api/v1/sites/goals/{signup['id']}", headers=AUTH,
                       **form(site_id="test-domain.com"))
    assert gone.status_code == 404 and gone.json() == {"error": "Goal could not be found"}
    left = api.get("/api/v1/sites/goals", params={"site_id": "test-domain.com"}, headers=AUTH).json()
    assert [g["display_name"] for g in left["goals"]] == ["Visit /register"]


def test_goals_set_here_are_the_ones_the_stats_and_dashboard_read(api: TestClient) -> None:
    api.put("/api/v1/sites/goals", headers=AUTH, json={"site_id": "example.com", "goal_type": "event",
                                                       "event_name": "Purchase"})
    api.put("/api/v1/sites/funnels", headers=AUTH,
            json={"site_id": "example.com", "name": "Buy", "steps": ["Visit /", "Purchase"]})
    # the dashboard's configuration answer reads the same file
    from traceglider.stats.api import handle

    engine = api.app.state.engine()  # type: ignore[attr-defined]
    config = handle("config", engine, {"site_id": "example.com"})
    assert config == {"goals": ["Purchase"], "funnels": [{"name": "Buy", "steps": ["Visit /", "Purchase"]}]}
    goals = api.get("/api/v1/stats/breakdown", headers=AUTH,
                    params={"site_id": "example.com", "property": "event:goal", "period": "day"})
    assert goals.status_code == 200 and [g["goal"] for g in goals.json()["results"]] == ["Purchase"]


def test_funnels_are_our_extension(api: TestClient) -> None:
    made = api.put("/api/v1/sites/funnels", headers=AUTH,
                   **form(site_id="example.com", name="Signup flow", steps="Visit /,Visit /pricing,Signup"))
    assert made.json() == {"domain": "example.com", "name": "Signup flow",
                           "steps": ["Visit /", "Visit /pricing", "Signup"]}
    listed = api.get("/api/v1/sites/funnels", params={"site_id": "example.com"}, headers=AUTH).json()
    assert listed["funnels"] == [{"name": "Signup flow", "steps": ["Visit /", "Visit /pricing", "Signup"]}]
    assert api.request("DELETE", "/api/v1/sites/funnels/Signup flow", params={"site_id": "example.com"},
                       headers=AUTH).json() == {"deleted": "true"}
    bad = api.put("/api/v1/sites/funnels", headers=AUTH, json={"site_id": "example.com", "name": "x", "steps": ["a"]})
    assert bad.status_code == 400 and "2 to 8" in bad.json()["error"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "message"), [
    ("GET", "/api/v1/sites", {"headers": {}}, 401, "Missing API key"),
    ("GET", "/api/v1/sites", {"headers": {"Authorization": "Bearer nope"}}, 401, "Invalid API key"),
    ("GET", "/api/v1/sites/goals", {"headers": AUTH}, 400, "`site_id` is required"),
    ("PUT", "/api/v1/sites/goals", {"headers": AUTH, "json": {"site_id": "example.com", "goal_type": "x"}},
     400, "`goal_type` must be"),
    ("PUT", "/api/v1/sites/goals", {"headers": AUTH, "json": {"site_id": "example.com", "goal_type": "page",
                                                             "page_path": "register"}}, 400, "path starts with /"),
    ("PUT", "/api/v1/sites/goals", {"headers": AUTH, "json": {"site_id": "example.com", "goal_type": "event",
                                                             "event_name": "pageview"}}, 400, "measures by itself"),
    ("PUT", "/api/v1/sites/goals", {"headers": AUTH, "json": {"site_id": "other.org", "goal_type": "event",
                                                             "event_name": "A"}}, 404, "Site could not be found"),
    ("PUT", "/api/v1/sites/goals", {"headers": AUTH, "json": {"site_id": "example.com", "goal_type": "event",
                                                             "event_name": "A", "display_name": "B"}},
     400, "custom `display_name`"),
    ("PUT", "/api/v1/sites/goals", {"headers": {**AUTH, "content-type": "application/json"}, "content": b"[1"},
     400, "must be JSON"),
])
def test_bad_requests_are_4xx_and_change_nothing(api: TestClient, method: str, path: str, kwargs: dict,
                                                 status: int, message: str) -> None:
    r = api.request(method, path, **kwargs)
    assert r.status_code == status and message in r.json()["error"]
    assert api.get("/api/v1/sites/goals", params={"site_id": "example.com"}, headers=AUTH).json()["goals"] == []


def test_api_health(api: TestClient) -> None:
    r = api.get("/api/health")
    assert r.status_code == 200 and r.json() == {"collector": "ok", "storage": "ok"}


def test_a_page_of_an_allowed_origin_may_call_the_stats_api(api: TestClient) -> None:
    origin = {"Origin": "https://tools.example.net"}
    pre = api.options("/api/v1/stats/aggregate", headers={
        **origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://tools.example.net"
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in pre.headers  # a token, never cookies
    r = api.get("/api/v1/stats/aggregate", params={"site_id": "example.com", "period": "day"},
                headers={**AUTH, **origin})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://tools.example.net"
    denied = api.get("/api/v1/stats/aggregate", params={"site_id": "example.com"}, headers=origin)
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == origin["Origin"]
    assert api.options("/api/v1/sites", headers={**origin, "Access-Control-Request-Method": "PUT"}).status_code == 204


def test_other_origins_are_refused_at_the_preflight(api: TestClient, tmp_path: Path) -> None:
    pre = api.options("/api/v1/stats/aggregate", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 403 and "TG_STATS_CORS_ORIGINS" in pre.json()["error"]
    r = api.get("/api/v1/stats/aggregate", params={"site_id": "example.com"},
                headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_without_the_setting_no_origin_is_allowed(tmp_path: Path) -> None:
    with make(tmp_path) as client:
        pre = client.options("/api/v1/stats/aggregate", headers={
            "Origin": "https://tools.example.net", "Access-Control-Request-Method": "GET"})
        assert pre.status_code == 403
        # the collector's own CORS (its sites' pages) is untouched
        ev = client.options("/api/event", headers={"Origin": "https://example.com",
                                                   "Access-Control-Request-Method": "POST"})
        assert ev.status_code == 204 and ev.headers["access-control-allow-origin"] == "https://example.com"


def test_goals_as_kctl_plausible_sends_them(api: TestClient) -> None:
    # kctl-plausible (Python 3.12, not installable here) POSTs goals, with goal_type
    # page_path, and deletes with site_id in the query string
    made = api.post("/api/v1/sites/goals", headers=AUTH,
                    json={"site_id": "example.com", "goal_type": "page_path", "page_path": "/thanks"})
    assert made.status_code == 200 and made.json()["display_name"] == "Visit /thanks"
    gone = api.delete(f"/api/v1/sites/goals/{int(made.json()['id'])}", params={"site_id": "example.com"},
                      headers=AUTH)
    assert gone.json() == {"deleted": "true"}


def test_deleting_a_goal_or_funnel_that_is_not_there_is_a_404_and_changes_nothing(api: TestClient) -> None:
    api.put("/api/v1/sites/goals", headers=AUTH, json={"site_id": "example.com", "goal_type": "event",
                                                       "event_name": "Kept"})
    api.put("/api/v1/sites/funnels", headers=AUTH,
            json={"site_id": "example.com", "name": "Kept", "steps": ["Visit /", "Kept"]})
    for path, message in (("goals/123", "Goal could not be found"), ("funnels/Other", "Funnel could not be found")):
        gone = api.delete(f"/api/v1/sites/{path}", params={"site_id": "example.com"}, headers=AUTH)
        assert gone.status_code == 404 and gone.json() == {"error": message}
    assert api.delete("/api/v1/sites/funnels/Kept", params={"site_id": "example.com"}).status_code == 401
    goals = api.get("/api/v1/sites/goals", params={"site_id": "example.com"}, headers=AUTH).json()["goals"]
    funnels = api.get("/api/v1/sites/funnels", params={"site_id": "example.com"}, headers=AUTH).json()["funnels"]
    assert [g["display_name"] for g in goals] == ["Kept"] and [f["name"] for f in funnels] == ["Kept"]
