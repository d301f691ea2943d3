"""One demo dataset per test session, and an app serving the stats routers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from traceglider import demo_data
from traceglider.config import load
from traceglider.dashboard.routes import dashboard_router
from traceglider.stats.api import AppEngine, stats_router
from traceglider.storage.local import LocalStorage

SITE = "demo.example"
TOKEN = "test-token-123"
NOW = 1_764_244_800.0  # 2025-11-27 12:00 UTC


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    demo_data.generate(LocalStorage(root), SITE, 20_000, days=30, seed=7, now=NOW,
                       files_per_day=2, duplicate_rate=0.01)
    return root


@pytest.fixture(scope="session")
def client(demo_root: Path) -> Iterator[TestClient]:
    settings = load(env={"TG_STORAGE": str(demo_root), "TG_API_TOKEN": TOKEN, "TG_SECRET": "x" * 32})
    storage = LocalStorage(demo_root)
    app = FastAPI()
    engine = AppEngine(settings, storage)
    app.include_router(stats_router(settings, engine))
    app.include_router(dashboard_router(settings, storage, engine))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c
    engine.close()


@pytest.fixture
def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(NOW))
