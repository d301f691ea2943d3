"""The enrichment steps in order, end to end over parsed batches."""

from __future__ import annotations

import orjson

from traceglider.config import load
from traceglider.ingest.enrich import build_steps
from traceglider.ingest.pipeline import Pipeline
from traceglider.ingest.request import parse_batch
from traceglider.ingest.urls import split_url
from traceglider.schema import COLUMNS

from .conftest import NOW_US, make_request

PUBLIC_IP = "81.2.69.160"  # data only: nothing is sent to it


def pipeline(storage, **env: str) -> Pipeline:  # type: ignore[no-untyped-def]
    settings = load(env={"TG_STORAGE": "/nonexistent", **env})
    return Pipeline([("split_url", split_url)] + build_steps(settings, storage))


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
