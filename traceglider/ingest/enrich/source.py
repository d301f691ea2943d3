"""Where a visit came from: a source name and a channel.

Channels: search, social, email, paid, referral, direct. The names come from the
maintained list `data/sources.toml`. In order of precedence:

1. an ad click id (`gclid`, `fbclid`, `msclkid`, ...) makes the channel `paid`, and
   names the network when nothing else does; the id's value is never stored;
2. `utm_medium` names the channel (`cpc` -> paid, `email` -> email, ...);
3. `utm_source`, else a `ref`/`source`/`via` parameter, else the referrer host names the
   source; known names and hosts take the listed name and channel, unknown ones
   become `referral` with the raw name (cleaned later by hygiene) or host;
4. a referrer from the site itself, or none at all, is `direct` with no source.

Runs after `split_url` (which fills `utm_*`, `query`, `referrer_host`) and before
`hygiene` (which then strips the click ids from the stored query).
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

from traceglider.ingest.enrich.hygiene import query_params
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.types import PipelineRow

CHANNELS = ("search", "social", "email", "paid", "referral", "direct")
MAX_SOURCE = 100

# Ad click ids -> the network they belong to.
CLICK_IDS = {
    "gclid": "Google", "gbraid": "Google", "wbraid": "Google", "dclid": "Google",
    "msclkid": "Bing", "fbclid": "Facebook", "ttclid": "TikTok", "twclid": "X",
    "li_fat_id": "LinkedIn", "yclid": "Yandex", "rdt_cid": "Reddit", "epik": "Pinterest",
}
REF_PARAMS = ("ref", "source", "via")
MEDIUM_CHANNELS = {
    **dict.fromkeys(("cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search",
                     "paidsocial", "paid_social", "paid-social", "cpm", "cpv", "cpa",
                     "display", "banner", "retargeting", "ads", "ad", "sem"), "paid"),
    **dict.fromkeys(("email", "e-mail", "e_mail", "mail", "newsletter"), "email"),
    **dict.fromkeys(("social", "social-network", "social_network", "social-media",
                     "social_media", "sm", "organic_social", "organic-social"), "social"),
    **dict.fromkeys(("organic", "search", "organic_search", "organic-search"), "search"),
    **dict.fromkeys(("referral", "affiliate", "partner", "link"), "referral"),
}
_INTERESTING = re.compile(
    "(?:^|&)(?:" + "|".join(re.escape(k) for k in (*CLICK_IDS, *REF_PARAMS)) + ")=", re.IGNORECASE)
# Second-level labels under country domains, for `name.*` hosts (google.co.uk).
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ne", "or", "ac", "gov", "edu", "gob"})


class Source(NamedTuple):
    name: str
    channel: str


class SourceList:
    def __init__(self, document: dict[str, Any]) -> None:
        self.hosts: dict[str, Source] = {}
        self.wildcards: dict[str, Source] = {}
        self.aliases: dict[str, Source] = {}
        for entry in document["source"]:
            source = Source(entry["name"], entry["channel"])
            if source.channel not in CHANNELS:
                raise ValueError(f"sources.toml: {source.name}: unknown channel {source.channel!r}")
            for host in entry.get("hosts", []):
                if host.endswith(".*"):
                    self.wildcards[host[:-2]] = source
                else:
                    self.hosts[host] = source
            for alias in entry.get("aliases", []):
                self.aliases[alias] = source
            self.aliases[source.name.lower()] = source

    def by_host(self, host: str) -> Source | None:
        return _by_host(self, host)

    def by_alias(self, value: str) -> Source | None:
        return self.aliases.get(value.strip().lower())


@lru_cache(maxsize=4096)
def _by_host(sources: SourceList, host: str) -> Source | None:
    labels = host.split(".")
    for start in range(len(labels) - 1 if len(labels) > 1 else 1):
        found = sources.hosts.get(".".join(labels[start:]))
        if found:
            return found
    for index, label in enumerate(labels[:-1]):
        tail = labels[index + 1:]
        if label in sources.wildcards and (
            len(tail) == 1 or (len(tail) == 2 and tail[0] in _SECOND_LEVEL)
        ):
            return sources.wildcards[label]
    return None


def load_sources() -> SourceList:
    text = resources.files(__package__).joinpath("data/sources.toml").read_text("utf-8")
    return SourceList(tomllib.loads(text))


SOURCES = load_sources()


def _bare(host: str | None) -> str | None:
    return host.lower().removeprefix("www.") if host else None


def is_self_referral(referrer_host: str, hostname: str | None, site: str) -> bool:
    own = _bare(hostname)
    return referrer_host in (own, site) or referrer_host.endswith("." + site)


def classify(row: PipelineRow, site: str, sources: SourceList = SOURCES) -> tuple[str | None, str]:
    """(source name, channel) of one row."""
    channel: str | None = None
    name: str | None = None
    known: Source | None = None
    params: dict[str, str] = {}
    query = row.get("query")
    if query and _INTERESTING.search(query):
        params = query_params(query)
        for key, network in CLICK_IDS.items():
            if key in params:
                channel, name = "paid", network
                break
    medium = (row.get("utm_medium") or "").strip().lower()
    if medium:
        channel = MEDIUM_CHANNELS.get(medium, channel) or (
            "paid" if "paid" in medium or "cpc" in medium else None)
    tag = row.get("utm_source") or next((params[k] for k in REF_PARAMS if k in params), None)
    referrer_host = _bare(row.get("referrer_host"))
    if tag and tag.strip():
        known = sources.by_alias(tag) or (sources.by_host(tag.lower()) if "." in tag else None)
        name = known.name if known else tag.strip()[:MAX_SOURCE]
    elif referrer_host and not is_self_referral(referrer_host, row.get("hostname"), site):
        known = sources.by_host(referrer_host)
        name = known.name if known else referrer_host
    if channel is None:
        if known:
            channel = known.channel
        elif name:
            channel = "referral"
        else:
            channel = "direct"
    return name, channel


@lru_cache(maxsize=4096)  # the same landing page and referrer recur all day
def _classify_cached(query: str | None, utm_medium: str | None, utm_source: str | None,
                     referrer_host: str | None, hostname: str | None, site: str) -> tuple[str | None, str]:
    return classify({"query": query, "utm_medium": utm_medium, "utm_source": utm_source,
                     "referrer_host": referrer_host, "hostname": hostname}, site)


def source(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
    row["source"], row["channel"] = _classify_cached(
        row.get("query"), row.get("utm_medium"), row.get("utm_source"), row.get("referrer_host"),
        row.get("hostname"), row.get("site") or request.site)
    return row
