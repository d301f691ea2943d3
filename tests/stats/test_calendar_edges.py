"""Dates at the calendar's edges are a clear 400 (or an empty answer inside the
range), never a 500: in the stats API, the export and the dashboard's API."""

from __future__ import annotations

import pytest

from tests.stats.conftest import SITE, TOKEN

OUTSIDE = ["9999-12-31", "0001-01-01", "1969-12-31", "3000-01-01"]
RANGES = ["0001-01-01,0001-01-31", "9999-12-01,9999-12-31", "0001-01-01,9999-12-31"]
EDGES = ["1970-01-01", "2999-12-31"]


@pytest.mark.parametrize("endpoint", ["aggregate", "timeseries", "breakdown"])
@pytest.mark.parametrize("period", ["day", "7d", "30d", "month", "6mo", "12mo"])
@pytest.mark.parametrize("day", OUTSIDE + EDGES)
def test_a_period_at_the_calendars_edge_is_a_400_or_an_answer(client, endpoint, period, day):
    response = client.get(f"/api/v1/stats/{endpoint}", params={
        "site_id": SITE, "period": period, "date": day, "compare": "previous_period",
        "property": "event:page"})
    if day in OUTSIDE:
        assert response.status_code == 400, response.text
        assert "out of range: dates are from 1970-01-01 to 2999-12-31" in response.json()["error"]
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("dates", RANGES + ["1970-01-01,1979-12-31", "2990-01-01,2999-12-31"])
def test_a_custom_range_at_the_edges_compared_with_the_previous_period(client, dates):
    response = client.get("/api/v1/stats/aggregate", params={
        "site_id": SITE, "period": "custom", "date": dates, "compare": "previous_period"})
    assert response.status_code == (400 if dates in RANGES else 200), response.text


@pytest.mark.parametrize("dates", ["9999-12-31", "0001-01-01", "0001-01-01,9999-12-31"])
def test_the_export_refuses_dates_outside_the_range(client, dates):
    response = client.get("/api/v1/export", params={"site_id": SITE, "date": dates})
    assert response.status_code == 400 and "out of range" in response.json()["error"]


def test_the_dashboard_api_refuses_them_too(client):
    from fastapi.testclient import TestClient

    with TestClient(client.app) as browser:
        assert browser.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
        for kind in ("aggregate", "timeseries", "breakdown", "goals"):
            response = browser.get(f"/dashboard/api/{kind}", params={
                "site_id": SITE, "period": "custom", "date": "9999-12-01,9999-12-31",
                "compare": "previous_period", "property": "event:page"})
            assert response.status_code == 400, (kind, response.text)
            response = browser.get(f"/dashboard/api/{kind}", params={
                "site_id": SITE, "period": "month", "date": "0001-01-01", "property": "event:page"})
            assert response.status_code == 400, (kind, response.text)


@pytest.mark.parametrize("path", ["/api/v1/stats/realtime/visitors", "/api/v1/export"])
def test_a_site_id_that_is_not_a_domain_is_refused_before_any_storage_walk(client, path):
    response = client.get(path, params={"site_id": "x/../../../..", "date": "2025-11-27"})
    assert response.status_code == 400 and "Invalid site ID" in response.json()["error"]
