"""`create_app` owns its long-lived parts (engine, dashboard answers, maintenance) and
closes them on shutdown, and the one clock it is given is the time all of them read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from traceglider import demo_data
from traceglider.app import create_app
from traceglider.config import load
from traceglider.dashboard.answers import Answers
from traceglider.maintenance import Maintainer
from traceglider.stats.api import AppEngine
from traceglider.storage.local import LocalStorage

SITE = "clock.example"
TOKEN = "app-token-123"
THEN = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC).timestamp()  # long before the wall clock's today
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(root: Path, **extra: str):  # type: ignore[no-untyped-def]
    return load(env={"TG_STORAGE": str(root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "c" * 32,
                     "TG_SPOOL_PATH": str(root.parent / "spool"), **extra})


def test_two_apps_on_one_storage_get_engines_of_their_own_closed_at_shutdown(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    demo_data.generate(storage, SITE, 300, days=2, seed=1)
    settings = settings_for(tmp_path / "data")
    first, second = create_app(settings, storage), create_app(settings, storage)
    assert isinstance(first.state.engine, AppEngine) and first.state.engine is not second.state.engine
    with TestClient(first) as one, TestClient(second) as two:
        for client in (one, two):
            answer = client.get("/api/v1/stats/aggregate", params={"site_id": SITE, "period": "7d"}, headers=AUTH)
            assert answer.status_code == 200 and answer.json()["results"]["visitors"]["value"] > 0
        engines = first.state.engine.built, second.state.engine.built
        assert engines[0] is not None and engines[1] is not None and engines[0] is not engines[1]
        assert all(engine._con is not None for engine in engines)  # each opened its own DuckDB
        answers = first.state.answers
        assert isinstance(answers, Answers) and answers is not second.state.answers
    # shut down: the DuckDB connections are closed and the answers' refresher stopped
    assert first.state.engine.built is None and second.state.engine.built is None
    assert all(engine._con is None for engine in engines)
    assert answers._stop.is_set() and second.state.answers._stop.is_set()


def test_the_clock_given_to_the_app_is_what_stats_dashboard_and_maintenance_read(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    demo_data.generate(storage, SITE, 400, days=3, seed=2, now=THEN)
    settings = settings_for(tmp_path / "data", TG_COMPACT_SECONDS="3600")
    salts = LocalStorage(tmp_path / "salts")
    app = create_app(settings, storage, clock=lambda: THEN, salt_storage=salts)
    with TestClient(app) as client:
        # the start-up prefetch fetched the app's today's salt
        assert [info.key for info in salts.list("salts/")] == ["salts/2025-03-14"]
        # "day" and "7d" end with the app's today, not the wall clock's
        for period in ("day", "7d"):
            answer = client.get("/api/v1/stats/aggregate", params={"site_id": SITE, "period": period}, headers=AUTH)
            assert answer.status_code == 200 and answer.json()["results"]["visitors"]["value"] > 0, period
        v2 = client.post("/api/v2/query", headers=AUTH,
                         json={"site_id": SITE, "metrics": ["visitors"], "date_range": "day"})
        assert v2.status_code == 200 and v2.json()["results"][0]["metrics"][0] > 0
        assert app.state.engine().clock() == THEN
        answers = app.state.answers
        assert isinstance(answers, Answers) and answers.today() == "2025-03-14"
        assert answers.clock() == THEN
        maintainer = app.state.maintainer
        assert isinstance(maintainer, Maintainer)
        summary = maintainer.run_once()
        assert sorted(summary["compacted"]) == ["2025-03-13", "2025-03-14"]  # the app's yesterday and today
        assert maintainer.status()["last"]["at"] == "2025-03-14T12:00:00+00:00"


def test_healthz_shows_each_pipeline_steps_drops_and_time_beside_the_totals(tmp_path: Path) -> None:
    from tests.helpers import BROWSER_UA, batch, wait_for

    app = create_app(settings_for(tmp_path / "data", TG_SITES="example.com", TG_FLUSH_SECONDS="0.05"))
    with TestClient(app, headers={"user-agent": BROWSER_UA}) as client:
        assert client.post("/collect", json=batch("example.com", ["kept"])).status_code == 202
        bot = client.post("/collect", json=batch("example.com", ["b1", "b2"]),
                          headers={"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
        assert bot.status_code == 202
        # a user agent never seen is classified when its rows are delivered (ingest.later)
        assert wait_for(lambda: client.get("/healthz").json()["dropped_events"]["bot"] == 2)
        body = client.get("/healthz").json()
    assert body["dropped_events"] == {**dict.fromkeys(body["dropped_events"], 0), "bot": 2}  # as before
    steps = body["pipeline_steps"]
    assert list(steps) == ["split_url", "bots", "privacy", "useragent", "geo", "source", "hygiene", "identity"]
    assert steps["bots"]["dropped"] == {"bot": 2}
    assert all(step["dropped"] == {} for name, step in steps.items() if name != "bots")
    assert steps["identity"]["seconds"] > 0  # the kept event went through every step


def test_an_app_that_only_collects_never_builds_an_engine(tmp_path: Path) -> None:
    from tests.helpers import BROWSER_UA, batch

    app = create_app(settings_for(tmp_path / "data", TG_SITES="example.com").replace(mode="lambda"))
    client = TestClient(app, headers={"user-agent": BROWSER_UA})  # as Mangum runs it: no lifespan
    assert client.post("/collect", json=batch("example.com", ["one"])).status_code == 202
    assert client.get("/healthz").status_code == 200
    assert app.state.engine.built is None and app.state.answers is None and app.state.maintainer is None
    stats = client.get("/api/v1/stats/aggregate", params={"site_id": "example.com", "period": "day"}, headers=AUTH)
    assert stats.status_code == 200 and app.state.engine.built is not None  # built when first asked
    app.state.engine.close()
