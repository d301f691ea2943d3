"""Dashboard answers served from the last computation and refreshed in the background."""

from __future__ import annotations

import pytest

from traceglider.dashboard.answers import WATCH_SECONDS, Answers
from traceglider.errors import BadRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counter:
    """A computation whose answer says how many times it ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.fail = False

    def __call__(self, kind: str, params: dict[str, str]) -> dict[str, int]:
        if self.fail:
            raise BadRequest("no such metric")
        self.calls.append((kind, params))
        return {"n": len(self.calls)}


def make(refresh: float = 30.0, max_stale: float = 300.0) -> tuple[Answers, Clock, Counter, list[str]]:
    clock, compute, day = Clock(), Counter(), ["2026-11-28"]
    answers = Answers(compute, refresh=refresh, max_stale=max_stale, clock=clock, today=lambda: day[0])
    answers._ensure_thread = lambda: None  # type: ignore[method-assign]  # rounds run by hand
    return answers, clock, compute, day


P = {"site_id": "a.example", "period": "30d"}


def test_first_request_computes_then_the_answer_is_served_with_its_age() -> None:
    answers, clock, compute, _ = make()
    assert answers.get("aggregate", P) == ({"n": 1}, 0.0)
    clock.now += 12
    assert answers.get("aggregate", dict(reversed(P.items()))) == ({"n": 1}, 12.0)  # order of params
    assert answers.get("timeseries", P)[0] == {"n": 2}  # another request is computed
    assert answers.computed == 2


def test_a_round_recomputes_what_was_looked_at_once_due() -> None:
    answers, clock, compute, _ = make(refresh=30)
    answers.get("aggregate", P)
    clock.now += 10
    answers.refresh_round()
    assert len(compute.calls) == 1  # not due yet
    clock.now += 25
    answers.refresh_round()
    assert answers.get("aggregate", P) == ({"n": 2}, 0.0)
    assert answers.computed == 1  # the browser never waited for the second


def test_an_answer_older_than_max_stale_is_computed_while_the_browser_waits() -> None:
    answers, clock, compute, _ = make(refresh=30, max_stale=300)
    answers.get("aggregate", P)
    clock.now += 301
    assert answers.get("aggregate", P) == ({"n": 2}, 0.0)
    assert answers.computed == 2


def test_requests_nobody_looks_at_are_left_alone_but_prepared_ones_are_kept_fresh() -> None:
    answers, clock, compute, _ = make(refresh=30, max_stale=300)
    answers.get("breakdown", P)
    answers.prepare([("aggregate", P)])
    answers.refresh_round()  # computes the prepared one
    assert [k for k, _ in compute.calls] == ["breakdown", "aggregate"]
    clock.now += WATCH_SECONDS + 1  # nobody looked for a while
    answers.refresh_round()
    assert [k for k, _ in compute.calls] == ["breakdown", "aggregate", "aggregate"]  # prepared: kept fresh
    answer, age = answers.get("aggregate", P)
    assert answer == {"n": 3} and age == 0
    assert answers.computed == 1  # the breakdown, asked for first


def test_errors_reach_the_browser_and_are_not_kept() -> None:
    answers, _, compute, _ = make()
    compute.fail = True
    with pytest.raises(BadRequest):
        answers.get("aggregate", P)
    answers.prepare([("aggregate", P)])
    answers.refresh_round()  # fails in the background: the entry goes, nothing is served
    compute.fail = False
    assert answers.get("aggregate", P) == ({"n": 1}, 0.0)


def test_a_new_day_starts_afresh_and_prepares_its_default_views_again() -> None:
    answers, clock, compute, day = make()
    answers.get("aggregate", P)
    answers.prepare([("timeseries", P)])
    answers.refresh_round()
    day[0] = "2026-11-29"  # "30d" now means other days
    clock.now += 1
    assert answers.get("aggregate", P) == ({"n": 3}, 0.0)
    answers.refresh_round()  # the prepared one, for the new day
    assert compute.calls[-1][0] == "timeseries" and len(compute.calls) == 4
    assert answers.get("timeseries", P) == ({"n": 4}, 0.0)
    assert answers.computed == 2


def test_the_background_thread_refreshes_and_stops() -> None:
    import threading

    done = threading.Event()
    calls: list[int] = []

    def compute(kind: str, params: dict[str, str]) -> int:
        calls.append(1)
        if len(calls) >= 3:
            done.set()
        return len(calls)

    answers = Answers(compute, refresh=0.05, max_stale=10)
    answers.get("aggregate", P)
    assert done.wait(10), "the refresher did not run"
    answers.close()
    n = len(calls)
    assert answers._thread is not None and not answers._thread.is_alive()  # ended: nothing runs after
    assert answers.get("aggregate", P)[0] >= 3 and len(calls) == n  # and the answer kept, not computed
    assert answers.get("aggregate", P)[0] >= 3


def test_closing_while_the_thread_is_being_started_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's shutdown can close the answers while `prepare` (on another thread)
    # is starting the refresher: close must not find a thread that is not started yet.
    import threading

    real_start = threading.Thread.start
    starting = threading.Event()

    def slow_start(thread: threading.Thread) -> None:
        starting.set()
        threading.Event().wait(0.3)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    answers = Answers(lambda kind, params: 1, refresh=30, max_stale=300)
    preparing = threading.Thread(target=answers.prepare, args=([("aggregate", P)],))
    real_start(preparing)
    assert starting.wait(5)
    answers.close()  # raised "cannot join thread before it is started"
    preparing.join(5)
    assert answers._thread is not None and not answers._thread.is_alive()


def test_files_replaced_under_a_refresh_is_one_log_line_and_a_real_failure_keeps_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    from traceglider.errors import Unavailable

    answers, clock, compute, _ = make(refresh=30)
    answers.get("aggregate", P)
    failure: list[Exception] = []

    def flaky(kind: str, params: dict[str, str]) -> dict[str, int]:
        raise failure[0]

    answers.compute = flaky
    caplog.set_level("INFO", logger="traceglider")
    # what the engine raises when compaction replaced the files twice during one read
    failure.append(Unavailable("the data changed while it was read; please try again", retry_after=1))
    clock.now += 31
    answers.refresh_round()
    (record,) = [r for r in caplog.records if "dashboard" in r.getMessage()]
    assert record.exc_info is None and "\n" not in caplog.text.strip()
    assert "the data changed while it was read" in record.getMessage()
    assert answers.get("aggregate", P)[0] == {"n": 1}  # the last answer is kept
    caplog.clear()
    failure[0] = RuntimeError("a bug")
    clock.now += 31
    answers.refresh_round()
    (record,) = [r for r in caplog.records if "dashboard" in r.getMessage()]
    assert record.levelname == "WARNING" and record.exc_info is not None
