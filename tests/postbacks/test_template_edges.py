"""What a rendered postback must be at the edges a user meets: a test delivery's
``test_event_code`` beside each kind of payload, previews of a flow or with lead data, values
no receiver or database may get (a NUL, a lone surrogate, a ``/`` in a query value), the
click's country completing a phone number for an ad platform, and the errors of a bad URL."""

import hashlib
import json

import pytest
import requests

from tracker.postbacks import templates as pt
from tracker.postbacks.samples import SAMPLE_TIME
from tracker.tokens import resolve

from factories import add_flow


def request(method, url, body="", headers=None):
    return pt.Request(method, url, headers if headers is not None else {"X-Key": "k"}, body)


@pytest.mark.parametrize(
    "kind, before, after",
    [
        # a GET: the code joins the query, with "&" after a query and "?" without one
        ("get", request("GET", "https://pb.example/p?a=1"), "https://pb.example/p?a=1&test_event_code=T%261"),
        ("get", request("GET", "https://pb.example/p"), "https://pb.example/p?test_event_code=T%261"),
    ],
)
def test_a_test_delivery_by_get_adds_its_code_to_the_query_encoded(kind, before, after):
    sent = pt.with_test_event_code(before, kind, "T&1")
    assert sent == pt.Request("GET", after, {"X-Key": "k"}, "")


def test_a_test_delivery_by_form_adds_its_code_as_a_field_encoded():
    form = request("POST", "https://pb.example/p", "a=1")
    assert pt.with_test_event_code(form, "form", "T/1") == pt.Request(
        "POST", "https://pb.example/p", {"X-Key": "k"}, "a=1&test_event_code=T%2F1"
    )
    empty = request("POST", "https://pb.example/p", "")
    assert pt.with_test_event_code(empty, "form", "T1").body == "test_event_code=T1"  # no "&" first


def test_a_test_delivery_by_json_puts_its_code_first_in_the_object_as_written():
    body = '{"data":[{"event_name":"Purchase"}]}'
    sent = pt.with_test_event_code(request("POST", "https://pb.example/p", body), "json", "TÉST 1")
    assert sent == pt.Request(
        "POST",
        "https://pb.example/p",
        {"X-Key": "k"},
        '{"test_event_code":"TÉST 1","data":[{"event_name":"Purchase"}]}',
    )
    # an empty object gets no comma; leading white space is kept before the brace
    empty = pt.with_test_event_code(request("POST", "https://pb.example/p", "  {  }"), "json", "T1")
    assert empty.body == '  {"test_event_code":"T1"  }' and json.loads(empty.body) == {
        "test_event_code": "T1"
    }


def test_a_test_delivery_leaves_a_json_payload_alone_that_is_no_object_or_sets_the_code_itself():
    array = request("POST", "https://pb.example/p", '[{"a":1}]')
    assert pt.with_test_event_code(array, "json", "T1") == array
    own = request("POST", "https://pb.example/p", '{"test_event_code":"MINE","a":1}')
    assert pt.with_test_event_code(own, "json", "T1") == own
    live = request("GET", "https://pb.example/p")
    assert pt.with_test_event_code(live, "get", "") == live  # a live delivery has no code


def test_a_preview_of_a_flow_without_a_click_reads_that_flow(app):
    with app.app_context():
        flow = add_flow(name="Summer promo", offer_url="https://offer.example/summer?c={clickid}")
        shown = pt.preview(
            "https://pb.example/p?f={campaign_id}&lp={locationurl}", flow=flow, now=SAMPLE_TIME
        )
    sample = pt.sample_click()
    assert shown["url"] == (
        "https://pb.example/p?f=%d&lp=https%%3A%%2F%%2Foffer.example%%2Fsummer%%3Fc%%3D%s"
        % (flow.id, sample.click_id)
    )


def test_a_preview_of_another_flow_than_the_clicks_reads_the_flow_given(app):
    # the postback editor previews the flow being edited, with a click that may be another's
    with app.app_context():
        edited = add_flow(name="Edited")
        click = pt.sample_click()
        shown = pt.preview("https://pb.example/p?f={campaign_id}", click=click, flow=edited, now=SAMPLE_TIME)
    assert shown["url"] == "https://pb.example/p?f=%d" % edited.id


def test_a_preview_with_a_lead_profile_reads_it_not_the_sample_conversions_data():
    shown = pt.preview("https://pb.example/p?e={email}", lead={"email": "ann@example.org"}, now=SAMPLE_TIME)
    assert shown["url"] == "https://pb.example/p?e=ann%40example.org"
    ctx = pt.context(pt.sample_click(), lead={"email": "bob@example.org"})
    assert resolve("email", ctx) == "bob@example.org"


def test_a_context_without_a_click_has_no_landing_url(app):
    with app.app_context():
        flow = add_flow(offer_url="https://offer.example/lp?c={clickid}")
    assert pt.context(flow=flow).landing_url == ""
    assert pt.context().landing_url == ""


def test_a_query_value_is_encoded_whole_slashes_included():
    shown = pt.preview("https://pb.example/p?v={sub1}", click=_click(sub1="a/b c?d"), now=SAMPLE_TIME)
    assert shown["url"] == "https://pb.example/p?v=a%2Fb%20c%3Fd"


def test_a_raw_value_loses_its_nul_bytes_and_nothing_else():
    # a NUL can't be stored in PostgreSQL text, nor sent in a header; the rest stays as given
    shown = pt.preview(
        "https://pb.example/p|POST|v={sub1|raw}", click=_click(sub1="a\x00b&c"), now=SAMPLE_TIME
    )
    assert shown["body"] == "v=ab&c"


def test_a_lone_surrogate_is_replaced_so_the_request_can_be_stored_and_sent():
    shown = pt.preview(
        'https://pb.example/p|JSON|{"v":"{sub1}"}', click=_click(sub1="a\ud800b"), now=SAMPLE_TIME
    )
    assert json.loads(shown["body"]) == {"v": "a?b"}


def test_the_clicks_country_completes_a_local_phone_number_for_meta():
    # Meta hashes phone numbers with their country code: "07700 900123" from a GB click is
    # 447700900123, not the digits as written
    click = _click()
    click.country = "GB"
    template = 'https://graph.facebook.com/v19.0/1/events|JSON|{"data":[{"user_data":{"ph":"{phone}"}}]}'
    shown = pt.preview(template, click=click, lead={"phone": "07700 900123"}, now=SAMPLE_TIME)
    hashed = json.loads(shown["body"])["data"][0]["user_data"]["ph"]
    assert hashed == hashlib.sha256(b"447700900123").hexdigest()


def test_a_url_requests_cannot_send_is_refused_with_the_reason():
    with pytest.raises(pt.TemplateError) as refused:
        pt.prepare_url("http://[::1/p")
    assert refused.value.message.startswith("the URL is not valid: ")
    long_url = "ftp://" + "x" * 300
    with pytest.raises(pt.TemplateError) as refused:
        pt.prepare_url(long_url)
    assert refused.value.message == (
        "the URL must start with http:// or https:// and name a host: %r" % long_url[:200]
    )


def test_a_bad_header_name_is_quoted_in_the_error_up_to_100_characters():
    name = "bad name " * 20
    with pytest.raises(pt.TemplateError) as refused:
        pt.render_headers({name: "v"}, pt.context(pt.sample_click()))
    assert refused.value.message == "header name %r is not a valid HTTP header name" % name[:100]


@pytest.mark.parametrize(
    "url, plain",
    [
        ("https://pb.example/p?a=1", True),  # sent as it is, without requests' normalization
        ("https://pb.example/p?u=/./x?y=1", True),  # a dot segment in the query is the query's
        ("https://pb.example/a/./b?x=1", False),  # a dot segment in the path: normalized
    ],
)
def test_a_plain_url_skips_normalization_only_when_normalizing_would_not_change_it(url, plain):
    assert pt.is_plain_url(url) is plain
    assert (requests.Request("GET", url).prepare().url == url) is plain


def _click(**fields):
    click = pt.sample_click()
    for name, value in fields.items():
        setattr(click, name, value)
    return click
