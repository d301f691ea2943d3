"""/collect leaves a user agent it has never seen to the flusher (traceglider.ingest.later):
the spool holds the row with the user agent to classify (never the address), and the
stored rows and the drop counts are what the request path would have made."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.dataset as ds

from tests.helpers import batch, wait_for
from traceglider.ingest.enrich.bots import known_bot_user_agent
from traceglider.ingest.enrich.useragent import known_user_agent
from traceglider.spool.wal import read_records

from .conftest import make_client

ADDRESS = "81.2.69.160"


def fresh_browser() -> str:
    # A version no test has sent, so neither the parser nor the bot patterns know it.
    return (f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/131.0.{uuid.uuid4().int % 10**6}.0 Safari/537.36")


def fresh_bot() -> str:
    return f"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) probe/{uuid.uuid4().hex}"


def spooled(root: Path) -> bytes:
    return b"".join(b"".join(read_records(path)[0]) for path in root.rglob("*") if path.suffix in (".open", ".wal"))


def stored(root: Path) -> list[dict]:
    events = root / "data" / "events"
    if not events.exists():
        return []
    return ds.dataset(str(events), partitioning="hive").to_table().to_pylist()


def test_a_new_user_agent_is_classified_by_the_flusher_not_before_the_answer(tmp_path: Path) -> None:
    browser, bot = fresh_browser(), fresh_bot()
    with make_client(tmp_path, TG_FLUSH_SECONDS="3600", TG_TRUSTED_PROXIES="1") as client:
        for ids, user_agent in ((["b1", "b2"], browser), (["r1", "r2", "r3"], bot)):
            response = client.post("/collect", json=batch("example.com", ids),
                                   headers={"user-agent": user_agent, "x-forwarded-for": ADDRESS})
            assert response.status_code == 202
        # Answered without matching the crawler patterns or parsing either user agent.
        assert known_bot_user_agent(browser) is None and known_user_agent(browser) is None
        assert known_bot_user_agent(bot) is None
        wal = spooled(tmp_path / "data")
        assert b'"_later"' in wal and browser.encode() in wal and bot.encode() in wal
        assert ADDRESS.encode() not in wal  # the country and the visitor id came from it, before
        assert client.get("/healthz").json()["dropped_events"]["bot"] == 0

        assert client.app.state.sink.flush()
        rows = stored(tmp_path)
        assert sorted(row["event_id"] for row in rows) == ["b1", "b2"]  # the bot's rows are not stored
        assert {(row["browser"], row["os"], row["device_type"], row["country"]) for row in rows} == {
            ("Chrome", "Mac", "Desktop", "GB")}
        health = client.get("/healthz").json()
        assert health["dropped_events"]["bot"] == 3 and health["pending_events"] == 0
        assert health["pipeline_steps"]["bots"]["dropped"] == {"bot": 3}  # the step it stood for
        # The flusher taught the request path: the next requests of both are decided there.
        assert known_bot_user_agent(bot) is True and known_user_agent(browser) is not None


def test_a_known_user_agent_is_finished_before_the_answer(tmp_path: Path) -> None:
    browser, bot = fresh_browser(), fresh_bot()
    with make_client(tmp_path, TG_FLUSH_SECONDS="3600") as client:
        for n, user_agent in enumerate((browser, bot, browser, bot)):
            client.post("/collect", json=batch("example.com", [f"e{n}"]), headers={"user-agent": user_agent})
            if n == 1:  # both now classified by the flusher
                assert client.app.state.sink.flush()
        # Their second requests: the bot dropped at once, the browser's row complete in the spool.
        assert client.get("/healthz").json()["dropped_events"]["bot"] == 2
        wal = spooled(tmp_path / "data")
        assert b'"e2"' in wal and b'"_later"' not in wal and b'"e3"' not in wal
        assert client.app.state.sink.flush()
        rows = {row.pop("event_id"): row for row in stored(tmp_path)}
        assert sorted(rows) == ["e0", "e2"]
        # Finished later or at once, the same row (but for its own time and visit).
        for row in rows.values():
            for column in ("received_at", "client_ts", "session_id", "visit_id", "url", "path"):
                row.pop(column, None)
        assert rows["e0"] == rows["e2"] and rows["e0"]["browser_version"] == "131.0"


def test_with_bots_kept_the_flusher_drops_none(tmp_path: Path) -> None:
    bot = fresh_bot()
    with make_client(tmp_path, TG_FLUSH_SECONDS="3600", TG_DROP_BOTS="false") as client:
        client.post("/collect", json=batch("example.com", ["k1"]), headers={"user-agent": bot})
        assert client.app.state.sink.flush()
        assert [row["event_id"] for row in stored(tmp_path)] == ["k1"]
        assert client.get("/healthz").json()["dropped_events"]["bot"] == 0


def test_the_events_api_still_answers_what_it_dropped(tmp_path: Path) -> None:
    # Plausible's x-plausible-dropped is in the answer: that route classifies at once.
    with make_client(tmp_path) as client:
        response = client.post("/api/event", json={"name": "pageview", "url": "https://example.com/",
                                                   "domain": "example.com"},
                               headers={"user-agent": fresh_bot()})
        assert response.status_code == 202 and response.headers["x-plausible-dropped"] == "1"
        assert wait_for(lambda: client.get("/healthz").json()["dropped_events"]["bot"] == 1)
