"""docs/stats.md's Plausible compatibility table is checked against the server: every
route it lists is routed (or, marked No, not), and its lists of fields, metrics,
dimensions and operators are the parsers' own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from traceglider.app import create_app
from traceglider.config import load
from traceglider.errors import BadRequest
from traceglider.ingest import plausible
from traceglider.stats import query as v1
from traceglider.stats import v2_query as v2

DOC = Path(__file__).parents[2] / "docs" / "stats.md"


def sections() -> dict[str, list[tuple[str, str, str]]]:
    text = DOC.read_text().split("## Plausible compatibility", 1)[1].split("\n## ", 1)[0]
    out: dict[str, list[tuple[str, str, str]]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            out[current] = []
        elif line.startswith("| ") and current and not line.startswith("| feature") and "---" not in line:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            out[current].append((cells[0], cells[1], cells[2] if len(cells) > 2 else ""))
    return out


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def row(section: str, starts: str) -> tuple[str, str, str]:
    return next(r for r in sections()[section] if r[0].startswith(starts))


def test_every_row_says_yes_no_or_differs() -> None:
    rows = [r for rs in sections().values() for r in rs]
    assert len(rows) > 40
    assert {r[1] for r in rows} <= {"Yes", "No", "Differs"}
    assert set(sections()) == {"Events API", "Stats API v1", "Stats API v2", "Sites API"}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    settings = load(env={"TG_STORAGE": str(tmp_path_factory.mktemp("compat")), "TG_SECRET": "s" * 32,
                         "TG_COMPACT_SECONDS": "0", "TG_DASHBOARD_PREPARE": "false"})
    # the routes as the app describes them (/openapi.json)
    paths = create_app(settings).openapi()["paths"]
    return {(method.upper(), re.sub(r"\{[^}]+\}", "*", path)) for path, ops in paths.items() for method in ops}


def test_the_routes_listed_are_the_routes_served(routes: set[tuple[str, str]]) -> None:
    checked = 0
    for rows in sections().values():
        for feature, supported, _ in rows:
            for name in names(feature):
                match = re.fullmatch(r"(GET|POST|PUT|DELETE) (/\S*)", name)
                if not match:
                    continue
                key = (match.group(1), re.sub(r":\w+", "*", match.group(2)))
                assert (key in routes) == (supported != "No"), (feature, supported, key)
                checked += 1
    assert checked >= 20


def test_the_events_api_fields_are_the_parsers() -> None:
    cell = row("Events API", "fields")[0]
    listed = {frozenset(re.findall(r"`([^`]+)`", group)) for group in re.findall(r"`[^`]+`(?:/`[^`]+`)*", cell)}
    assert listed == {frozenset(keys) for keys in plausible._FIELDS.values()}


def test_the_v1_metrics_are_the_parsers() -> None:
    assert set(names(row("Stats API v1", "metrics")[0])) == set(v1.METRICS)


def test_the_v2_lists_are_the_parsers() -> None:
    metrics = names(row("Stats API v2", "metrics `visitors`")[0]) + names(row("Stats API v2", "metrics `total")[0])
    assert set(metrics) == set(v2.METRICS)
    events = names(row("Stats API v2", "dimensions `event:goal`")[0])
    assert set(events) - {"event:props:<name>"} == set(v2.EVENT_DIMENSIONS)
    assert set(names(row("Stats API v2", "dimensions `time`")[0])) == set(v2.TIME_DIMENSIONS)
    ops = names(row("Stats API v2", "filters")[0])
    assert set(ops) - {'{"case_sensitive": false}'} == set(v2.LEAF_OPERATORS) | {"and", "or", "not"}


@pytest.mark.parametrize("document", [
    {"filters": [["has_done", ["is", "event:name", ["Signup"]]]]},
    {"filters": [["is", "segment", [1]]]},
    {"include": {"comparisons": {"mode": "previous_period"}}},
])
def test_what_v2_marks_no_is_refused(document: dict) -> None:
    from datetime import UTC, datetime

    with pytest.raises(BadRequest):
        v2.parse({"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d", **document},
                 datetime(2026, 11, 20, tzinfo=UTC))
