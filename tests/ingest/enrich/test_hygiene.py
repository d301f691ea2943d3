"""The hygiene step keeps e-mails, tokens and unlisted parameters out of storage."""

from __future__ import annotations

import pytest

from traceglider.ingest.enrich.hygiene import MAX_TITLE, make_hygiene_step, scrub
from traceglider.ingest.urls import split_url

from .conftest import make_request, make_row

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(("text", "expected"), [
    ("/users/jane.doe@example.org/edit", "/users/[email]/edit"),
    ("/users/jane.doe%40example.org", "/users/[email]"),
    ("contact JANE+news@Example.CO.UK now", "contact [email] now"),
    (f"/auth/{JWT}", "/auth/[token]"),
    ("/reset/7f3a9c2be41d4f0a8b6e5d3c2a1f0e9d8c7b6a5f", "/reset/[token]"),
    ("/orders/123e4567-e89b-12d3-a456-426614174000", "/orders/123e4567-e89b-12d3-a456-426614174000"),
    ("/blog/how-to-write-a-very-long-slug-for-seo-purposes", "/blog/how-to-write-a-very-long-slug-for-seo-purposes"),
    ("/docs/getting-started", "/docs/getting-started"),
    ("@handle on mastodon", "@handle on mastodon"),
])
def test_scrub_replaces_emails_and_tokens(text: str, expected: str) -> None:
    assert scrub(text) == expected


CASES = [
    # url, referrer -> stored url, query, path, referrer
    ("https://example.com/a?utm_source=hn&utm_medium=social&gclid=abc&session=s3cr3t",
     None,
     ("https://example.com/a?utm_source=hn&utm_medium=social", "utm_source=hn&utm_medium=social", "/a", None)),
    ("https://example.com/?ref=producthunt&email=jane@example.org&token=xyz", None,
     ("https://example.com/?ref=producthunt", "ref=producthunt", "/", None)),
    ("https://example.com/?utm_term=jane@example.org", None,
     ("https://example.com/?utm_term=[email]", "utm_term=[email]", "/", None)),
    ("https://user:pass@Example.com:8443/p#access_token=abc", None,
     ("https://example.com:8443/p", None, "/p", None)),
    ("https://example.com/app#/settings/profile", None,
     ("https://example.com/app#/settings/profile", None, "/app#/settings/profile", None)),
    ("https://example.com/app#!/inbox/jane@example.org", None,
     ("https://example.com/app#!/inbox/[email]", None, "/app#!/inbox/[email]", None)),
    ("https://example.com/docs#install", None, ("https://example.com/docs", None, "/docs", None)),
    ("//example.com/p#session=abcdef", None, ("//example.com/p", None, "/p", None)),
    ("https://example.com/x", "https://www.google.com/search?q=my+medical+condition#frag",
     ("https://example.com/x", None, "/x", "https://www.google.com/search")),
    ("https://example.com/x", f"https://app.example.net/invite/{JWT}?code=1",
     ("https://example.com/x", None, "/x", "https://app.example.net/invite/[token]")),
    ("http://[::1]:8000/local?page=2", None, ("http://[::1]:8000/local", None, "/local", None)),
]


@pytest.mark.parametrize(("url", "referrer", "expected"), CASES)
def test_urls_keep_only_what_may_be_stored(url: str, referrer: str | None, expected: tuple) -> None:
    request = make_request()
    row = split_url(make_row(url=url, referrer=referrer), request)
    assert isinstance(row, dict)
    row = make_hygiene_step()(row, request)
    assert isinstance(row, dict)
    assert (row["url"], row["query"], row["path"], row["referrer"]) == expected


def test_the_allowlist_keeps_extra_parameters() -> None:
    request = make_request()
    row = split_url(make_row(url="https://example.com/search?q=shoes&page=2&sid=1"), request)
    row = make_hygiene_step(["q", "PAGE"])(row, request)  # type: ignore[arg-type]
    assert isinstance(row, dict)
    assert row["query"] == "q=shoes&page=2"
    assert row["url"] == "https://example.com/search?q=shoes&page=2"


def test_titles_props_and_campaign_values_are_scrubbed_and_capped() -> None:
    request = make_request()
    row = make_row(
        title="Welcome jane@example.org " + "x" * 1000,
        utm_campaign="spring jane@example.org",
        props='{"url":"https://files.example.com/report.pdf?X-Amz-Signature=abc#p","who":"jane@example.org","n":3}',
    )
    row = make_hygiene_step()(row, request)
    assert isinstance(row, dict)
    assert row["title"].startswith("Welcome [email] ") and len(row["title"]) == MAX_TITLE
    assert row["utm_campaign"] == "spring [email]"
    assert row["props"] == '{"url":"https://files.example.com/report.pdf","who":"[email]","n":3}'
