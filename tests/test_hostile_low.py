"""The Low findings of the hostile-input review (#16), each over HTTP against the
real app: health that tells the truth and only the owner where data lives, answers
no cache keeps, redirects a Host header cannot steer, and settings that cannot
inject headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import BROWSER_UA, batch
from traceglider.app import create_app
from traceglider.config import load
from traceglider.errors import ConfigError

TOKEN = "low-findings-token-0123"


def app_client(tmp_path: Path, **env: str) -> TestClient:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": TOKEN,
                         "TG_COMPACT_SECONDS": "0", "TG_DASHBOARD_PREPARE": "false", **env})
    return TestClient(create_app(settings), headers={"user-agent": BROWSER_UA})


def test_healthz_is_503_while_the_spool_refuses_events(tmp_path: Path) -> None:
    # A spool at its cap (as on a full disk) answers /collect with 503: health must too.
    with app_client(tmp_path, TG_SPOOL_MAX_BYTES=str(64 * 1024 + 20_000), TG_FLUSH_SECONDS="3600") as client:
        assert client.get("/healthz").status_code == 200
        answers = [client.post("/collect", json=batch("example.com", [f"e{i}-{j}" for j in range(50)],
                                                      title="t" * 300)).status_code for i in range(10)]
        assert 503 in answers
        health = client.get("/healthz", headers={"authorization": f"Bearer {TOKEN}"})
        assert health.status_code == 503 and health.json()["spool_accepting"] is False


def test_healthz_shows_where_the_data_lives_only_to_the_owner(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        anonymous = client.get("/healthz").json()
        assert not {"storage", "spool_dir", "storage_error"} & set(anonymous)
        assert "storage_ok" in anonymous
        owner = client.get("/healthz", headers={"authorization": f"Bearer {TOKEN}"}).json()
        assert owner["storage"] == str(tmp_path / "data") and "spool_dir" in owner


def test_the_demo_redirect_ignores_the_host_header(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        response = client.get("/demo", headers={"host": "evil.example"}, follow_redirects=False)
        assert response.status_code in (301, 302, 303, 307, 308)
        assert response.headers["location"] == "/demo/"


def test_a_static_name_without_a_file_is_a_404_not_a_500(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        assert client.get("/dashboard/static/login.css").status_code == 404
        assert client.get("/dashboard/static/dashboard.css").status_code == 200


@pytest.mark.parametrize("value", ["example.com; Secure; SameSite=None", "example.com\r\nX-Evil: 1",
                                   "exa mple.com", "a" * 300])
def test_a_cookie_domain_that_would_inject_into_set_cookie_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="TG_COOKIE_DOMAIN"):
        load(env={"TG_COOKIE_DOMAIN": value})
    assert load(env={"TG_COOKIE_DOMAIN": "Example.COM"}).cookie_domain == "example.com"


def test_authenticated_answers_are_never_cached(tmp_path: Path) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    with app_client(tmp_path) as client:
        for path in ("/api/v1/stats/aggregate?site_id=example.com&period=30d",
                     "/api/v1/stats/breakdown?site_id=example.com&property=event:page"):
            response = client.get(path, headers=auth)
            assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        assert client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
        assert client.get("/dashboard/api/me").headers["cache-control"] == "no-store"


def test_share_links_are_changed_only_from_the_dashboard_itself(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
        refused = client.post("/dashboard/api/shares?site_id=example.com", headers={"origin": "https://evil.example"})
        assert refused.status_code == 403
        cross = client.post("/dashboard/api/shares?site_id=example.com", headers={"sec-fetch-site": "same-site"})
        assert cross.status_code == 403
        made = client.post("/dashboard/api/shares?site_id=example.com", headers={"origin": "http://testserver"})
        assert made.status_code == 200
