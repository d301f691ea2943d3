"""`serve` computes each site's default dashboard view when it starts."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import wait_for
from traceglider import demo_data
from traceglider.app import create_app
from traceglider.config import load
from traceglider.dashboard.answers import Answers, build_answers
from traceglider.dashboard.panels import default_requests
from traceglider.stats.api import AppEngine
from traceglider.storage.local import LocalStorage


def test_the_default_view_is_ready_before_anyone_asks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    demo_data.generate(storage, "a.example", 3_000, days=30, seed=3)
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SECRET": "p" * 32})
    app = create_app(settings, storage)
    with TestClient(app):
        answers = app.state.answers
        assert isinstance(answers, Answers)
        wanted = default_requests("a.example", lambda s: {"funnels": demo_data.DEMO_FUNNELS})
        assert wait_for(lambda: all(answers._entries.get(answers.key(k, p)) is not None
                                    and answers._entries[answers.key(k, p)].answer is not None
                                    for k, p in wanted), timeout=60)
        answer, age = answers.get(*wanted[0])
        assert answer["results"]["visitors"]["value"] > 0
        assert answers.computed == 0
    assert answers._stop.is_set()  # closed with the app


def test_nothing_is_prepared_when_switched_off(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    demo_data.generate(storage, "a.example", 500, days=2, seed=3)
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SECRET": "p" * 32,
                         "TG_DASHBOARD_PREPARE": "false"})
    app = create_app(settings, storage)
    with TestClient(app):
        answers = app.state.answers
        assert isinstance(answers, Answers) and not answers._entries
    off = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_DASHBOARD_REFRESH": "0"})
    assert build_answers(off, AppEngine(off, storage)) is None
    assert create_app(off, storage).state.answers is None
