"""The pipeline counts every drop by step and reason, times each step, and logs the
drop's detail at debug level."""

from __future__ import annotations

import logging
from typing import Any, get_args

import pytest

from tests.ingest.enrich.conftest import make_request, make_row
from traceglider.ingest.pipeline import DROP_REASONS, Drop, DropReason, Pipeline, RequestInfo, per_request


def keep(row: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
    return row


def odd_ones_invalid(row: dict[str, Any], request: RequestInfo) -> dict[str, Any] | Drop:
    return Drop("invalid", "odd id") if int(row["event_id"][1:]) % 2 else row


def bots_of(request: RequestInfo) -> dict[str, Any] | Drop:
    return Drop("bot", "user agent") if "bot" in request.user_agent else {"browser": "Chrome"}


def broken(row: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
    raise RuntimeError("a bug")


def steps() -> Pipeline:
    return Pipeline([("validate", odd_ones_invalid), ("bots", per_request(lambda row, req: row, bots_of)),
                     ("keep", keep)])


def rows(n: int) -> list[dict[str, Any]]:
    return [make_row(event_id=f"e{i}") for i in range(n)]


def test_drops_are_counted_per_step_and_reason_and_every_step_is_timed() -> None:
    pipeline = steps()
    assert len(pipeline.run(rows(4), make_request())) == 2
    assert pipeline.run(rows(4), make_request(user_agent="somebot/1.0")) == []  # the 2 even ones, at once
    status = pipeline.step_status()
    assert list(status) == ["validate", "bots", "keep"]
    assert status["validate"]["dropped"] == {"invalid": 4}
    assert status["bots"]["dropped"] == {"bot": 2}
    assert status["keep"]["dropped"] == {}
    assert all(seconds > 0 for seconds in pipeline.step_seconds.values())  # /healthz rounds to the microsecond
    assert all(isinstance(step["seconds"], float) for step in status.values())
    # the totals by reason, as /healthz has always shown them
    assert pipeline.drop_counts() == {**dict.fromkeys(DROP_REASONS, 0), "invalid": 4, "bot": 2}


def test_a_failing_step_is_an_error_drop_of_that_step() -> None:
    pipeline = Pipeline([("broken", broken)])
    assert pipeline.run(rows(3), make_request()) == []
    assert pipeline.step_status()["broken"]["dropped"] == {"error": 3}


def test_the_detail_of_a_drop_is_logged_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="traceglider.pipeline"):
        steps().run(rows(2), make_request(user_agent="somebot/1.0"))
    lines = [r.getMessage() for r in caplog.records]
    assert "step validate dropped 1 row(s): invalid (odd id)" in lines
    assert "step bots dropped 1 row(s): bot (user agent)" in lines


def test_drop_reasons_are_one_literal_type_checked_at_run_time_too() -> None:
    assert get_args(DropReason) == DROP_REASONS and "bot" in DROP_REASONS
    with pytest.raises(ValueError, match="unknown drop reason"):
        Drop("spam")  # type: ignore[arg-type]


def test_request_level_steps_in_a_row_fill_every_row_and_leave_their_cached_columns_alone() -> None:
    cached = {"browser": "Chrome", "os": "Linux"}  # a step that hands out the same dict each time

    def seen(row: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        row["seen_browser"] = row.get("browser")  # a row-level step after the run reads its columns
        return row

    def marked(whole: Any) -> Any:  # a step function of its own: the mark is an attribute
        return per_request(lambda row, request: row, whole)

    pipeline = Pipeline([
        ("useragent", marked(lambda request: cached)),
        ("geo", marked(lambda request: {"country": "DE", "os": "overridden"})),
        ("seen", seen),
        ("identity", marked(lambda request: {"visitor_id": "v1"})),
    ])
    kept = pipeline.run(rows(3), make_request())
    assert [(r["browser"], r["os"], r["country"], r["seen_browser"], r["visitor_id"]) for r in kept] == [
        ("Chrome", "overridden", "DE", "Chrome", "v1")] * 3  # later steps win, as one update after another
    assert cached == {"browser": "Chrome", "os": "Linux"}
    assert all(seconds > 0 for seconds in pipeline.step_seconds.values())
