"""Whatever the page sends, no e-mail address survives hygiene."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from traceglider.ingest.enrich.hygiene import ALWAYS_KEPT, clean_url, scrub

LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
DOMAIN = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,2}\.[a-z]{2,6}", fullmatch=True)
NOISE = st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=30)


@given(LOCAL, DOMAIN, NOISE, NOISE)
def test_no_email_survives_scrub(local: str, domain: str, before: str, after: str) -> None:
    email = f"{local}@{domain}"
    assert email not in scrub(f"{before} {email} {after}")


@given(LOCAL, DOMAIN, st.sampled_from(["path", "query", "utm"]))
def test_no_email_survives_in_a_url(local: str, domain: str, where: str) -> None:
    email = f"{local}@{domain}"
    url = {"path": f"https://example.com/u/{email}/x",
           "query": f"https://example.com/?e={email}&utm_source=a",
           "utm": f"https://example.com/?utm_term={email}"}[where]
    cleaned = clean_url(url, frozenset(ALWAYS_KEPT)) or ""
    assert email not in cleaned and "@" not in cleaned
