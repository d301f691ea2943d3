"""Browser, OS and device type from the user agent, with Client Hints winning.

ua-parser (uap-core's rules, through the ua-parser-rs accelerator where installed)
reads the UA string once per distinct string; the answer is cached. Then the hints
correct it: the tracker's `ctx` (`brands`, `platform`, `mobile`, `touch`) first, the
low-entropy `Sec-CH-UA*` request headers second. Hints tell Brave from Chrome, an
Android tablet from a phone, and an iPad (which sends a Mac UA) from a Mac.

The parsing below works in its own names (`macOS`, `desktop`); the step stores
Plausible's (`Mac`, `Desktop`), from `traceglider.value_names`, which also reads the
values stored before under the new names.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from traceglider import value_names
from traceglider.ingest.enrich.remembered import Remembered
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.types import LaterWork, PipelineRow

UA_CACHE_SIZE = 16384
DEVICE_TYPES = ("desktop", "mobile", "tablet", "other")

# ua-parser family -> the name we store: mobile variants fold into their browser.
BROWSER_NAMES = {
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "HeadlessChrome": "Chrome",
    "Chrome Mobile WebView": "Android WebView", "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)", "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox", "Firefox Focus": "Firefox", "Edge Mobile": "Edge",
    "Opera Mobile": "Opera", "Opera Mini": "Opera Mini", "Samsung Internet": "Samsung Internet",
    "Yandex Browser": "Yandex Browser", "DuckDuckGo Mobile": "DuckDuckGo", "Google": "Google App",
    "Other": None,
}
# Linux distributions are kept apart, as Plausible reports them.
OS_NAMES = {
    "Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Chromium OS": "ChromeOS", "Other": None,
}
# Sec-CH-UA-Platform / navigator.userAgentData.platform values -> stored names.
PLATFORM_NAMES = {
    "windows": "Windows", "macos": "macOS", "android": "Android", "ios": "iOS",
    "chrome os": "ChromeOS", "chromium os": "ChromeOS", "linux": "Linux",
}
BRAND_NAMES = {
    "google chrome": "Chrome", "microsoft edge": "Edge", "opera": "Opera", "opera gx": "Opera",
    "brave": "Brave", "yandex": "Yandex Browser", "vivaldi": "Vivaldi",
    "samsung internet": "Samsung Internet", "duckduckgo": "DuckDuckGo",
}
DESKTOP_OS = frozenset({"Windows", "macOS", "Linux", "ChromeOS", "FreeBSD", "OpenBSD", "NetBSD",
                        "Ubuntu", "Fedora", "Debian", "Arch Linux", "Linux Mint", "openSUSE"})
_CH_BRAND = re.compile(r'"([^"]*)"\s*;\s*v="(\d+)')


class ParsedUA(NamedTuple):
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str  # a device type from the UA string alone


def _parser() -> Any:
    import ua_parser

    try:
        from ua_parser.regex import Resolver  # the Rust accelerator
    except ImportError:  # pragma: no cover - only without ua-parser-rs
        return ua_parser.Parser(ua_parser.BasicResolver(ua_parser.load_builtins()))
    # Lazy matchers: the Rust resolver reads only their patterns, and the eager ones
    # would compile some 1,300 Python regexes first (a second of a Lambda cold start).
    return ua_parser.Parser(Resolver(ua_parser.load_lazy_builtins()))


_PARSER: Any = None


def _version(*parts: str | None) -> str | None:
    major, minor = parts[0], parts[1] if len(parts) > 1 else None
    if not major:
        return None
    return f"{major}.{minor}" if minor else major


def _parse(user_agent: str) -> ParsedUA:
    global _PARSER
    if _PARSER is None:
        _PARSER = _parser()
    result = _PARSER.parse(user_agent)
    browser = version = os_name = os_version = None
    if result.user_agent is not None:
        family = result.user_agent.family
        browser = BROWSER_NAMES.get(family, family)
        version = _version(result.user_agent.major, result.user_agent.minor) if browser else None
    if result.os is not None:
        os_name = OS_NAMES.get(result.os.family, result.os.family)
        os_version = _version(result.os.major, result.os.minor) if os_name else None
    model = result.device.family if result.device is not None else ""
    if model == "iPad" or "Tablet" in user_agent or "iPad" in user_agent:
        device = "tablet"
    elif model in ("iPhone", "iPod") or "Mobile" in user_agent or "Mobi" in user_agent:
        device = "mobile"
    elif os_name == "Android":
        device = "tablet"  # Android without "Mobile" is a tablet by Google's convention
    elif os_name in DESKTOP_OS:
        device = "desktop"
    else:
        device = "other"
    return ParsedUA(browser, version, os_name, os_version, device)


_PARSED = Remembered(_parse, UA_CACHE_SIZE)


def parse_user_agent(user_agent: str) -> ParsedUA:
    return _PARSED(user_agent)


def known_user_agent(user_agent: str) -> ParsedUA | None:
    """`parse_user_agent` if it is known without parsing, else None."""
    return _PARSED.known(user_agent)


def _brand(brands: list[str]) -> str | None:
    """The browser named by UA-CH brands, skipping GREASE and the Chromium base."""
    names = []
    for brand in brands:
        brand = brand.strip()
        low = brand.lower()
        if not brand or "brand" in low or low.startswith("not") or low == "chromium":
            continue
        names.append(BRAND_NAMES.get(low, brand))
    if names:
        return names[0]
    return "Chromium" if any(b.strip().lower() == "chromium" for b in brands) else None


def with_hints(parsed: ParsedUA, ctx: dict[str, Any], headers: dict[str, str]) -> ParsedUA:
    browser, version, os_name, os_version, device = parsed
    brands: list[str] = []
    header_versions: dict[str, str] = {}
    if ctx.get("brands"):
        brands = str(ctx["brands"]).split(";")
    elif headers.get("sec-ch-ua"):
        for name, major in _CH_BRAND.findall(headers["sec-ch-ua"]):
            brands.append(name)
            header_versions[name] = major
    if brands:
        hinted = _brand(brands)
        if hinted and hinted != browser:
            # The UA string's version is still right for Chromium forks (same major).
            browser = hinted
    platform = ctx.get("platform") or headers.get("sec-ch-ua-platform", "").strip('"')
    hinted_os = PLATFORM_NAMES.get(str(platform).lower()) if platform else None
    if hinted_os and hinted_os != os_name:
        os_name, os_version = hinted_os, None
    mobile = ctx.get("mobile")
    if mobile is None and headers.get("sec-ch-ua-mobile") in ("?0", "?1"):
        mobile = headers["sec-ch-ua-mobile"] == "?1"
    if os_name == "macOS" and (ctx.get("touch") or 0) > 1:
        device, os_name, os_version = "tablet", "iOS", None  # an iPad asking for desktop sites
    elif mobile is True:
        device = "mobile"
    elif mobile is False and os_name == "Android":
        device = "tablet"
    elif mobile is False and os_name in DESKTOP_OS:
        device = "desktop"
    return ParsedUA(browser, version, os_name, os_version, device)


def stored_names(parsed: ParsedUA) -> tuple[str | None, ...]:
    """The values stored: Plausible's names for the browser, OS and device."""
    return (value_names.browser(parsed.browser), parsed.browser_version,
            value_names.operating_system(parsed.os), parsed.os_version, value_names.device(parsed.device))


def user_agent_columns(user_agent: str, ctx: dict[str, Any], headers: dict[str, str]) -> tuple[str | None, ...]:
    """(browser, browser_version, os, os_version, device_type) as stored."""
    return stored_names(with_hints(parse_user_agent(user_agent), ctx, headers))


HINT_HEADERS = ("sec-ch-ua", "sec-ch-ua-platform", "sec-ch-ua-mobile")
HINT_CTX = ("brands", "platform", "mobile", "touch")
# Stored columns by user agent and hints: a visitor's next requests cost one lookup
# instead of applying the hints again.
HintsKey = tuple[Any, ...]  # the user agent, then HINT_CTX's values, then HINT_HEADERS'


def _columns_for(key: HintsKey) -> tuple[str | None, ...]:
    split = 1 + len(HINT_CTX)
    ctx = {name: value for name, value in zip(HINT_CTX, key[1:split], strict=True) if value is not None}
    headers = {name: value for name, value in zip(HINT_HEADERS, key[split:], strict=True) if value is not None}
    return user_agent_columns(key[0], ctx, headers)


_BY_HINTS = Remembered(_columns_for, UA_CACHE_SIZE)


def _columns_of(request: RequestInfo) -> tuple[str | None, ...]:
    ctx, headers = request.ctx, request.headers
    return _BY_HINTS((request.user_agent, ctx.get("brands"), ctx.get("platform"), ctx.get("mobile"),
                      ctx.get("touch"), headers.get("sec-ch-ua"), headers.get("sec-ch-ua-platform"),
                      headers.get("sec-ch-ua-mobile")))


def later_work(request: RequestInfo) -> LaterWork:
    """What the flusher needs to finish a row whose user agent was left for later:
    the user agent and its hints (never the address)."""
    return {"ua": request.user_agent,
            "ctx": {key: request.ctx[key] for key in HINT_CTX if key in request.ctx},
            "headers": {key: request.headers[key] for key in HINT_HEADERS if key in request.headers}}


def make_user_agent_step(store_user_agent: bool = False) -> Any:
    def user_agent(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
        info = request.cache.get("ua")
        if info is None:
            if request.defer and (request.cache.get("later")
                                  or known_user_agent(request.user_agent) is None):
                # Not parsed yet: the flusher parses it (and matches the crawler
                # patterns if those are not known either), off the request path.
                request.cache["later"] = True
                info = (None,) * 5
            else:
                info = _columns_of(request)
            request.cache["ua"] = info
        if request.cache.get("later"):
            work = request.cache.get("later_work")
            if work is None:
                work = request.cache["later_work"] = later_work(request)
            row["_later"] = work
        (row["browser"], row["browser_version"], row["os"], row["os_version"],
         row["device_type"]) = info
        if store_user_agent:
            row["user_agent"] = request.user_agent[:1000] or None
        return row

    # Compile the parser's patterns before the first request rather than during it.
    user_agent.warm_up = lambda: parse_user_agent("Mozilla/5.0 (warm-up)")  # type: ignore[attr-defined]
    return user_agent
