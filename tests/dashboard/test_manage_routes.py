"""The dashboard's routes that change goals and funnels: the owner only, JSON only,
a clear 4xx that changes nothing; and the site configuration the page reads."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from traceglider import site_config
from traceglider.config import load
from traceglider.dashboard.routes import dashboard_router
from traceglider.stats.api import AppEngine
from traceglider.storage.local import LocalStorage

TOKEN = "manage-token-0123456789"
SITE = "m.example"


def client(tmp_path: Path) -> tuple[TestClient, LocalStorage]:
    storage = LocalStorage(tmp_path)
    settings = load(env={"TG_STORAGE": str(tmp_path), "TG_API_TOKEN": TOKEN, "TG_SECRET": "s" * 32,
                         "TG_DASHBOARD_REFRESH": "0"})
    app = FastAPI()
    app.include_router(dashboard_router(settings, storage, AppEngine(settings, storage)))
    return TestClient(app), storage


def test_goals_and_funnels_change_only_for_the_owner_with_json(tmp_path: Path) -> None:
    web, storage = client(tmp_path)
    url = f"/dashboard/api/site/goals?site_id={SITE}"
    assert web.post(url, json={"goal": "Signup"}).status_code == 401  # not logged in
    web.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    assert web.post(url, content=b'{"goal": "x"}', headers={"Content-Type": "text/plain"}).status_code == 415
    bad = web.post(url, json={"goal": "Visit pricing"})
    assert bad.status_code == 400 and "starts with /" in bad.json()["error"]
    assert web.post(url, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert web.post("/dashboard/api/site/goals?site_id=..%2Fx", json={"goal": "a"}).status_code == 400
    assert storage.list("_sites/") == []  # nothing written by a bad request
    assert web.post(url, json={"goal": "Visit /pricing"}).json() == {"goals": ["Visit /pricing"], "funnels": []}
    assert web.put(url + "&goal=Visit%20/pricing", json={"goal": "Visit /pricing/**"}).status_code == 200
    assert web.put(url + "&goal=nope", json={"goal": "Signup"}).status_code == 404
    funnels = f"/dashboard/api/site/funnels?site_id={SITE}"
    made = web.post(funnels, json={"name": "Buy", "steps": ["Visit /", "Visit /pricing/**"]})
    assert made.status_code == 200
    assert web.get(f"/dashboard/api/config?site_id={SITE}").json() == made.json()
    assert web.delete(funnels + "&name=Buy").json()["funnels"] == []
    assert web.delete(url + "&goal=Visit%20/pricing/**").json()["goals"] == []
    assert json.loads(storage.get(site_config.key(SITE))) == {"goals": [], "funnels": []}


def test_a_share_link_viewer_cannot_change_goals(tmp_path: Path) -> None:
    web, _ = client(tmp_path)
    web.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    share = web.post(f"/dashboard/api/shares?site_id={SITE}").json()
    viewer = TestClient(web.app)
    viewer.get(share["url"], follow_redirects=False)
    refused = viewer.post(f"/dashboard/api/site/goals?site_id={SITE}", json={"goal": "Signup"})
    assert refused.status_code == 403 and "owner" in refused.json()["error"]


def test_a_share_link_is_for_the_site_as_normalised_everywhere(tmp_path: Path) -> None:
    web, _ = client(tmp_path)
    web.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    share = web.post(f"/dashboard/api/shares?site_id=www.{SITE.upper()}").json()
    assert share["site"] == SITE
    for bad in ("", "x/../y", "exa mple.com"):
        refused = web.post("/dashboard/api/shares", params={"site_id": bad})
        assert refused.status_code == 400, bad
    viewer = TestClient(web.app)
    viewer.get(share["url"], follow_redirects=False)
    # the viewer's site, however spelled, and no other
    assert viewer.get("/dashboard/api/config", params={"site_id": "WWW." + SITE}).status_code == 200
    assert viewer.get("/dashboard/api/config", params={"site_id": "other.example"}).status_code == 403
