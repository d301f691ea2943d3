"""Site domains: the one normalisation shared by settings, requests and commands."""

from __future__ import annotations

import re
from typing import Any

from traceglider.errors import BadRequest

# `site=<site>` is a partition directory: one file name of at most 255 bytes on every
# backend (traceglider.storage.keys). Longer names are refused here, at the edge.
MAX_SITE = 250
_SITE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:\d{1,5})?$")


def normalize_site(value: Any, field: str = "site") -> str:
    """`www.Example.com` -> `example.com`; anything that is not a domain is a BadRequest."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{field}: required, a site domain such as example.com")
    site = value.strip().lower().removeprefix("www.")
    if len(site) > MAX_SITE:
        raise BadRequest(f"{field}: longer than {MAX_SITE} characters: {value[:100]!r}")
    if not _SITE.match(site):
        raise BadRequest(f"{field}: not a valid site domain: {value[:100]!r}")
    return site


SITE_ID_MISSING = "Missing site ID. Please provide the required site_id parameter with your request."


def site_id(value: Any, missing: str = SITE_ID_MISSING, invalid: str | None = None) -> str:
    """The `site_id` a stats, sites or dashboard request names, as `normalize_site` has
    it (it names storage paths). `missing` and `invalid` are the messages of the API
    asking (Plausible's differ by API); by default the Stats API v1's."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(missing)
    try:
        return normalize_site(value.strip(), "site_id")
    except BadRequest:
        raise BadRequest(invalid or f"Invalid site ID {value.strip()[:100]!r}: a site domain such as example.com"
                         ) from None
