"""Every panel of the dashboard gives the same numbers from raw files (sessionised
while reading) as from the compacted store (events sorted, visits dataset), and from
a store compacted up to yesterday with today's files raw, as a live server has it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.stats.conftest import SITE
from traceglider.dashboard.panels import default_requests
from traceglider.stats import service
from traceglider.stats.api import handle
from traceglider.stats.engine import Engine
from traceglider.storage.compact import compact
from traceglider.storage.local import LocalStorage

BASE = {"site_id": SITE, "period": "30d", "date": "2025-11-27"}
PROPERTIES = ("event:page", "event:name", "event:hostname", "visit:source", "visit:referrer", "visit:channel",
              "visit:utm_source", "visit:utm_medium", "visit:utm_campaign", "visit:country", "visit:region",
              "visit:device", "visit:browser", "visit:os", "visit:os_version", "visit:entry_page",
              "visit:exit_page")
FILTERS = ("", "visit:country==DE", "event:page==/pricing", "visit:source==Google", "visit:device==Mobile",
           "event:page==/blog/**;visit:country!=US")


def panels(engine: Engine) -> list[tuple[str, dict[str, str], Any]]:
    from datetime import date

    requests = [(kind, params if params["period"] == "custom" else {**params, "date": BASE["date"]})
                for kind, params in default_requests(SITE, lambda s: service.site_config(engine, s),
                                                     today=date(2025, 11, 27))]
    for filters in FILTERS:
        f = {"filters": filters} if filters else {}
        requests.append(("aggregate", {**BASE, **f, "compare": "previous_period", "metrics":
                                       "visitors,visits,pageviews,events,views_per_visit,bounce_rate,visit_duration"}))
        requests.append(("timeseries", {**BASE, **f, "metrics": "visitors,visits,pageviews,bounce_rate"}))
        for prop in PROPERTIES if not filters else PROPERTIES[:1] + PROPERTIES[9:12]:
            requests.append(("breakdown", {**BASE, **f, "property": prop, "limit": "20",
                                           "metrics": "visitors,visits,pageviews,bounce_rate,visit_duration"}))
        requests.append(("goals", {**BASE, **f}))
    for period in ({"period": "day", "date": "2025-11-20"}, {"period": "7d", "date": "2025-11-27"},
                   {"period": "custom", "date": "2025-11-10,2025-11-12"}):
        requests.append(("aggregate", {**BASE, **period, "metrics": "visitors,visits,pageviews,events,bounce_rate"}))
    requests.append(("navigation", {**BASE, "path": "/pricing"}))
    requests.append(("breakdown", {**BASE, "property": "event:page", "metrics": "visitors,scroll_depth,time_on_page"}))
    return [(kind, params, handle(kind, engine, params)) for kind, params in requests]


@pytest.fixture(scope="module")
def raw_answers(demo_root: Path) -> list[tuple[str, dict[str, str], Any]]:
    engine = Engine(LocalStorage(demo_root))
    try:
        return panels(engine)
    finally:
        engine.close()


@pytest.mark.parametrize("state", ["compacted", "compacted up to yesterday"])
def test_every_panel_is_the_same_before_and_after_compaction(raw_answers: list, demo_root: Path,
                                                             tmp_path: Path, state: str) -> None:
    root = tmp_path / "copy"
    shutil.copytree(demo_root, root)
    storage = LocalStorage(root)
    compact(storage, before=None if state == "compacted" else "2025-11-27")
    assert any(i.key.startswith("visits/") for i in storage.list("visits/"))
    engine = Engine(storage)
    try:
        if state == "compacted":
            assert not engine.plan(SITE, *_range()).runs  # every day read from its files
        for (kind, params, before), (_, _, after) in zip(raw_answers, panels(engine), strict=True):
            assert after == before, (kind, params)
    finally:
        engine.close()


def _range() -> tuple[Any, Any]:
    from datetime import datetime

    return datetime(2025, 10, 29), datetime(2025, 11, 28)
