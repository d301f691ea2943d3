"""Plausible's Events API (`POST /api/event`) as rows, so Plausible's own script and
integrations can send here by changing one URL.

Both spellings are read: the API's (`name`, `url`, `domain`, `referrer`, `props`,
`revenue`, `interactive`) and the short keys Plausible's script sends (`n`, `u`, `d`,
`r`, `p` or `m`, `$`, `i`, plus `sd`/`e` on engagement events and `w` for the screen
width). `props`/`meta` may be an object or JSON text, as Plausible accepts; values
that are not strings, numbers or booleans are ignored there, as Plausible does. A
comma-separated `domain` fans the event out to every site named (Plausible's
roll-ups); each row carries its own `site`, the route must check each against
`TG_SITES`. Errors are 400s naming the field.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from traceglider.errors import BadRequest
from traceglider.ingest.request import MAX_NAME, MAX_STRING, parse_props
from traceglider.sites import normalize_site

MAX_DOMAINS = 10
CLICK_NAMES = ("Outbound Link: Click", "File Download", "Cloaked Link: Click")
_FIELDS = {
    "name": ("name", "n"), "url": ("url", "u"), "domain": ("domain", "d"),
    "referrer": ("referrer", "r"), "props": ("props", "p", "meta", "m"),
    "revenue": ("revenue", "$"), "interactive": ("interactive", "i"),
    "scroll_depth": ("sd",), "engagement_time": ("e",), "screen_width": ("w",),
    "hash_mode": ("h",),
}


def _field(document: dict[str, Any], name: str) -> tuple[str, Any]:
    for key in _FIELDS[name]:
        if key in document and document[key] is not None:
            return key, document[key]
    return _FIELDS[name][0], None


def _text(document: dict[str, Any], name: str, *, required: bool = False,
          limit: int = MAX_STRING) -> str | None:
    key, value = _field(document, name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{key}: required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key}: must be a string")
    if len(value) > limit:
        raise BadRequest(f"{key}: longer than {limit} characters")
    return value


def _object(document: dict[str, Any], name: str, what: str) -> tuple[str, dict[str, Any] | None]:
    """A field that Plausible's clients send as an object or as JSON text of one."""
    key, value = _field(document, name)
    if value is None:
        return key, None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(f"{key}: must be {what}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{key}: must be {what}")
    return key, value


def _props(document: dict[str, Any]) -> str | None:
    key, value = _object(document, "props", "an object or JSON text of one")
    if value is None:
        return None
    scalars = {k: v for k, v in value.items()
               if isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))}
    return parse_props(scalars, key)


def _revenue(document: dict[str, Any]) -> str | None:
    key, value = _object(document, "revenue", "an object with amount and currency")
    if value is None:
        return None
    currency, amount = value.get("currency"), value.get("amount")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise BadRequest(f"{key}.currency: must be a 3-letter ISO 4217 code")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        raise BadRequest(f"{key}.amount: must be a number")
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        raise BadRequest(f"{key}.amount: must be a number") from None
    if not number.is_finite() or abs(number) >= Decimal("1e15"):
        raise BadRequest(f"{key}.amount: must be a finite number below 10^15")
    return orjson.dumps({"amount": str(number), "currency": currency.upper()}).decode()


def _integer(document: dict[str, Any], name: str, low: int, high: int) -> int | None:
    key, value = _field(document, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{key}: must be a number")
    return max(low, min(high, int(value)))  # Plausible clamps rather than refuses


def parse_plausible(document: Any, received_at: int) -> tuple[str, list[dict[str, Any]]]:
    """(first site, rows) of one Plausible event; one row per domain named."""
    if not isinstance(document, dict):
        raise BadRequest("body: must be a JSON object with name, url and domain")
    name = _text(document, "name", required=True, limit=MAX_NAME)
    assert name is not None
    url = _text(document, "url", required=True)
    assert url is not None
    if not url.lower().startswith(("http://", "https://")):
        raise BadRequest(f"{_field(document, 'url')[0]}: must be an http(s) URL")
    if not _field(document, "hash_mode")[1]:
        url = url.partition("#")[0]  # as Plausible: the fragment is the page only in hash mode
    domain_key, domains = _field(document, "domain")
    if not isinstance(domains, str) or not domains.strip():
        raise BadRequest(f"{domain_key}: required, the site domain (or a comma-separated list)")
    sites = list(dict.fromkeys(normalize_site(part.strip(), domain_key)
                               for part in domains.split(",") if part.strip()))
    if len(sites) > MAX_DOMAINS:
        raise BadRequest(f"{domain_key}: at most {MAX_DOMAINS} domains")

    if name == "pageview":
        kind = "pageview"
    elif name == "engagement":
        kind = "engagement"
    elif name in CLICK_NAMES:
        kind = "click"
    else:
        kind = "custom"
    base: dict[str, Any] = {
        "type": kind,
        "name": name,
        "received_at": received_at,
        "client_ts": None,
        "url": url,
        "referrer": _text(document, "referrer"),
        "title": None,
        "props": _props(document),
        "revenue": _revenue(document),
        "screen_width": _integer(document, "screen_width", 0, 100_000),
    }
    if kind == "engagement":
        base["scroll_depth"] = _integer(document, "scroll_depth", 0, 100)
        base["engagement_ms"] = _integer(document, "engagement_time", 0, 7 * 86_400_000)
    interactive_key, interactive = _field(document, "interactive")
    if interactive is not None and not isinstance(interactive, bool):
        raise BadRequest(f"{interactive_key}: must be true or false")
    base["ctx"] = '{"interactive":false}' if interactive is False else None

    rows = []
    for site in sites:
        # Plausible's API has no event id; a fresh one per row (a retried request is
        # a second event there too).
        rows.append({**base, "event_id": uuid.uuid4().hex, "site": site})
    return sites[0], rows
