"""The source step names where a visit came from, and its channel."""

from __future__ import annotations

import pytest

from traceglider.ingest.enrich.source import CHANNELS, SOURCES, classify, source
from traceglider.ingest.urls import split_url

from .conftest import make_request, make_row

CASES = [
    # page URL, referrer -> source, channel
    ("https://example.com/", None, (None, "direct")),
    ("https://example.com/", "https://www.google.com/", ("Google", "search")),
    ("https://example.com/", "https://www.google.co.uk/", ("Google", "search")),
    ("https://example.com/", "https://news.google.com/articles/x", ("Google", "search")),
    ("https://example.com/", "https://mail.google.com/mail/u/0/", ("Gmail", "email")),
    ("https://example.com/", "android-app://com.google.android.gm/", ("Gmail", "email")),
    ("https://example.com/", "https://www.bing.com/search?q=x", ("Bing", "search")),
    ("https://example.com/", "https://duckduckgo.com/", ("DuckDuckGo", "search")),
    ("https://example.com/", "https://search.yahoo.co.jp/", ("Yahoo!", "search")),
    ("https://example.com/", "https://l.facebook.com/l.php?u=x", ("Facebook", "social")),
    ("https://example.com/", "https://t.co/abc", ("X", "social")),
    ("https://example.com/", "https://www.linkedin.com/feed/", ("LinkedIn", "social")),
    ("https://example.com/", "https://old.reddit.com/r/python/", ("Reddit", "social")),
    ("https://example.com/", "https://news.ycombinator.com/item?id=1", ("Hacker News", "social")),
    ("https://example.com/", "https://github.com/org/repo", ("GitHub", "referral")),
    ("https://example.com/", "https://blog.someone.net/post", ("blog.someone.net", "referral")),
    ("https://example.com/", "https://google.evil.example/", ("google.evil.example", "referral")),
    # A referrer from the site itself is direct.
    ("https://example.com/b", "https://example.com/a", (None, "direct")),
    ("https://www.example.com/b", "https://www.example.com/a", (None, "direct")),
    ("https://example.com/b", "https://shop.example.com/a", (None, "direct")),
    # Campaign tags beat the referrer; known aliases take the listed name.
    ("https://example.com/?utm_source=hn", "https://t.co/x", ("Hacker News", "social")),
    ("https://example.com/?utm_source=newsletter&utm_medium=email", None, ("Newsletter", "email")),
    ("https://example.com/?utm_source=google&utm_medium=cpc", None, ("Google", "paid")),
    ("https://example.com/?utm_source=partner-blog", None, ("partner-blog", "referral")),
    ("https://example.com/?utm_source=x&utm_medium=social", None, ("X", "social")),
    ("https://example.com/?utm_source=acme&utm_medium=paid_social", None, ("acme", "paid")),
    ("https://example.com/?ref=producthunt", None, ("Product Hunt", "social")),
    ("https://example.com/?via=someone", None, ("someone", "referral")),
    # Ad click ids mean paid, naming the network when nothing else does.
    ("https://example.com/?gclid=Cj0KCQ", "https://www.google.com/", ("Google", "paid")),
    ("https://example.com/?gclid=Cj0KCQ", None, ("Google", "paid")),
    ("https://example.com/?fbclid=IwAR0", "https://l.facebook.com/", ("Facebook", "paid")),
    ("https://example.com/?msclkid=abc", None, ("Bing", "paid")),
    ("https://example.com/?utm_source=spring&gclid=x", None, ("spring", "paid")),
]


@pytest.mark.parametrize(("url", "referrer", "expected"), CASES)
def test_source_and_channel(url: str, referrer: str | None, expected: tuple) -> None:
    request = make_request()
    row = split_url(make_row(url=url, referrer=referrer), request)
    assert isinstance(row, dict)
    row = source(row, request)
    assert isinstance(row, dict)
    assert (row["source"], row["channel"]) == expected


def test_every_listed_source_has_a_known_channel() -> None:
    listed = {*SOURCES.hosts.values(), *SOURCES.wildcards.values(), *SOURCES.aliases.values()}
    assert listed and all(s.channel in CHANNELS for s in listed)
    names = {s.name for s in listed}
    for name in ("Google", "Bing", "DuckDuckGo", "Facebook", "X", "LinkedIn", "Reddit",
                 "Hacker News", "GitHub"):
        assert name in names


def test_classify_uses_the_row_site_for_self_referrals() -> None:
    row = make_row(site="shop.example.org", hostname="shop.example.org",
                   referrer_host="shop.example.org")
    assert classify(row, "example.com") == (None, "direct")
