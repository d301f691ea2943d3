"""The stats routes under generated input: schemathesis over their declared query
parameters, and a property test that any event the collector accepts can be queried
by every stats route without a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import BROWSER_UA
from tests.stats.conftest import SITE, TOKEN
from traceglider.app import create_app
from traceglider.config import load

STATS = ("/api/v1/stats/", "/api/v1/export")


def test_the_stats_routes_declare_their_query_parameters(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/stats/aggregate", "/api/v1/stats/timeseries", "/api/v1/stats/breakdown"):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"site_id", "period", "date", "metrics", "filters", "compare"} <= names, path
    breakdown = {p["name"]: p for p in paths["/api/v1/stats/breakdown"]["get"]["parameters"]}
    assert breakdown["property"]["required"] and breakdown["site_id"]["required"]


def _operations(app):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [op.ok() for op in schema.get_all_operations() if op.ok().path.startswith(STATS)]


def test_generated_parameters_never_get_a_5xx(client: TestClient) -> None:
    """Over the demo dataset (so the queries have data to read), with the token."""
    operations = _operations(client.app)
    assert len(operations) >= 8
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            query = {**(case.query or {})}
            if query.get("site_id") is not None and hash(str(query)) % 2:
                query["site_id"] = SITE  # half the cases on the site that has data
            response = client.get(case.formatted_path, params=query)
            assert response.status_code < 500, f"{case.formatted_path} {query}: {response.text[:300]}"

        check()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("accepted")
    settings_ = load(env={"TG_STORAGE": str(tmp / "data"), "TG_RATE_LIMIT": "0", "TG_API_TOKEN": TOKEN,
                          "TG_COMPACT_SECONDS": "0", "TG_DASHBOARD_PREPARE": "false",
                          "TG_FLUSH_SECONDS": "3600"})
    with TestClient(create_app(settings_), headers={"user-agent": BROWSER_UA}) as test_client:
        yield test_client


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
EVENTS = st.fixed_dictionaries({
    "type": st.sampled_from(["pageview", "custom", "click", "engagement", "form_submit", "error"]),
    "name": TEXT.filter(bool),
    "path": TEXT,
    "host": st.one_of(st.just("example.com"), st.from_regex(r"[a-z0-9]{1,10}\.[a-z]{2,5}", fullmatch=True)),
    "title": TEXT,
    "prop": TEXT.filter(bool),
    "value": st.one_of(TEXT, st.integers(-10**12, 10**12), st.booleans()),
})


@given(EVENTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_accepted_event_is_queryable_by_every_stats_route(collector: TestClient, generated) -> None:  # type: ignore[no-untyped-def]
    url = f"https://{generated['host']}/{quote(generated['path'], safe='/')}"
    event = {"id": json.dumps(generated)[:60], "type": generated["type"], "name": generated["name"],
             "url": url, "title": generated["title"], "props": {generated["prop"][:300]: generated["value"]}}
    response = collector.post("/collect", json={"site": "example.com", "events": [event]})
    if response.status_code != 202:
        assert response.status_code < 500
        return
    assert collector.app.state.sink.flush()  # type: ignore[attr-defined]
    auth = {"authorization": f"Bearer {TOKEN}"}
    name = generated["name"].replace("|", "\\|").replace(";", "\\;")
    prop_key = generated["prop"][:64]
    queries = [
        ("aggregate", {"metrics": "visitors,visits,pageviews,events,bounce_rate,visit_duration"}),
        ("timeseries", {"period": "7d"}),
        ("breakdown", {"property": "event:name", "filters": f"event:name=={name}"}),
        ("breakdown", {"property": "event:page"}),
        ("breakdown", {"property": "event:hostname", "compare": "previous_period"}),
        ("breakdown", {"property": f"event:props:{prop_key}"}),
        ("breakdown", {"property": "visit:entry_page", "filters": f"event:page~{name}"}),
        ("goals", {"goals": generated["name"].replace(",", " ")}),
        ("realtime/visitors", {}),
    ]
    for route, params in queries:
        answer = collector.get(f"/api/v1/stats/{route}", params={"site_id": "example.com", "period": "day",
                                                                 **params}, headers=auth)
        assert answer.status_code < 500, (route, params, answer.text[:300])
