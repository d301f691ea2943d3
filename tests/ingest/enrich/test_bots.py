"""The bots step drops crawlers, monitors, headless and automated browsers."""

from __future__ import annotations

import pytest

from traceglider.ingest.enrich.bots import drop_bots, is_bot_user_agent, load_patterns
from traceglider.ingest.pipeline import Drop

from .conftest import CHROME_MAC, make_request, make_row

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3_2 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/18.3.1 Mobile/15E148 Safari/604.1")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.mark.parametrize(("user_agent", "bot"), [
    (CHROME_MAC, False),
    (IPHONE, False),
    (FIREFOX, False),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/142.0.0.0 Safari/537.36", True),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 Playwright/1.40.0", True),
    ("curl/8.5.0", True),
    ("python-requests/2.32.3", True),
    ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", True),
    ("UptimeRobot/2.0 (+http://www.uptimerobot.com/)", True),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", True),
    ("", True),
    ("   ", True),
])
def test_user_agents_are_classified(user_agent: str, bot: bool) -> None:
    assert is_bot_user_agent(user_agent) is bot


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, None),
    ({"ctx": {"wd": True}}, "navigator.webdriver"),
    ({"ctx": {"wd": False}}, None),
    ({"ctx": {"brands": "HeadlessChrome;Chromium"}}, "headless brand"),
    ({"headers": {"sec-ch-ua": '"HeadlessChrome";v="142", "Chromium";v="142"'}}, "headless brand"),
    ({"headers": {"sec-ch-ua": '"Google Chrome";v="142", "Chromium";v="142"'}}, None),
    ({"user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, "user agent"),
])
def test_the_step_drops_automation_with_a_reason(changes: dict, reason: str | None) -> None:
    result = drop_bots(make_row(), make_request(**changes))
    if reason is None:
        assert isinstance(result, dict)
    else:
        assert result == Drop("bot", reason)


def test_the_verdict_is_computed_once_per_request() -> None:
    request = make_request(ctx={"wd": True})
    drop_bots(make_row(), request)
    request.ctx["wd"] = False  # a cached verdict is not recomputed
    assert drop_bots(make_row(), request) == Drop("bot", "navigator.webdriver")


def test_every_vendored_pattern_compiles_in_python() -> None:
    import re

    for pattern in load_patterns():
        re.compile(pattern)
