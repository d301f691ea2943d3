"""Plausible's names for devices, operating systems and browsers, and how values stored
before are read as them.

The collector stores Plausible's names (`Desktop`, `Mac`, `Microsoft Edge`), as its
Stats API documents them, so `visit:device==Desktop` or `visit:os==Mac` finds what
a Plausible user expects. Events stored before kept their names (`desktop`, `macOS`,
`Edge`, or ua-parser's raw families such as `Mobile Safari`): nothing is migrated.
Instead every read goes through `read_sql`, which maps an old name to the new one, so
old and new rows group and filter as one value. A leaf module: ingest and stats both
import it.

Devices follow Plausible's own ingestion (from the user agent, with Client Hints
here): `Desktop`, `Mobile` or `Tablet`. Plausible's docs also list `Laptop`, which it
gave from the screen width before; neither gives it from the user agent, and we
never store it, but read it where a file has it.
"""

from __future__ import annotations

# Stored device types, lower-cased -> Plausible's. `other` (consoles, TVs, unknown)
# has no Plausible name: it reads as no value, `(none)`.
DEVICES: dict[str, str | None] = {
    "desktop": "Desktop", "laptop": "Laptop", "mobile": "Mobile", "tablet": "Tablet", "other": None,
}
# Our names before, and ua-parser families -> device-detector's, which Plausible shows.
OPERATING_SYSTEMS = {
    "macOS": "Mac", "Mac OS X": "Mac", "ChromeOS": "Chrome OS", "Chromium OS": "Chrome OS",
    "Linux": "GNU/Linux",
}
BROWSERS = {
    "Edge": "Microsoft Edge", "Edge Mobile": "Microsoft Edge", "IE": "Internet Explorer",
    "Samsung Internet": "Samsung Browser", "DuckDuckGo": "DuckDuckGo Privacy Browser",
    "DuckDuckGo Mobile": "DuckDuckGo Privacy Browser",
    "Mobile Safari": "Safari", "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome",
    "HeadlessChrome": "Chrome", "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox",
    "Firefox Focus": "Firefox", "Opera Mobile": "Opera", "Opera Mini": "Opera",
    # in-app browsers and web views: Plausible counts them as one "Mobile App"
    "Android WebView": "Mobile App", "Chrome Mobile WebView": "Mobile App",
    "Safari (in-app)": "Mobile App", "Mobile Safari UI/WKWebView": "Mobile App",
    "Google App": "Mobile App", "Google": "Mobile App", "Facebook": "Mobile App",
    "Instagram": "Mobile App",
}
# Property -> its stored column, for the properties whose values are renamed.
RENAMED_COLUMNS = {"visit:device": "device_type", "visit:os": "os", "visit:browser": "browser"}


def device(stored: str | None) -> str | None:
    if stored is None:
        return None
    return DEVICES.get(stored.lower(), stored)


def operating_system(stored: str | None) -> str | None:
    return OPERATING_SYSTEMS.get(stored, stored) if stored else stored


def browser(stored: str | None) -> str | None:
    return BROWSERS.get(stored, stored) if stored else stored


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _case(expr: str, mapping: dict[str, str | None], key: str) -> str:
    whens = " ".join(f"WHEN {_literal(old)} THEN {_literal(new) if new else 'NULL'}"
                     for old, new in mapping.items())
    return f"(CASE {key} {whens} ELSE {expr} END)"


def read_sql(prop: str, expr: str) -> str:
    """The SQL reading column `expr` of property `prop` as Plausible's name; other
    properties' expressions come back unchanged. Only the constants above are
    formatted into it."""
    if prop == "visit:device":
        return _case(expr, dict(DEVICES), f"lower({expr})")
    if prop == "visit:os":
        return _case(expr, dict(OPERATING_SYSTEMS), expr)
    if prop == "visit:browser":
        return _case(expr, dict(BROWSERS), expr)
    return expr
