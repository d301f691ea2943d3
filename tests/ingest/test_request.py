"""Parsing a batch: every limit, and a message that names the field."""

from __future__ import annotations

import pytest

from traceglider.errors import BadRequest, PayloadTooLarge
from traceglider.ingest.request import decode_json, parse_batch

NOW = 1_764_280_000_000_000


def good(**event):  # type: ignore[no-untyped-def]
    return {"id": "e1", "type": "pageview", "url": "https://example.com/", **event}


@pytest.mark.parametrize(
    "document, message",
    [
        ([], "body: must be a JSON object"),
        ({"events": [good()]}, "site: required"),
        ({"site": "exa mple.com", "events": [good()]}, "site: not a valid site domain"),
        ({"site": "example.com"}, "events: required"),
        ({"site": "example.com", "events": []}, "events: required"),
        ({"site": "example.com", "events": [good()] * 101}, "events: at most 100"),
        ({"site": "example.com", "events": ["x"]}, "events[0]: must be an object"),
        ({"site": "example.com", "events": [good(type="nope")]}, "events[0].type: must be one of"),
        ({"site": "example.com", "events": [good(id=None)]}, "events[0].id: required"),
        ({"site": "example.com", "events": [good(id="x" * 65)]}, "events[0].id: longer than 64"),
        ({"site": "example.com", "events": [good(url=None)]}, "events[0].url: required"),
        ({"site": "example.com", "events": [good(url=5)]}, "events[0].url: must be a string"),
        ({"site": "example.com", "events": [good(url="https://e.com/" + "a" * 2000)]},
         "events[0].url: longer than 2000"),
        ({"site": "example.com", "events": [good(ref="r" * 2001)]}, "events[0].ref: longer than 2000"),
        ({"site": "example.com", "events": [good(ts="yesterday")]}, "events[0].ts: must be a whole number"),
        ({"site": "example.com", "events": [good(type="custom")]}, "events[0].name: required"),
        ({"site": "example.com", "events": [good(props=[1])]}, "events[0].props: must be an object"),
        ({"site": "example.com", "events": [good(props={f"k{i}": i for i in range(31)})]},
         "events[0].props: at most 30"),
        ({"site": "example.com", "events": [good(props={"k": {"nested": 1}})]},
         "events[0].props.k: must be a string, number or boolean"),
        ({"site": "example.com", "events": [good(props={"k": "v" * 2001})]},
         "events[0].props.k: longer than 2000"),
        ({"site": "example.com", "events": [good(type="engagement", scroll=101)]},
         "events[0].scroll: must be from 0 to 100"),
        ({"site": "example.com", "events": [good(type="vital", metric="FID", value=1)]},
         "events[0].metric: must be one of"),
        ({"site": "example.com", "events": [good(type="vital", metric="LCP", value=-1)]},
         "events[0].value: must be a number"),
        ({"site": "example.com", "ctx": [], "events": [good()]}, "ctx: must be an object"),
        ({"site": "example.com", "ctx": {"sw": "wide"}, "events": [good()]}, "ctx.sw: wrong type"),
        ({"site": "example.com", "ctx": {"sw": True}, "events": [good()]}, "ctx.sw: wrong type"),
    ],
)
def test_bad_batches_are_rejected_with_the_field_named(document, message):
    with pytest.raises(BadRequest) as info:
        parse_batch(document, NOW)
    assert info.value.message.startswith(message), info.value.message


def test_oversized_event_and_body_are_413():
    big = {"site": "example.com", "events": [good(props={f"k{i}": "v" * 1999 for i in range(20)})]}
    with pytest.raises(PayloadTooLarge, match="events\\[0\\]: larger than"):
        parse_batch(big, NOW)
    with pytest.raises(PayloadTooLarge):
        decode_json(b" " * (500 * 1024 + 1))


def test_a_good_batch_becomes_rows_with_ctx_columns():
    site, ctx, rows = parse_batch({
        "site": "www.Example.com",
        "ctx": {"sw": 1920, "sh": 1080, "vw": 1280, "vh": 720, "dpr": 2, "lang": "en-GB",
                "tz": "Europe/London", "cs": "dark", "unknown": "ignored"},
        "events": [good(ts=1764280000000, ref="https://news.ycombinator.com/", title="A"),
                   {"id": "e2", "type": "engagement", "url": "https://example.com/", "scroll": 80, "eng": 5000},
                   {"id": "e3", "type": "vital", "url": "https://example.com/", "metric": "CLS", "value": 0.02},
                   {"id": "e4", "type": "custom", "name": "Signup", "url": "https://example.com/",
                    "props": {"plan": "pro", "seats": 3}}],
    }, NOW)
    assert site == "example.com" and ctx["dpr"] == 2 and "unknown" not in ctx
    first = rows[0]
    assert (first["site"], first["received_at"], first["client_ts"]) == ("example.com", NOW, 1764280000000)
    assert (first["screen_width"], first["viewport_height"], first["language"], first["timezone"]) == (
        1920, 720, "en-GB", "Europe/London")
    assert first["ctx"] == '{"dpr":2,"cs":"dark"}'
    assert (rows[1]["scroll_depth"], rows[1]["engagement_ms"]) == (80, 5000)
    assert (rows[2]["metric_name"], rows[2]["metric_value"]) == ("CLS", 0.02)
    assert (rows[3]["name"], rows[3]["props"]) == ("Signup", '{"plan":"pro","seats":3}')


def test_a_url_with_an_impossible_port_is_dropped_as_invalid():
    from traceglider.ingest.pipeline import Drop, RequestInfo
    from traceglider.ingest.urls import split_url

    info = RequestInfo("example.com", None, "", {}, {}, NOW, False)
    dropped = split_url({"url": "https://example.com:99999/"}, info)
    assert isinstance(dropped, Drop) and dropped.reason == "invalid"


# --- the fast path of a clean body -------------------------------------------------

SAME_ROWS = [
    {"site": "example.com", "events": [good()]},
    {"site": "example.com", "ctx": {"sw": 1920, "lang": "en-GB", "dpr": 2},
     "events": [good(id=f"p{i}", ref="", title="", ts=1764280000000) for i in range(10)]},
    {"site": "example.com", "events": [good(title="Caf\u00e9 \u2014 menu \U0001F600", ref="https://a.example/x",
                                             name="Home", props={"k": "v", "n": 1.5, "b": True, "z": None})]},
    {"site": "example.com", "events": [good(url="https://example.com/a\\/b"), good(id="e2", title="a/b")]},
    # 0xC2 starts U+0080-U+00BF in UTF-8: a no-break space and "¡" are not control
    # characters, so the byte check hands the body to the pattern, which passes it.
    {"site": "example.com", "events": [good(title="a\u00a0b \u00a1hola!")]},
    {"site": "example.com", "events": [{"id": "c", "type": "custom", "name": "Signup", "url": "https://e.com/"},
                                       {"id": "g", "type": "engagement", "url": "https://e.com/", "scroll": 5},
                                       {"id": "v", "type": "vital", "url": "https://e.com/", "metric": "LCP",
                                        "value": 1.5}]},
    {"site": "example.com", "events": [good(props={})], "extra": 1e300},
]


@pytest.mark.parametrize("document", SAME_ROWS)
def test_a_body_parses_to_the_same_rows_on_the_fast_path_as_on_the_careful_one(document):
    import orjson

    from traceglider.ingest.request import body_is_clean, parse_body

    body = orjson.dumps(document)
    assert body_is_clean(body)
    assert parse_body(body, NOW) == parse_batch(orjson.loads(body), NOW)


@pytest.mark.parametrize("code", [*range(0x20), *range(0x7F, 0xA0)])
def test_any_control_character_in_a_body_takes_the_careful_path(code):
    import orjson

    from traceglider.ingest.request import body_is_clean, parse_body

    character = chr(code)
    titled = orjson.dumps({"site": "example.com", "events": [good(title=f"a{character}b")]})
    assert not body_is_clean(titled)  # orjson escapes C0 (\u00XX, \n, ...) and writes DEL and C1 raw
    assert parse_body(titled, NOW)[2][0]["title"] == "a b"
    with pytest.raises(BadRequest, match="must not contain control characters"):
        parse_body(orjson.dumps({"site": "example.com", "events": [good(url=f"https://e.com/{character}")]}), NOW)
    escaped = b'{"site":"example.com","events":[{"id":"e1","type":"pageview","url":"https://e.com/\\u%04X"}]}' % code
    assert not body_is_clean(escaped) and not body_is_clean(escaped.lower())


@pytest.mark.parametrize("document, message", [
    ({"site": "example.com", "events": [good(id="")]}, "events[0].id: must not be empty"),
    ({"site": "example.com", "events": [good(id="x" * 65)]}, "events[0].id: longer than 64"),
    ({"site": "example.com", "events": [good(url="")]}, "events[0].url: must not be empty"),
    ({"site": "example.com", "events": [good(), good(url=5)]}, "events[1].url: must be a string"),
    ({"site": "example.com", "events": [good(title=["x"])]}, "events[0].title: must be a string"),
    ({"site": "example.com", "events": [good(name="n" * 201)]}, "events[0].name: longer than 200"),
    ({"site": "example.com", "events": [good(ts=-1)]}, "events[0].ts: must be from 0"),
    ({"site": "example.com", "events": [good(props={"k": [1]})]}, "events[0].props.k: must be a string"),
])
def test_the_fast_path_names_the_field_as_the_careful_one_does(document, message):
    import orjson

    from traceglider.ingest.request import parse_body

    with pytest.raises(BadRequest) as info:
        parse_body(orjson.dumps(document), NOW)
    assert info.value.message.startswith(message), info.value.message


def test_a_large_body_still_measures_each_event():
    import orjson

    from traceglider.ingest.request import parse_body

    big = {"site": "example.com", "events": [good(props={f"k{i}": "v" * 1999 for i in range(20)})]}
    with pytest.raises(PayloadTooLarge, match="events\\[0\\]: larger than"):
        parse_body(orjson.dumps(big), NOW)
