"""The tracker records outbound links, downloads, marked elements, form submissions
(never a field's value) and custom events."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def named(name: str):
    return lambda r: r["name"] == name


def test_an_outbound_link_that_leaves_the_page_arrives_by_beacon(visit) -> None:
    page = visit.open("index.html")
    page.click("#out")  # navigates away at once, long before the batch's 1 s timer
    [row] = visit.events(where=named("Outbound Link: Click"))
    assert row["type"] == "click"
    other = visit.base.replace("127.0.0.1", "localhost").split("/t/")[0]
    assert json.loads(row["props"]) == {"url": other + "/t/elsewhere/plain.html"}


def test_outbound_links_in_a_new_tab_and_middle_clicks_count(visit) -> None:
    page = visit.open("index.html")
    with visit.context.expect_page() as popup:
        page.click("#out-blank")
    popup.value.close()
    page.click("#out-blank", button="middle")
    rows = visit.events(2, where=named("Outbound Link: Click"), settle=1.2)
    assert len(rows) == 2


def test_downloads_by_attribute_and_by_extension(visit) -> None:
    page = visit.open("index.html")
    with page.expect_download():
        page.click("#dl")
    with page.expect_download():
        page.click("#dl-ext")
    rows = visit.events(2, where=named("File Download"))
    urls = sorted(json.loads(r["props"])["url"].rsplit("/", 1)[1] for r in rows)
    assert urls == ["data.csv", "report.pdf"]  # the ?sig= token stayed home


def test_a_marked_element_sends_its_name_and_props(visit) -> None:
    page = visit.open("index.html")
    page.click("#signup-inner")  # a child of the marked button
    [row] = visit.events(where=named("Signup"))
    assert row["type"] == "click"
    assert json.loads(row["props"]) == {"plan": "pro", "seats": "3"}


def test_a_form_submission_sends_id_name_and_action_never_values(visit) -> None:
    page = visit.open("index.html")
    page.click("#subscribe")
    [row] = visit.events(where=named("Form: Submit"))
    assert row["type"] == "form_submit"
    props = json.loads(row["props"])
    assert props["form_id"] == "newsletter" and props["form_name"] == "news"
    assert props["action"].endswith(f"/t/{visit.token}/subscribe")  # no ?token=
    body = json.dumps(visit.sent_batches())
    assert "secret@example.com" not in body and "shadowed" not in body


def test_a_get_form_that_navigates_keeps_its_words_out_of_the_next_url(visit) -> None:
    page = visit.open("index.html")
    page.click("#go")
    page.wait_for_url("**/long.html?q=*")
    rows = visit.events(3, where=lambda r: r["type"] in ("pageview", "form_submit"))
    assert sorted(r["type"] for r in rows) == ["form_submit", "pageview", "pageview"]
    assert all("private" not in r["url"] for r in rows)


def test_custom_events_with_props_are_sanitised(visit) -> None:
    page = visit.open("index.html")
    page.evaluate("""() => {
        traceglider.track('Purchase', {plan: 'pro', amount: 42.5, trial: false,
                                       nested: {no: 1}, nothing: null, nan: NaN, fn() {}});
        traceglider.track('', {empty: 'name'});          // no name: ignored
        traceglider.track(null);                         // ignored, never thrown
        return traceglider.track('Second') === undefined;
    }""")
    rows = visit.events(2, where=lambda r: r["type"] == "custom", settle=1.0)
    assert [r["name"] for r in rows] == ["Purchase", "Second"]
    assert json.loads(rows[0]["props"]) == {"plan": "pro", "amount": 42.5, "trial": False}
