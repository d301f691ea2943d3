"""The enrichment steps in order, end to end over parsed batches."""

from __future__ import annotations

import orjson

from traceglider.config import load
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.pipeline import Pipeline
from traceglider.ingest.request import parse_batch
from traceglider.ingest.urls import split_url
from traceglider.schema import COLUMNS
from traceglider.storage.salts import SaltStore

from .conftest import NOW_US, make_request

PUBLIC_IP = "81.2.69.160"  # data only: nothing is sent to it


def pipeline(storage, **env: str) -> Pipeline:  # type: ignore[no-untyped-def]
    settings = load(env={"TG_STORAGE": "/nonexistent", "TG_SECRET": "steps-test-secret-0123456789abcdef", **env})
    return Pipeline([("split_url", split_url)] + build_steps(settings, SaltStore(storage)))


def test_the_steps_run_in_the_documented_order(local_storage) -> None:  # type: ignore[no-untyped-def]
    assert pipeline(local_storage).names == [
        "split_url", "bots", "privacy", "useragent", "geo", "source", "hygiene", "identity"]
    assert "bots" not in pipeline(local_storage, TG_DROP_BOTS="false").names


def test_a_batch_is_enriched_and_holds_no_ip_or_secret(local_storage) -> None:  # type: ignore[no-untyped-def]
    document = {"site": "example.com", "ctx": {"sw": 1920, "platform": "macOS", "mobile": False},
                "events": [
                    {"id": "a", "type": "pageview", "ts": 1764280000000,
                     "url": "https://example.com/a/jane@example.org?utm_source=hn&gclid=SECRET1",
                     "ref": "https://news.ycombinator.com/item?id=SECRET2"},
                    {"id": "b", "type": "custom", "name": "Signup",
                     "url": "https://example.com/a?token=SECRET3", "props": {"plan": "pro"}},
                ]}
    site, ctx, rows = parse_batch(document, NOW_US)
    request = make_request(ip=PUBLIC_IP, ctx=ctx)
    kept = pipeline(local_storage).run(rows, request)
    assert [r["event_id"] for r in kept] == ["a", "b"]
    first = kept[0]
    assert (first["country"], first["browser"], first["device_type"]) == ("GB", "Chrome", "Desktop")
    assert (first["source"], first["channel"]) == ("Hacker News", "paid")
    assert first["url"] == "https://example.com/a/[email]?utm_source=hn"
    assert first["visitor_id"] == kept[1]["visitor_id"] and first["session_id"] == kept[1]["session_id"]
    assert set(first) <= set(COLUMNS)
    text = orjson.dumps(kept).decode()
    for secret in (PUBLIC_IP, "SECRET1", "SECRET2", "SECRET3", "jane@example.org"):
        assert secret not in text


def test_bots_are_dropped_and_counted(local_storage) -> None:  # type: ignore[no-untyped-def]
    steps = pipeline(local_storage)
    _, ctx, rows = parse_batch({"site": "example.com", "ctx": {"wd": True}, "events": [
        {"id": "a", "type": "pageview", "url": "https://example.com/"}]}, NOW_US)
    assert steps.run(rows, make_request(ctx=ctx)) == []
    assert steps.drop_counts()["bot"] == 1


def _row_by_row(steps: Pipeline) -> Pipeline:
    """The same steps without their request-level marks: each runs once per event."""
    def plain(step):  # type: ignore[no-untyped-def]
        return lambda row, request: step(row, request)

    return Pipeline([(name, plain(step)) for name, step in steps.steps])


def test_request_level_steps_give_the_rows_and_drops_of_running_row_by_row(local_storage) -> None:  # type: ignore[no-untyped-def]
    marked = pipeline(local_storage, TG_GPC_POLICY="drop")
    assert {name for name, step in marked.steps if hasattr(step, "per_request")} == {
        "bots", "privacy", "useragent", "geo", "identity"}
    plain = _row_by_row(pipeline(local_storage, TG_GPC_POLICY="drop"))
    cases = [
        ({"ctx": {"sw": 1920}}, {}),
        ({"ctx": {"wd": True}}, {}),  # a bot: every event dropped, each counted
        ({}, {"headers": {"sec-gpc": "1"}}),  # privacy drop
    ]
    for extra, request in cases:
        document = {"site": "example.com", **extra, "events": [
            {"id": "a", "type": "pageview", "url": "https://example.com/a?utm_source=x"},
            {"id": "b", "type": "pageview", "url": "no host here"},  # invalid, dropped by split_url
            {"id": "c", "type": "custom", "name": "Buy", "url": "https://example.com/c",
             "ref": "https://www.google.com/"}]}
        results = []
        for steps in (marked, plain):
            _, ctx, rows = parse_batch(document, NOW_US)
            results.append(steps.run(rows, make_request(ip=PUBLIC_IP, ctx=ctx, **request)))
        assert results[0] == results[1]
    assert marked.drop_counts() == plain.drop_counts()
    assert marked.drop_counts()["bot"] == 2 and marked.drop_counts()["privacy"] == 2
    assert marked.drop_counts()["invalid"] == 3  # split_url runs first, in each case


def test_a_failing_request_level_step_drops_each_event_as_an_error(local_storage) -> None:  # type: ignore[no-untyped-def]
    from traceglider.ingest.enrich import request_level

    def broken(row, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    steps = Pipeline([("split_url", split_url), ("broken", request_level(broken))])
    _, _, rows = parse_batch({"site": "example.com", "events": [
        {"id": "a", "type": "pageview", "url": "https://example.com/"},
        {"id": "b", "type": "pageview", "url": "https://example.com/b"}]}, NOW_US)
    assert steps.run(rows, make_request()) == [] and steps.drop_counts()["error"] == 2
