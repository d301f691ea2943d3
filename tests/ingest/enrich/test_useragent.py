"""The useragent step names browser, OS and device type; Client Hints win."""

from __future__ import annotations

from typing import Any

import pytest

from traceglider.ingest.enrich.useragent import make_user_agent_step

from .conftest import CHROME_MAC, make_request, make_row

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3_2 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/18.3.1 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1")
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.3 Safari/605.1.15")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/142.0.0.0 Mobile Safari/537.36")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/142.0.0.0 Safari/537.36")
EDGE_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SMART_TV = ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/2.2 Chrome/63.0.3239.84 TV Safari/537.36")

CASES: list[tuple[str, dict[str, Any], dict[str, str], tuple[Any, ...]]] = [
    # user agent, ctx, headers -> browser, version, os, os version, device, as stored (Plausible's names)
    (CHROME_MAC, {}, {}, ("Chrome", "142.0", "Mac", "10.15", "Desktop")),
    (IPHONE, {}, {}, ("Safari", "18.3", "iOS", "18.3", "Mobile")),
    (IPAD, {}, {}, ("Safari", "17.5", "iOS", "17.5", "Tablet")),
    (ANDROID_PHONE, {}, {}, ("Chrome", "142.0", "Android", "10", "Mobile")),
    (ANDROID_TABLET, {}, {}, ("Chrome", "142.0", "Android", "10", "Tablet")),
    (EDGE_WIN, {}, {}, ("Microsoft Edge", "142.0", "Windows", "10", "Desktop")),
    (FIREFOX_LINUX, {}, {}, ("Firefox", "133.0", "GNU/Linux", None, "Desktop")),
    # Hints from the tracker's ctx win: Brave looks like Chrome in its UA string.
    (CHROME_MAC, {"brands": "Not_A Brand;Chromium;Brave", "platform": "macOS", "mobile": False},
     {}, ("Brave", "142.0", "Mac", "10.15", "Desktop")),
    (CHROME_MAC, {"brands": "Chromium;Google Chrome"}, {}, ("Chrome", "142.0", "Mac", "10.15", "Desktop")),
    # ... and the low-entropy headers when ctx has none.
    (CHROME_MAC, {}, {"sec-ch-ua": '"Chromium";v="142", "Microsoft Edge";v="142", "Not?A_Brand";v="24"',
                      "sec-ch-ua-platform": '"Windows"', "sec-ch-ua-mobile": "?0"},
     ("Microsoft Edge", "142.0", "Windows", None, "Desktop")),
    (ANDROID_TABLET, {"mobile": True}, {}, ("Chrome", "142.0", "Android", "10", "Mobile")),
    (ANDROID_PHONE, {"mobile": False}, {}, ("Chrome", "142.0", "Android", "10", "Tablet")),
    # An iPad asking for desktop sites sends a Mac UA; its touch points give it away.
    (SAFARI_MAC, {"touch": 5}, {}, ("Safari", "18.3", "iOS", None, "Tablet")),
    (SAFARI_MAC, {"touch": 0}, {}, ("Safari", "18.3", "Mac", "10.15", "Desktop")),
    (SMART_TV, {}, {}, ("Samsung Browser", "2.2", "Tizen", "6.0", None)),
    ("", {}, {}, (None, None, None, None, None)),
]


@pytest.mark.parametrize(("user_agent", "ctx", "headers", "expected"), CASES)
def test_browser_os_and_device(user_agent: str, ctx: dict, headers: dict, expected: tuple) -> None:
    row = make_user_agent_step()(make_row(), make_request(user_agent=user_agent, ctx=ctx, headers=headers))
    assert isinstance(row, dict)
    assert (row["browser"], row["browser_version"], row["os"], row["os_version"],
            row["device_type"]) == expected
    assert "user_agent" not in row


def test_the_raw_user_agent_is_stored_only_when_asked() -> None:
    row = make_user_agent_step(store_user_agent=True)(make_row(), make_request())
    assert isinstance(row, dict) and row["user_agent"] == CHROME_MAC
