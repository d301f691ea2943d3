"""Unique visitors per time bucket come from the visits (a visitor counts in every
bucket its visit overlaps); they must equal the count over the events themselves,
which the engine computes when the same timeseries also asks for pageviews."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stats.conftest import SITE
from traceglider.stats.api import handle
from traceglider.stats.engine import Engine
from traceglider.storage.local import LocalStorage

PERIODS = [({"period": "custom", "date": "2025-11-19,2025-11-21"}, "hour"),
           ({"period": "30d", "date": "2025-11-27"}, "date"),
           ({"period": "30d", "date": "2025-11-27"}, "week"),
           ({"period": "6mo", "date": "2025-11-27"}, "month")]


@pytest.fixture(scope="module")
def engine(demo_root: Path):  # type: ignore[no-untyped-def]
    eng = Engine(LocalStorage(demo_root), result_entries=0)
    yield eng
    eng.close()


@pytest.mark.parametrize("filters", ["", "visit:country==DE", "visit:source==Google|Direct / None"])
@pytest.mark.parametrize(("period", "interval"), PERIODS)
def test_visitors_by_bucket_from_visits_equal_visitors_from_events(engine: Engine, period: dict, interval: str,
                                                                    filters: str) -> None:
    base = {"site_id": SITE, **period, "interval": interval, **({"filters": filters} if filters else {})}
    from_visits = handle("timeseries", engine, {**base, "metrics": "visitors"})["results"]
    from_events = handle("timeseries", engine, {**base, "metrics": "visitors,pageviews"})["results"]
    assert sum(r["visitors"] for r in from_visits) > 0
    assert [(r["date"], r["visitors"]) for r in from_visits] == [(r["date"], r["visitors"]) for r in from_events]
