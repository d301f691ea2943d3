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
