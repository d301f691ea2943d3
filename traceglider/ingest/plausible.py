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

Lenient where Plausible is (a bad part is dropped, the event kept), so what its
script and clients send is never lost:

| sent | kept as |
|---|---|
| revenue without an ISO 4217 code and a finite amount (the script's `"$":{}`) | the event, no revenue |
| a URL of any scheme but `data:` (`app://localhost/login`) | its host and path |
| a relative URL (`/blog`) | hostname `(none)`, the path |
| more than 30 props, or props whose value is empty, a list or an object | the first 30 usable ones |
| `interactive` that is not a boolean | ignored (interactive) |
| no `domain` | the URL's host, as Plausible does |

Strict where leniency would hurt: body and field sizes (413/400), a `data:` URL, a
prop key over 300 or value over 2,000 characters (Plausible's 400 too).
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import orjson

from traceglider.errors import BadRequest
from traceglider.ingest.request import MAX_NAME, MAX_PROPS, MAX_STRING, check_text, parse_props
from traceglider.ingest.urls import NO_HOST
from traceglider.sites import normalize_site
from traceglider.types import PipelineRow

MAX_DOMAINS = 10
MAX_PROP_KEY = 300
# ISO 4217 codes: Plausible discards revenue in any other currency.
CURRENCIES = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
    BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
    NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
""".split())  # noqa: SIM905 - a table reads better as text
CLICK_NAMES = ("Outbound Link: Click", "File Download", "Cloaked Link: Click")
_FIELDS = {
    "name": ("name", "n"), "url": ("url", "u"), "domain": ("domain", "d"),
    "referrer": ("referrer", "r"), "props": ("props", "p", "meta", "m"),
    "revenue": ("revenue", "$"), "interactive": ("interactive", "i"),
    "scroll_depth": ("sd",), "engagement_time": ("e",), "screen_width": ("screen_width", "w"),
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
    return check_text(value, key)


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


def _usable(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())  # Plausible drops blank values
    return isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value))


def _props(document: dict[str, Any]) -> str | None:
    """The first MAX_PROPS usable props; a key or value too long is still a 400."""
    key, value = _object(document, "props", "an object or JSON text of one")
    if value is None:
        return None
    scalars = {k: v for k, v in value.items() if k.strip() and _usable(v)}
    for name in scalars:
        if len(name) > MAX_PROP_KEY:
            raise BadRequest(f"{key}: property names must be 1 to {MAX_PROP_KEY} characters")
    return parse_props(dict(list(scalars.items())[:MAX_PROPS]), key)


def _revenue(document: dict[str, Any]) -> str | None:
    """Revenue as JSON text, or None when absent or unusable: Plausible discards bad
    revenue and keeps the event (its script sends `"$":{}` for tagged elements)."""
    _key, value = _field(document, "revenue")
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(value, dict):
        return None
    currency, amount = value.get("currency"), value.get("amount")
    if not (isinstance(currency, str) and currency.upper() in CURRENCIES):
        return None
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        return None
    try:
        number = Decimal(str(amount).strip())
    except InvalidOperation:
        return None
    # adjusted() reads the exponent without arithmetic: abs() of 1e999999999 overflows.
    if not number.is_finite() or (number and number.adjusted() >= 15):
        return None
    return orjson.dumps({"amount": str(number), "currency": currency.upper()}).decode()


def _integer(document: dict[str, Any], name: str, low: int, high: int) -> int | None:
    key, value = _field(document, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{key}: must be a number")
    return max(low, min(high, int(value)))  # Plausible clamps rather than refuses


def page_host(url: str) -> str | None:
    """The host of an absolute URL (any scheme: `app://localhost/login` is a mobile
    app's screen), or None for a relative one."""
    try:
        parts = urlsplit(url)
        return parts.hostname or None
    except ValueError:
        return None


def parse_plausible(document: Any, received_at: int) -> tuple[str, list[PipelineRow]]:
    """(first site, rows) of one Plausible event; one row per domain named."""
    if not isinstance(document, dict):
        raise BadRequest("body: must be a JSON object with name, url and domain")
    name = _text(document, "name", required=True, limit=MAX_NAME)
    assert name is not None
    url = _text(document, "url", required=True)
    assert url is not None
    url = url.strip()
    host = page_host(url)
    if url[:5].lower() == "data:":
        raise BadRequest(f"{_field(document, 'url')[0]}: scheme is not allowed")
    if not _field(document, "hash_mode")[1]:
        url = url.partition("#")[0]  # as Plausible: the fragment is the page only in hash mode
    domain_key, domains = _field(document, "domain")
    if domains is None and host:
        domains = host  # Plausible takes the site from the URL when no domain is given
    if not isinstance(domains, str) or not domains.strip():
        raise BadRequest(f"{domain_key}: required, the site domain (or a comma-separated list)")
    sites = list(dict.fromkeys(normalize_site(part.strip(), domain_key)
                               for part in domains.split(",") if part.strip()))
    if not sites:  # only commas
        raise BadRequest(f"{domain_key}: required, the site domain (or a comma-separated list)")
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
    base: PipelineRow = {
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
    if host is None:
        base["hostname"] = NO_HOST  # split_url keeps the path of a relative URL
    # Plausible ignores an `interactive` that is not a boolean.
    base["ctx"] = '{"interactive":false}' if _field(document, "interactive")[1] is False else None

    rows: list[PipelineRow] = []
    for site in sites:
        # Plausible's API has no event id; a fresh one per row (a retried request is
        # a second event there too).
        rows.append({**base, "event_id": uuid.uuid4().hex, "site": site})
    return sites[0], rows
