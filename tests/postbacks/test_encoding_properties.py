"""Property tests: any value arrives exactly as it was, in the URL, in a form body and in a
JSON body (inside quotes or bare), and a JSON body always parses."""

import json
from urllib.parse import parse_qs, urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker.models import Delivery, Flow
from tracker.postbacks import outbox
from tracker.postbacks import templates as pt
from tracker.tokens import TOKENS

from conftest import examples
from postback_helpers import catch_all, make_click, received, sweep

# Any text but lone surrogates (no click or lead value can hold one: they are cleaned on input).
VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
TRICKY = [
    '"',
    "\\",
    "\n",
    "&",
    "=",
    "#",
    "%",
    "%41",
    "+",
    " ",
    "|POST|",
    "|JSON|",
    "{clickid}",
    "<ip>",
    "é",
    "😀",
    "\u2028",
    "\x00",
    "a=b&c=d#e",
    '"},{"x":1',
]


def rendered(template, value):
    click = pt.sample_click()
    click.params = {"v": value}
    return pt.preview(template, click=click, flow=click.flow)


@settings(max_examples=examples(300), deadline=None)
@given(VALUES)
def test_any_value_round_trips_in_the_url(value):
    request = rendered("https://pb.example/path?v={req.qs.v}&after=1", value)
    assert parse_qs(urlsplit(request["url"]).query, keep_blank_values=True) == {"v": [value], "after": ["1"]}


@settings(max_examples=examples(300), deadline=None)
@given(VALUES)
def test_any_value_round_trips_in_a_form_body(value):
    request = rendered("https://pb.example/|POST|v={req.qs.v}&after=1", value)
    assert parse_qs(request["body"], keep_blank_values=True) == {"v": [value], "after": ["1"]}


@settings(max_examples=examples(300), deadline=None)
@given(VALUES)
def test_any_value_round_trips_in_a_json_body_and_it_parses(value):
    request = rendered(
        'https://pb.example/|JSON|{"in":"<{req.qs.v}>","bare":{req.qs.v},"list":[{req.qs.v}]}', value
    )
    assert json.loads(request["body"]) == {"in": "<%s>" % value, "bare": value, "list": [value]}


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.sampled_from(TRICKY), max_size=6).map("".join))
def test_tricky_pieces_round_trip_everywhere(value):
    request = rendered('https://pb.example/?v={req.qs.v}|JSON|{"v":"{req.qs.v}","b":{req.qs.v}}', value)
    assert parse_qs(urlsplit(request["url"]).query, keep_blank_values=True) == {"v": [value]}
    assert json.loads(request["body"]) == {"v": value, "b": value}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(value='"quote" \\ \n & = # % |POST| é 😀')
@given(value=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_values_arrive_exactly_at_a_real_receiver(delivery_app, receiver, make_flow, value):
    receiver.clear()
    catch_all(receiver)
    Delivery.delete().execute()
    template = receiver.url_for("/pb") + '?u={req.qs.v}|JSON|{"s":"{req.qs.v}","b":{req.qs.v}}'
    flow = Flow.get_or_none(Flow.name == "Property flow") or Flow.get_by_id(
        make_flow(name="Property flow", postbacks=[{"trigger": "click", "url": template}])["id"]
    )
    click = make_click(flow.id, params={"v": value})
    outbox.enqueue_for_click(click, flow)
    assert sweep(delivery_app) == 1
    request = received(receiver)[-1]
    assert request.args.to_dict(flat=False) == {"u": [value]}
    assert request.get_json() == {"s": value, "b": value}


EVERY_TOKEN = "https://pb.example/p?" + "&".join("t%d={%s}" % (n, t.name) for n, t in enumerate(TOKENS))


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(
    referrer=st.text(max_size=60)
    | st.sampled_from(["http://[::1/x", "http://[abc]/", "//[", "http://a:99999/", "http://a b/"]),
    sub1=VALUES,
)
def test_every_token_renders_whatever_the_visitor_sent(referrer, sub1):
    # the click's text comes from the visitor: no value may stop a postback from rendering
    click = pt.sample_click()
    click.referrer, click.sub1 = referrer, sub1
    request = pt.render(EVERY_TOKEN, pt.context(click))
    assert request.method == "GET" and request.url.startswith("https://pb.example/p?t0=")
