from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import BROWSER_UA
from traceglider.app import create_app
from traceglider.config import load


def make_client(tmp_path: Path, **env: str) -> TestClient:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_FLUSH_SECONDS": "0.05",
                         "TG_SITES": "example.com,shop.example.org", **env})
    return TestClient(create_app(settings), base_url="https://collector.test",
                      headers={"user-agent": BROWSER_UA})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as test_client:
        yield test_client
