"""One normalisation of site domains, and one of the `site_id` the APIs take."""

from __future__ import annotations

import pytest

from traceglider.errors import BadRequest
from traceglider.sites import SITE_ID_MISSING, normalize_site, site_id


@pytest.mark.parametrize(("raw", "site"), [("example.com", "example.com"), (" www.Example.COM ", "example.com"),
                                           ("shop.example.org:8080", "shop.example.org:8080")])
def test_a_site_id_is_the_normalised_domain(raw: str, site: str) -> None:
    assert site_id(raw) == site == normalize_site(raw.strip())


@pytest.mark.parametrize("raw", [None, "", "   ", 7])
def test_a_missing_site_id_has_the_asking_apis_message(raw: object) -> None:
    with pytest.raises(BadRequest) as default:
        site_id(raw)
    assert default.value.message == SITE_ID_MISSING
    with pytest.raises(BadRequest, match="Parameter `site_id` is required"):
        site_id(raw, "Parameter `site_id` is required")


@pytest.mark.parametrize("raw", ["x/../../..", "exa mple.com", "a" * 300, "-lead.example"])
def test_a_site_id_that_is_not_a_domain_is_refused_with_the_apis_message(raw: str) -> None:
    with pytest.raises(BadRequest) as default:
        site_id(raw)
    assert default.value.message.startswith("Invalid site ID ") and "a site domain such as" in default.value.message
    with pytest.raises(BadRequest) as v2:
        site_id(raw, "missing", "Invalid site ID")
    assert v2.value.message == "Invalid site ID"
