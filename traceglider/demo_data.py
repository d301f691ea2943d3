"""Realistic synthetic traffic for first looks and benchmarks, written through the
same Parquet code as the collector.

Everything is vectorised with numpy and pyarrow: one day of traffic is generated
as arrays (visits -> pageviews -> events), so ten million events take minutes.
Visitors come back for several visits, visits have several pages with a long tail
of paths, and a small share of visits crosses midnight, as real ones do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceglider.schema import FILE_SCHEMA
from traceglider.storage.base import Storage
from traceglider.storage.layout import object_key
from traceglider.storage.parquet import table_to_bytes

DAY_US = 86_400_000_000
SITE_CONFIG_PREFIX = "_sites/"

# Rough events per visit, so that `events` comes out close to what was asked for.
_PAGES_PER_VISIT = 0.42 * 1 + 0.58 * (2 + 1 / 0.35 - 1)
_EVENTS_PER_PAGE = 1 + 0.85 + 0.25 + 0.04 + 0.04 + 0.02 + 0.02
EVENTS_PER_VISIT = _PAGES_PER_VISIT * _EVENTS_PER_PAGE

# (source, channel, referrer, utm_source, utm_medium, utm_campaign, weight)
_SOURCES = [
    ("", "direct", "", "", "", "", 34),
    ("Google", "search", "https://www.google.com/", "", "", "", 28),
    ("Bing", "search", "https://www.bing.com/", "", "", "", 3),
    ("DuckDuckGo", "search", "https://duckduckgo.com/", "", "", "", 3),
    ("Hacker News", "social", "https://news.ycombinator.com/", "", "", "", 6),
    ("Reddit", "social", "https://www.reddit.com/r/selfhosted/", "", "", "", 4),
    ("Twitter", "social", "https://t.co/x1y2z3", "", "", "", 3),
    ("LinkedIn", "social", "https://www.linkedin.com/", "", "", "", 2),
    ("GitHub", "referral", "https://github.com/traceglider/traceglider", "", "", "", 4),
    ("Newsletter", "email", "", "newsletter", "email", "spring-launch", 3),
    ("Newsletter", "email", "", "newsletter", "email", "weekly-digest", 2),
    ("Google Ads", "paid", "https://www.google.com/", "google", "cpc", "brand", 3),
    ("Google Ads", "paid", "https://www.google.com/", "google", "cpc", "competitors", 1),
    ("Product Hunt", "referral", "https://www.producthunt.com/", "producthunt", "referral", "launch", 2),
]
_TAIL_REFERRERS = 200  # blog-<n>.example referrers, a long tail of small sources

# (browser, versions, os, os versions, device, screen w, screen h, weight)
_DEVICES = [
    ("Chrome", ["130", "131", "132"], "Windows", ["10", "11"], "desktop", 1920, 1080, 30),
    ("Chrome", ["131", "132"], "macOS", ["14", "15"], "desktop", 1512, 982, 10),
    ("Safari", ["17.6", "18.1"], "macOS", ["14", "15"], "desktop", 1440, 900, 8),
    ("Firefox", ["132", "133"], "Windows", ["10", "11"], "desktop", 1920, 1080, 6),
    ("Firefox", ["133"], "Linux", [""], "desktop", 2560, 1440, 3),
    ("Edge", ["131"], "Windows", ["11"], "desktop", 1920, 1080, 5),
    ("Mobile Safari", ["17.6", "18.1"], "iOS", ["17.6", "18.1"], "mobile", 393, 852, 17),
    ("Chrome Mobile", ["131"], "Android", ["13", "14"], "mobile", 412, 915, 14),
    ("Samsung Internet", ["26"], "Android", ["14"], "mobile", 384, 854, 2),
    ("Mobile Safari", ["18.1"], "iPadOS", ["18.1"], "tablet", 820, 1180, 3),
]

# (country, language, timezone, weight)
_COUNTRIES = [
    ("US", "en-US", "America/New_York", 30), ("DE", "de-DE", "Europe/Berlin", 11),
    ("GB", "en-GB", "Europe/London", 9), ("FR", "fr-FR", "Europe/Paris", 6),
    ("IN", "en-IN", "Asia/Kolkata", 7), ("NL", "nl-NL", "Europe/Amsterdam", 4),
    ("CA", "en-CA", "America/Toronto", 4), ("BR", "pt-BR", "America/Sao_Paulo", 4),
    ("JP", "ja-JP", "Asia/Tokyo", 3), ("ES", "es-ES", "Europe/Madrid", 3),
    ("SE", "sv-SE", "Europe/Stockholm", 2), ("PL", "pl-PL", "Europe/Warsaw", 2),
    ("AU", "en-AU", "Australia/Sydney", 2), ("IT", "it-IT", "Europe/Rome", 2),
    ("CH", "de-CH", "Europe/Zurich", 2), ("KR", "ko-KR", "Asia/Seoul", 1),
    ("MX", "es-MX", "America/Mexico_City", 1), ("ZA", "en-ZA", "Africa/Johannesburg", 1),
    ("NG", "en-NG", "Africa/Lagos", 1), ("SG", "en-SG", "Asia/Singapore", 1),
]

_HOURLY = np.array([2, 1.5, 1.2, 1, 1, 1.3, 2, 3, 4.5, 5.5, 6, 6.3,
                    6.5, 7, 7.5, 7.8, 7.5, 7, 6.5, 6, 5, 4, 3.2, 2.5])

_VITALS = [("LCP", 2400.0, 900.0), ("CLS", 0.08, 0.06), ("INP", 180.0, 90.0),
           ("FCP", 1500.0, 600.0), ("TTFB", 450.0, 250.0)]

DEMO_GOALS = ["Visit /pricing", "Visit /signup", "Signup", "Newsletter", "Outbound Link: Click",
              "File Download"]
DEMO_FUNNELS = [{"name": "Sign-up", "steps": ["Visit /", "Visit /pricing", "Visit /signup", "Signup"]}]


@dataclass
class _Paths:
    paths: pa.Array
    titles: pa.Array
    weights: np.ndarray
    home: int
    pricing: int
    signup: int


def _make_paths(rng: np.random.Generator) -> _Paths:
    top = ["/", "/pricing", "/features", "/docs", "/blog", "/signup", "/about", "/contact",
           "/changelog", "/docs/getting-started", "/docs/api", "/integrations"]
    sections = ["install", "configure", "tracker", "api", "dashboard", "self-hosting",
                "privacy", "aws", "export", "faq"]
    words = ["fast", "privacy", "analytics", "cookies", "parquet", "duckdb", "launch",
             "lambda", "gdpr", "metrics", "funnels", "scaling", "open-source", "dashboards",
             "web-vitals", "tracking", "s3", "serverless", "events", "retention"]
    docs = [f"/docs/{s}/{w}" for s in sections for w in words[:30]][:300]
    blog = [f"/blog/{words[i % 20]}-{words[(i * 7 + 3) % 20]}-{i}" for i in range(1200)]
    paths = top + docs + blog
    titles = [("Home" if p == "/" else p.rsplit("/", 1)[-1].replace("-", " ").title())
              + " · TraceGlider" for p in paths]
    ranks = np.arange(1, len(paths) + 1, dtype=np.float64)
    weights = 1.0 / ranks ** 1.05
    weights[0] *= 4  # the home page is the usual landing page
    rng.shuffle(weights[12:])  # the tail is not sorted by section
    return _Paths(pa.array(paths), pa.array(titles), weights / weights.sum(),
                  0, paths.index("/pricing"), paths.index("/signup"))


def _pick(rng: np.random.Generator, weights: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _take(values: list, idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values), pa.array(idx))


def _nullify_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def generate(
    storage: Storage,
    site: str,
    events: int,
    days: int = 30,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
    *,
    now: float | None = None,
    files_per_day: int = 1,
    duplicate_rate: float = 0.0,
    write_site_config: bool = True,
) -> int:
    """Write about `events` events of synthetic traffic for `site` over the last `days`
    days (ending now). `files_per_day` splits each day as a collector's flushes would;
    `duplicate_rate` re-writes that share of events into extra files, as retries do.
    Returns the number of events written (duplicates not included)."""
    if events <= 0 or days <= 0:
        raise ValueError("events and days must be greater than 0")
    rng = np.random.default_rng(seed)
    now_us = int((time.time() if now is None else now) * 1_000_000)
    today = now_us // DAY_US * DAY_US
    first_day = today - (days - 1) * DAY_US
    paths = _make_paths(rng)

    day_index = np.arange(days)
    weekday = ((first_day // DAY_US + day_index + 3) % 7)  # 0 = Monday (1970-01-01 was a Thursday)
    day_weights = np.where(weekday >= 5, 0.7, 1.0) * (1 + 0.3 * day_index / max(days - 1, 1))
    day_weights[-1] *= (now_us - today) / DAY_US  # today is not over yet
    total_visits = max(1, round(events / EVENTS_PER_VISIT))
    events_per_day = rng.multinomial(events, day_weights / day_weights.sum())
    n_visitors = max(1, int(total_visits / 1.8))
    visitor_salt = int(rng.integers(1, 1 << 40))

    written = 0
    short = 0  # events a day could not hold (today, when it has barely begun) go to the day before
    for d in reversed(range(days)):
        target = int(events_per_day[d]) + short
        table = _day_of(rng, site, first_day + d * DAY_US, target, n_visitors, visitor_salt, paths, now_us)
        short = target - table.num_rows
        if table.num_rows == 0:
            continue
        written += _write(storage, site, table, f"demo-{seed}-{d:03d}", files_per_day,
                          duplicate_rate, rng)
        if progress:
            progress(written, events)
    if write_site_config:
        config = {"goals": DEMO_GOALS, "funnels": DEMO_FUNNELS}
        storage.put(f"{SITE_CONFIG_PREFIX}{site}.json", json.dumps(config, indent=2).encode())
    return written


def _day_of(rng: np.random.Generator, site: str, day_us: int, n_events: int, n_visitors: int,
            salt: int, paths: _Paths, now_us: int) -> pa.Table:
    """Exactly `n_events` events of whole visits (the last one cut short) starting on the
    day, or fewer when the day has no room (today, before enough of it has passed)."""
    if n_events <= 0:
        return FILE_SCHEMA.empty_table()
    visits = int(n_events / EVENTS_PER_VISIT * 1.2) + 8
    for _ in range(6):  # more visits until there are enough events (a few per cent over is usual)
        table = _day(rng, site, day_us, visits, n_visitors, salt, paths, now_us)
        if table.num_rows >= n_events:
            break
        visits *= 2
    if table.num_rows <= n_events:
        return table.drop_columns(["__visit"])
    # the visits are in random order of start time: the first ones are a fair sample
    order = pc.sort_indices(table, sort_keys=[("__visit", "ascending"), ("received_at", "ascending")])
    keep = np.zeros(table.num_rows, dtype=bool)
    keep[order.to_numpy()[:n_events]] = True
    return table.filter(pa.array(keep)).drop_columns(["__visit"])


def _write(storage: Storage, site: str, table: pa.Table, name: str, files_per_day: int,
           duplicate_rate: float, rng: np.random.Generator) -> int:
    micros = table.column("received_at").cast(pa.int64()).to_numpy()
    dates = micros // DAY_US
    for date in np.unique(dates):
        part = table.filter(pa.array(dates == date))
        day = np.datetime64(int(date), "D").astype(str)
        n_files = max(1, min(files_per_day, part.num_rows))
        bounds = np.linspace(0, part.num_rows, n_files + 1).astype(int)
        for i in range(n_files):
            chunk = part.slice(bounds[i], bounds[i + 1] - bounds[i])
            storage.put(object_key(site, day, f"{name}-{i:04d}"), table_to_bytes(chunk))
        if duplicate_rate > 0:
            dup = part.filter(pa.array(rng.random(part.num_rows) < duplicate_rate))
            if dup.num_rows:
                storage.put(object_key(site, day, f"{name}-retry"), table_to_bytes(dup))
    return table.num_rows


_EMPTY_DAY = FILE_SCHEMA.empty_table().append_column("__visit", pa.array([], pa.int64()))


def _day(rng: np.random.Generator, site: str, day_us: int, n_visits: int, n_visitors: int,
         salt: int, paths: _Paths, now_us: int) -> pa.Table:
    if n_visits == 0:
        return _EMPTY_DAY
    # Visits: who, when, from where, on what.
    visitor = (n_visitors * rng.random(n_visits) ** 2.2).astype(np.int64)  # regulars come back
    start = day_us + (_pick(rng, _HOURLY, n_visits) * 3600 + rng.random(n_visits) * 3600) * 1e6
    start = start.astype(np.int64)
    keep = start < now_us - 60_000_000
    visitor, start = visitor[keep], start[keep]
    n_visits = len(start)
    if n_visits == 0:  # early in today (UTC): no visit has started yet
        return _EMPTY_DAY
    source_idx = _pick(rng, [s[-1] for s in _SOURCES] + [5], n_visits)
    tail_idx = rng.integers(0, _TAIL_REFERRERS, n_visits)
    # Visitor traits come from the visitor number, so they stay the same across visits.
    vrng = (visitor * 2654435761 + salt) % (1 << 32)
    device_idx = _bucket(vrng, [d[-1] for d in _DEVICES])
    country_idx = _bucket((vrng * 40503) % (1 << 32), [c[-1] for c in _COUNTRIES])
    version_pick = (vrng >> 7) % 2

    # Pageviews: one row per page of a visit, in order.
    n_pages = np.where(rng.random(n_visits) < 0.42, 1, 2 + rng.geometric(0.35, n_visits) - 1)
    n_pages = np.minimum(n_pages, 30)
    pv_visit = np.repeat(np.arange(n_visits), n_pages)
    first = np.concatenate([[0], np.cumsum(n_pages)[:-1]])
    pos = np.arange(len(pv_visit)) - np.repeat(first, n_pages)
    page = _pick(rng, paths.weights, len(pv_visit))
    landing = pos == 0
    page[landing] = np.where(rng.random(landing.sum()) < 0.35, paths.home, page[landing])
    for k in range(1, int(n_pages.max())):  # a funnel worth looking at: / -> /pricing -> /signup
        at = np.nonzero(pos == k)[0]
        prev = page[at - 1]
        r = rng.random(len(at))
        page[at] = np.where((prev == paths.home) & (r < 0.3), paths.pricing, page[at])
        page[at] = np.where((prev == paths.pricing) & (r < 0.25), paths.signup, page[at])
    dwell = np.minimum(rng.lognormal(3.4, 1.0, len(pv_visit)), 1500) * 1e6
    dwell = dwell.astype(np.int64)
    offsets = np.cumsum(dwell) - dwell
    offsets -= np.repeat(offsets[first], n_pages)
    pv_time = start[pv_visit] + offsets

    # Events per pageview: the pageview, then what happened on the page.
    n_pv = len(pv_visit)
    kinds: list[tuple[np.ndarray, np.ndarray, str]] = [(np.arange(n_pv), pv_time, "pageview")]

    def some(p: float, mask: np.ndarray | None = None) -> np.ndarray:
        hit = rng.random(n_pv) < p
        return np.nonzero(hit if mask is None else hit & mask)[0]

    eng = some(0.85)
    kinds.append((eng, pv_time[eng] + (dwell[eng] * 0.95).astype(np.int64), "engagement"))
    vit = some(0.25)
    kinds.append((vit, pv_time[vit] + 2_500_000, "vital"))
    signup = some(0.4, page == paths.signup)
    kinds.append((signup, pv_time[signup] + dwell[signup] // 2, "custom:Signup"))
    news = some(0.04, page != paths.signup)
    kinds.append((news, pv_time[news] + dwell[news] // 3, "custom:Newsletter"))
    out = some(0.04)
    kinds.append((out, pv_time[out] + dwell[out] // 2, "click:Outbound Link: Click"))
    dl = some(0.02)
    kinds.append((dl, pv_time[dl] + dwell[dl] // 4, "click:File Download"))
    form = some(0.02)
    kinds.append((form, pv_time[form] + dwell[form] // 2, "form_submit:form_submit"))

    ev_pv = np.concatenate([k[0] for k in kinds])
    ev_time = np.concatenate([k[1] for k in kinds])
    ev_kind = np.concatenate([np.full(len(k[0]), i) for i, k in enumerate(kinds)])
    kind_names = [k[2] for k in kinds]
    order = np.argsort(ev_time, kind="stable")
    ev_pv, ev_time, ev_kind = ev_pv[order], ev_time[order], ev_kind[order]
    n = len(ev_pv)
    ev_visit = pv_visit[ev_pv]
    ev_visitor = visitor[ev_visit]

    types = [k.split(":")[0] for k in kind_names]
    names = ["pageview" if k == "pageview" else k.split(":", 1)[1] if ":" in k else k
             for k in kind_names]
    ev_page = page[ev_pv]
    path_arr = pc.take(paths.paths, pa.array(ev_page))
    src = source_idx[ev_visit]
    landing_ev = pos[ev_pv] == 0
    is_tail = src == len(_SOURCES)

    def src_col(i: int) -> pa.Array:
        return _take([s[i] for s in _SOURCES] + [""], np.minimum(src, len(_SOURCES)))

    referrer = src_col(2)
    tail_ref = pc.binary_join_element_wise(
        "https://blog-", pc.cast(pa.array(tail_idx[ev_visit]), pa.string()), ".example/post", "")
    referrer = pc.if_else(pa.array(is_tail), tail_ref, referrer)
    referrer_host = pc.if_else(
        pa.array(is_tail),
        pc.binary_join_element_wise("blog-", pc.cast(pa.array(tail_idx[ev_visit]), pa.string()),
                                    ".example", ""),
        _take([s[2].split("/")[2] if s[2] else "" for s in _SOURCES] + [""], np.minimum(src, len(_SOURCES))),
    )
    source = pc.if_else(pa.array(is_tail), referrer_host, src_col(0))
    channel = pc.if_else(pa.array(is_tail), pa.scalar("referral"), src_col(1))
    # Only the landing page carries the referrer and the campaign, as in a browser.
    not_landing = pa.array(~landing_ev)
    null = pa.scalar(None, pa.string())

    def landing_only(col: pa.Array) -> pa.Array:
        return pc.if_else(not_landing, null, _nullify_empty(col))

    utm_source, utm_medium, utm_campaign = src_col(3), src_col(4), src_col(5)
    query = pc.if_else(
        pc.equal(utm_source, ""), null,
        pc.binary_join_element_wise("utm_source=", utm_source, "&utm_medium=", utm_medium,
                                    "&utm_campaign=", utm_campaign, ""))
    url = pc.binary_join_element_wise(f"https://{site}", path_arr, "")
    url = pc.if_else(pc.and_(pc.invert(not_landing), pc.is_valid(query)),
                     pc.binary_join_element_wise(url, "?", query, ""), url)

    dev = device_idx[ev_visit]
    ver = version_pick[ev_visit]
    browser_version = _take([d[1][0] for d in _DEVICES], dev)
    browser_version2 = _take([d[1][-1] for d in _DEVICES], dev)
    browser_version = pc.if_else(pa.array(ver == 1), browser_version2, browser_version)
    os_version = pc.if_else(pa.array(ver == 1), _take([d[3][-1] for d in _DEVICES], dev),
                            _take([d[3][0] for d in _DEVICES], dev))
    ctry = country_idx[ev_visit]
    sw = np.array([d[5] for d in _DEVICES], dtype=np.int32)[dev]
    sh = np.array([d[6] for d in _DEVICES], dtype=np.int32)[dev]

    is_eng = np.array([t == "engagement" for t in types])[ev_kind]
    is_vital = np.array([t == "vital" for t in types])[ev_kind]
    scroll = np.where(is_eng, np.clip(rng.beta(2.2, 1.6, n) * 100, 5, 100), 0).astype(np.int16)
    engaged = np.where(is_eng, (dwell[ev_pv] * 0.8 / 1000), 0).astype(np.int64)
    vital_idx = rng.integers(0, len(_VITALS), n)
    vital_val = np.abs(rng.normal(np.array([v[1] for v in _VITALS])[vital_idx],
                                  np.array([v[2] for v in _VITALS])[vital_idx]))
    plans: list[str | None] = ['{"plan":"free"}', '{"plan":"pro"}', '{"plan":"team"}']
    kind_props: list[list[str | None]] = []
    for kind_name in kind_names:
        if kind_name == "custom:Signup":
            kind_props.append(plans)
        elif kind_name == "custom:Newsletter":
            kind_props.append(['{"position":"footer"}', '{"position":"sidebar"}'])
        elif kind_name.startswith("click:Outbound"):
            kind_props.append(['{"url":"https://github.com/traceglider/traceglider"}',
                               '{"url":"https://news.ycombinator.com/item?id=1"}',
                               '{"url":"https://docs.duckdb.org/"}'])
        elif kind_name.startswith("click:File"):
            kind_props.append([json.dumps({"url": f"https://{site}/files/whitepaper.pdf"}),
                               json.dumps({"url": f"https://{site}/files/pricing.pdf"})])
        elif kind_name.startswith("form_submit"):
            kind_props.append(['{"form":"contact"}'])
        else:
            kind_props.append([None])
    flat_props: list[str | None] = []
    offsets_props = []
    for values in kind_props:
        offsets_props.append(len(flat_props))
        flat_props.extend(values)
    pick = rng.integers(0, 1 << 30, n)
    lens = np.array([len(v) for v in kind_props])[ev_kind]
    prop_idx = np.array(offsets_props)[ev_kind] + pick % lens

    counter = pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string())
    event_id = pc.binary_join_element_wise(f"d{salt % 100000}-{day_us // DAY_US}-", counter, "")
    visitor_id = pc.binary_join_element_wise(
        "v", pc.cast(pa.array((ev_visitor * 40503 + salt) % 10_000_000_000), pa.string()), "")
    session_id = pc.binary_join_element_wise(
        f"s{day_us // DAY_US}-", pc.cast(pa.array(ev_visit), pa.string()), "")

    columns = {
        "event_id": event_id,
        "type": _take(types, ev_kind),
        "name": _take(names, ev_kind),
        "received_at": pa.array(ev_time, pa.timestamp("us", tz="UTC")),
        "client_ts": pa.array(ev_time // 1000 - rng.integers(0, 3000, n), pa.timestamp("ms", tz="UTC")),
        "url": url,
        "hostname": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([site])).cast(pa.string()),
        "path": path_arr,
        "query": landing_only(pc.if_else(pc.is_valid(query), query, pa.scalar(""))),
        "referrer": landing_only(referrer),
        "referrer_host": landing_only(referrer_host),
        "utm_source": landing_only(utm_source),
        "utm_medium": landing_only(utm_medium),
        "utm_campaign": landing_only(utm_campaign),
        "utm_term": pa.nulls(n, pa.string()),
        "utm_content": pa.nulls(n, pa.string()),
        "title": pc.take(paths.titles, pa.array(ev_page)),
        "visitor_id": visitor_id,
        "session_id": session_id,
        "browser": _take([d[0] for d in _DEVICES], dev),
        "browser_version": browser_version,
        "os": _take([d[2] for d in _DEVICES], dev),
        "os_version": _nullify_empty(os_version),
        "device_type": _take([d[4] for d in _DEVICES], dev),
        "screen_width": pa.array(sw),
        "screen_height": pa.array(sh),
        "viewport_width": pa.array(sw),
        "viewport_height": pa.array((sh * 0.85).astype(np.int32)),
        "language": _take([c[1] for c in _COUNTRIES], ctry),
        "timezone": _take([c[2] for c in _COUNTRIES], ctry),
        "country": _take([c[0] for c in _COUNTRIES], ctry),
        "region": pa.nulls(n, pa.string()),
        "city": pa.nulls(n, pa.int32()),
        "city_name": pa.nulls(n, pa.string()),
        "source": landing_only(source),
        "channel": pc.if_else(not_landing, null, channel),
        "scroll_depth": pa.array(scroll, mask=~is_eng),
        "engagement_ms": pa.array(engaged, mask=~is_eng),
        "metric_name": pc.if_else(pa.array(is_vital), _take([v[0] for v in _VITALS], vital_idx), null),
        "metric_value": pa.array(np.round(vital_val, 3), mask=~is_vital),
        "props": pc.take(pa.array(flat_props, pa.string()), pa.array(prop_idx)),
        "ctx": pa.nulls(n, pa.string()),
        "revenue": pa.nulls(n, pa.string()),
        "user_agent": pa.nulls(n, pa.string()),
    }
    # the visit number of each event, for _day_of to cut at a visit (dropped before writing)
    return pa.table(columns).cast(FILE_SCHEMA).append_column("__visit", pa.array(ev_visit, pa.int64()))


def _bucket(hashed: np.ndarray, weights: list[int]) -> np.ndarray:
    """Map uniform hashes in [0, 2**32) to weighted categories."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.searchsorted(cum / cum[-1], hashed / float(1 << 32), side="right").clip(0, len(weights) - 1)
