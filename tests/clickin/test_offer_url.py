"""Filling a URL template (the offer URL of every click): tokens, filters, encoding, parsed once."""

import datetime

from tracker.models import Click, Flow
from tracker.tokens import TokenContext, fill_url, offer_url, url_parts

CLICK = Click(
    click_id="0mk1w2x3a9f0c1d2e3f4g5h6i",
    sub1="a b&c",
    country="GB",
    flow=7,
    params={"adid": "A/1", "phone": " +44 (20) 7946-0958 "},
    created_at=datetime.datetime(2026, 3, 1, 12, 0),
)
CTX = TokenContext(click=CLICK, flow=Flow(id=7, name="Spring"), now=CLICK.created_at)


def test_tokens_in_both_spellings_any_case_percent_encoded():
    assert fill_url("https://o.example/?cid={clickid}&s=<SUB1>&g={Geo}&f={campaign.id}", CTX) == (
        "https://o.example/?cid=0mk1w2x3a9f0c1d2e3f4g5h6i&s=a%20b%26c&g=GB&f=7"
    )


def test_filters_raw_and_unknown_names():
    assert fill_url("https://o.example/?p={phone|digits}&r={sub1|raw}&a={adid}&m={missing}", CTX) == (
        "https://o.example/?p=442079460958&r=a b&c&a=A%2F1&m="
    )


def test_a_token_with_an_unknown_filter_stays_as_written():
    template = "https://o.example/?x={sub1|nope}&y={sub1|upper}"
    assert fill_url(template, CTX) == "https://o.example/?x={sub1|nope}&y=A%20B%26C"


def test_template_is_parsed_once_into_literals_and_tokens():
    template = "https://o.example/lp?cid={clickid}&s1=<sub1|trim|lower>&z={x|bad}"
    assert url_parts(template) == (
        "https://o.example/lp?cid=",
        ("clickid", ()),
        "&s1=",
        ("sub1", ("trim", "lower")),
        "&z={x|bad}",
    )
    assert url_parts(template) is url_parts(template)
    assert fill_url("no tokens at all", CTX) == "no tokens at all"


def test_the_offer_url_reads_the_clicks_flow_and_time():
    flow = Flow(id=7, name="Spring sale", currency="EUR", offer_url="https://o.example/?f={campaign.name}")
    flow.offer_url += "&c={currency}&t={now}&ct={click_time}&iso={event_time_iso}"
    assert offer_url(flow, CLICK) == (
        "https://o.example/?f=Spring%20sale&c=EUR&t=1772366400&ct=1772366400&iso=2026-03-01T12%3A00%3A00Z"
    )


def test_a_phone_filter_completes_a_national_number_with_the_clicks_country():
    click = Click(
        click_id="c1", country="US", flow=7, params={"phone": "(650) 555-1212"}, created_at=CLICK.created_at
    )
    ctx = TokenContext(click=click, now=click.created_at)
    assert fill_url("https://o.example/?p={phone|e164}&d={phone|digits}", ctx) == (
        "https://o.example/?p=%2B16505551212&d=16505551212"
    )
