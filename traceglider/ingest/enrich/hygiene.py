"""URL hygiene: nothing personal or secret reaches storage, whatever the page sent.

Runs after `split_url` and `source` (they read the raw query in memory), and rewrites
every stored text that may carry one:

- query strings keep only `utm_*`, `ref` and `TG_QUERY_ALLOWLIST`; ad click ids,
  session tokens and everything else are removed;
- e-mail addresses anywhere become `[email]`; tokens (JWTs, long random strings,
  `key=`-style secrets) become `[token]`; UUIDs and ordinary slugs are kept;
- user:password@ and fragments go (a fragment survives only as a `#/route`, which
  is then part of the page's `path` too: hash-routed apps get a row per route);
- the referrer keeps scheme, host and path: its query and fragment never reach storage;
- URLs inside props (outbound links, downloads) lose their query and fragment;
- lengths are capped (constants below): longer values are cut, never rejected, since
  parsing already refused anything over 2,000 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit

import orjson

from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.ingest.urls import UTM_KEYS
from traceglider.types import PipelineRow

MAX_URL = 2000
MAX_PATH = 1000
MAX_QUERY = 1000
MAX_REFERRER = 1000
MAX_TITLE = 500
MAX_UTM = 200
MAX_FRAGMENT = 200
ALWAYS_KEPT = (*UTM_KEYS, "ref")

EMAIL = re.compile(r"[\w.+%-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
# A JWT, or a run of 32+ URL-safe characters with both letters and digits that is
# not a UUID: session ids, API keys, signed-URL signatures, reset tokens.
TOKEN = re.compile(
    r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"
    r"|(?<![\w-])(?![0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-]))"
    r"(?=[\w-]*\d)(?=[\w-]*[a-zA-Z])[\w-]{32,}(?![\w-])",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)  # pages repeat: most URLs were cleaned a moment ago
def scrub(text: str) -> str:
    """The text with e-mail addresses and tokens replaced."""
    if "@" in text or "%40" in text:
        text = EMAIL.sub("[email]", text)
    if len(text) >= 32:
        text = TOKEN.sub("[token]", text)
    return text


@lru_cache(maxsize=4096)  # pages repeat: most URLs were cleaned a moment ago
def clean_query(query: str | None, allowed: frozenset[str]) -> str | None:
    """The query with only allowed parameters, each scrubbed, in the original encoding."""
    if not query:
        return None
    kept = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if key.lower() in allowed:
            kept.append(f"{key}={scrub(value)[:MAX_UTM]}" if value else key)
    return "&".join(kept)[:MAX_QUERY] or None


def query_params(query: str | None) -> dict[str, str]:
    """Lower-cased parameter names to decoded values (the last one wins)."""
    params = {}
    for pair in (query or "").split("&"):
        key, _, value = pair.partition("=")
        if value:
            params[unquote_plus(key).lower()] = unquote_plus(value)
    return params


def _fragment(fragment: str) -> str:
    # Hash routers (#/page, #!/page) carry the page; any other fragment may carry a
    # token (OAuth implicit flow puts access_token=... there).
    if fragment.startswith(("/", "!/")) and "=" not in fragment:
        return "#" + scrub(fragment)[:MAX_FRAGMENT]
    return ""


@lru_cache(maxsize=4096)  # pages repeat: most URLs were cleaned a moment ago
def clean_url(url: str | None, allowed: frozenset[str] | None, limit: int = MAX_URL,
              query: str | None = None) -> str | None:
    """The URL rebuilt from its clean parts; `allowed=None` drops the whole query, and
    a `query` already cleaned is used as it is."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        if ":" in host:
            host = f"[{host}]"
    except ValueError:
        return None
    if not parts.scheme and not parts.netloc and url.startswith("/"):  # a relative URL (Events API)
        if query is None and allowed is not None:
            query = clean_query(parts.query, allowed)
        rebuilt = scrub(parts.path)[:MAX_PATH] + ("?" + query if query else "")
        return (rebuilt + _fragment(parts.fragment))[:limit]
    if not parts.scheme or not host:  # not a URL we understand: scrub it as text
        base, _, fragment = url.partition("#")
        return (scrub(base) + _fragment(fragment))[:limit]
    path = scrub(parts.path)[:MAX_PATH]
    if query is None and allowed is not None:
        query = clean_query(parts.query, allowed)
    rebuilt = f"{parts.scheme.lower()}://{host.lower()}{port}{path}"
    if query:
        rebuilt += "?" + query
    return (rebuilt + _fragment(parts.fragment))[:limit]


def _clean_props(props: str) -> str:
    if "http" not in props and "@" not in props and len(props) < 32:
        return props
    values = orjson.loads(props)
    for key, value in values.items():
        if isinstance(value, str):
            if value.startswith(("http://", "https://")):
                values[key] = clean_url(value, None) or ""
            else:
                values[key] = scrub(value)
    return orjson.dumps(values).decode()


@lru_cache(maxsize=4096)  # pages and referrers repeat: one lookup per event for all four
def clean_locations(url: str | None, query: str | None, path: str | None, referrer: str | None,
                    allowed: frozenset[str]) -> tuple[str | None, str | None, str | None, str | None]:
    """(query, url, path, referrer) as stored."""
    query = clean_query(query, allowed)
    clean = clean_url(url, allowed, MAX_URL, query or "")
    if path:
        # a hash router's route is the page: "/app#/settings" (kept in the URL only
        # when the tracker runs in hash mode, or Plausible's script sent `h`)
        raw_url = url or ""
        route = _fragment(raw_url.partition("#")[2]) if "#" in raw_url else ""
        path = (scrub(path) + route)[:MAX_PATH]
    return query, clean, path, clean_url(referrer, None, MAX_REFERRER)


def make_hygiene_step(
    query_allowlist: Iterable[str] = (),
) -> Callable[[PipelineRow, RequestInfo], PipelineRow | Drop]:
    allowed = frozenset(ALWAYS_KEPT) | frozenset(k.lower() for k in query_allowlist)

    def hygiene(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
        # url: split_url dropped every URL that does not parse, so clean_url gives a str
        row["query"], row["url"], path, row["referrer"] = clean_locations(  # type: ignore[typeddict-item]
            row.get("url"), row.get("query"), row.get("path"), row.get("referrer"), allowed)
        if path:
            row["path"] = path
        if row.get("title"):
            row["title"] = scrub(row["title"])[:MAX_TITLE]
        for key in UTM_KEYS:
            if row.get(key):
                row[key] = scrub(row[key])[:MAX_UTM]
        if row.get("source"):
            row["source"] = scrub(row["source"])
        if props := row.get("props"):
            row["props"] = _clean_props(props)
        return row

    return hygiene
