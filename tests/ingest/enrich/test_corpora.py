"""Bot detection measured on public corpora shipped by packages.

Crawlers: every example user agent of the `crawler-user-agents` PyPI package
(monperrus/crawler-user-agents, MIT). Real browsers: the real-world user agents in
`fake-useragent`'s `browsers.jsonl` (Apache-2.0) and the 100 most common browser
user agents of the npm package `top-user-agents` (MIT, vendored in tests/data).
Goal: at least 99% of crawlers dropped, at most 0.5% of browsers wrongly dropped.
Run `pytest tests/ingest/enrich/test_corpora.py -s` to print the rates.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from traceglider.ingest.enrich.bots import is_bot_user_agent

DATA = Path(__file__).parents[2] / "data"


def crawler_corpus() -> list[str]:
    text = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text("utf-8")
    return sorted({ua for entry in json.loads(text) for ua in entry.get("instances", [])})


def browser_corpus() -> list[str]:
    lines = resources.files("fake_useragent").joinpath("data/browsers.jsonl").read_text("utf-8")
    agents = {json.loads(line)["useragent"] for line in lines.splitlines() if line.strip()}
    agents |= set(json.loads((DATA / "top-user-agents.json").read_text("utf-8")))
    return sorted(agents)


def test_at_least_99_percent_of_crawlers_are_dropped() -> None:
    corpus = crawler_corpus()
    missed = [ua for ua in corpus if not is_bot_user_agent(ua)]
    rate = 1 - len(missed) / len(corpus)
    print(f"\ncrawlers dropped: {rate:.2%} of {len(corpus)} ({len(missed)} missed)")
    assert len(corpus) > 1000
    assert rate >= 0.99, missed


def test_at_most_half_a_percent_of_browsers_are_dropped() -> None:
    corpus = browser_corpus()
    wrong = [ua for ua in corpus if is_bot_user_agent(ua)]
    rate = len(wrong) / len(corpus)
    print(f"\nbrowsers wrongly dropped: {rate:.2%} of {len(corpus)} ({len(wrong)})")
    assert len(corpus) > 500
    assert rate <= 0.005, wrong
