"""The template engine as plain function calls: the split, encoding by position, filters,
aliases, unknown names, validation, and the platforms' published hashing examples."""

import hashlib
import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from tracker.db import db
from tracker.models import Conversion, Flow, LeadProfile, TrafficSource
from tracker.postbacks import templates as pt
from tracker.postbacks.samples import SAMPLE_TIME
from tracker.tokens import FILTERS, TOKENS, apply_filters

from factories import add_flow
from postback_helpers import make_click

CLICK = pt.sample_click()


def render(template, **params):
    """Render against the sample click, with extra query parameters on it."""
    click = pt.sample_click()
    click.params = dict(click.params, **params)
    return pt.preview(template, click=click, flow=click.flow, now=SAMPLE_TIME)


def test_plain_url_is_a_get_without_body():
    assert render("https://pb.example/x?cid={clickid}") == {
        "method": "GET",
        "url": "https://pb.example/x?cid=" + CLICK.click_id,
        "headers": {},
        "body": "",
    }


def test_post_split_gives_a_form_body():
    request = render("https://pb.example/x?code=abc|POST|click={click}&v={req.qs.v}", v="a b&c=d")
    assert request["method"] == "POST"
    assert request["url"] == "https://pb.example/x?code=abc"
    assert request["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert parse_qs(request["body"]) == {"click": [CLICK.click_id], "v": ["a b&c=d"]}


def test_json_split_gives_a_json_body():
    request = render('https://pb.example/x|JSON|{"foo":"bar","click":"{click}"}')
    assert (request["method"], request["url"]) == ("POST", "https://pb.example/x")
    assert request["headers"] == {"Content-Type": "application/json"}
    assert json.loads(request["body"]) == {"foo": "bar", "click": CLICK.click_id}


def test_split_is_on_the_first_separator_outside_a_token():
    parsed = pt.parse('https://a.example/?x={v|POST|raw}|JSON|{"a":"|POST|"}')
    assert parsed == pt.Template("https://a.example/?x={v|POST|raw}", "json", '{"a":"|POST|"}')
    assert pt.parse("https://a.example/|POST|a=1|JSON|b") == pt.Template(
        "https://a.example/", "form", "a=1|JSON|b"
    )
    # the same separator again in the body is the body's text
    assert pt.parse("https://a.example/|POST|a=1|POST|b=2") == pt.Template(
        "https://a.example/", "form", "a=1|POST|b=2"
    )


def test_both_token_spellings_and_any_case_are_the_same_token():
    request = render("https://pb.example/?a={ClickID}&b=<clickid>&c={SUBID}&d=<Click.Id>")
    assert parse_qs(urlsplit(request["url"]).query) == {k: [CLICK.click_id] for k in "abcd"}


def test_json_numbers_stay_bare_outside_quotes_and_strings_are_quoted():
    request = render(
        'https://pb.example/|JSON|{"p":{payout},"t":{now},"asn":{asn},"e":{event},'
        '"s":{sub1},"q":"{payout}","z":{req.qs.zero},"none":{req.qs.missing}}',
        zero="0123",
    )
    assert request["body"] == (
        '{"p":12.50,"t":1714564800,"asn":64500,"e":"conversion","s":"sub1","q":"12.50","z":"0123","none":""}'
    )
    assert json.loads(request["body"], parse_float=Decimal)["p"] == Decimal("12.50")


def test_json_string_values_are_escaped():
    value = 'say "hi"\\ \n\t</script> \u2028 😀'
    request = render('https://pb.example/|JSON|{"v":"pre {req.qs.v} post","b":{req.qs.v}}', v=value)
    assert json.loads(request["body"]) == {"v": "pre %s post" % value, "b": value}


def test_a_value_holding_a_token_is_not_expanded_again():
    request = render('https://pb.example/?v={req.qs.v}|JSON|{"v":"{req.qs.v}"}', v="{clickid}")
    assert parse_qs(urlsplit(request["url"]).query) == {"v": ["{clickid}"]}
    assert json.loads(request["body"]) == {"v": "{clickid}"}


def test_raw_inserts_without_encoding():
    request = render("https://pb.example/?a={req.qs.v|raw}&b={req.qs.v}", v="x%2Fy")
    assert request["url"] == "https://pb.example/?a=x%2Fy&b=x%252Fy"


def test_unknown_names_read_click_parameters_then_lead_data():
    request = render("https://pb.example/?adid={adid}&name={name}&none={nothing}", adid="ad 7")
    assert parse_qs(urlsplit(request["url"]).query, keep_blank_values=True) == {
        "adid": ["ad 7"],
        "name": [""],
        "none": [""],
    }
    conversion = pt.sample_conversion()
    conversion.data = {"name": "Jane"}
    request = pt.preview("https://pb.example/?name={name}", conversion=conversion)
    assert request["url"] == "https://pb.example/?name=Jane"


def test_request_families_reach_params_cookies_and_nested_lead_data():
    request = render(
        "https://pb.example/?a={req.qs.utm_source}&b={req.cookie._fbp}"
        "&c={req.sessionData.contact.firstName}&d={var:ScCid}"
    )
    assert parse_qs(urlsplit(request["url"]).query) == {
        "a": ["facebook"],
        "b": ["fb.1.1714564800.123456789"],
        "c": ["John"],
        "d": ["sc-click-123"],
    }


def test_url_is_normalized_as_it_goes_on_the_wire():
    request = render("https://PB.example?x=a b|c")
    assert request["url"] == "https://pb.example/?x=a%20b%7Cc"


def test_a_rendered_json_body_that_does_not_parse_is_an_error_with_the_request():
    with pytest.raises(pt.TemplateError) as error:
        render('https://pb.example/|JSON|{"a":{sub1|raw}}')
    assert error.value.message.startswith("the JSON body is not valid JSON: ")
    assert error.value.request.body == '{"a":sub1}'


@pytest.mark.parametrize(
    "template,message",
    [
        ("", "the template is empty"),
        ("ftp://pb.example/x", "the URL must start with http:// or https://"),
        ("|POST|a=1", "the template has no URL"),
        ("https://pb.example/?p={phone|md5}", "{phone|md5}: unknown filter 'md5'"),
        ('https://pb.example/|JSON|{"a":1,}', "the JSON body is not valid JSON: Expecting property name"),
        (
            'https://pb.example/|JSON|{"a":"{sub1}"',
            "the JSON body is not valid JSON: Expecting ',' delimiter",
        ),
    ],
)
def test_check_refuses_templates_that_cannot_render(template, message):
    errors, _ = pt.check(template)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_check_warns_about_names_that_are_no_builtin_token():
    errors, warnings = pt.check("https://pb.example/?a={adid}&b={ADID}&c={clickid}&d={req.qs.x}&e=<zone>")
    assert errors == []
    assert [w.split(" ")[0] for w in warnings] == ["{adid}", "{zone}"]
    assert warnings[0] == (
        "{adid} is not a built-in token: it is read from the click's query parameter or the lead "
        "data named 'adid' (empty when absent)"
    )


def test_a_stored_header_with_a_bad_name_is_refused_when_rendered_and_named():
    ctx = pt.context(None, None)
    assert pt.render_headers({"X-Ok": "{sub1}"}, ctx) == {"X-Ok": ""}
    with pytest.raises(pt.TemplateError) as refused:
        pt.render_headers({"X-Ok": "1", "Bad Name": "x"}, ctx)
    assert refused.value.message == "header name 'Bad Name' is not a valid HTTP header name"


def test_alter_cpa_form_body_holding_json_round_trips():
    template = (
        'https://graph.facebook.com/v18.0/PIXEL/events|POST|access_token=TOKEN&data=[{"event_time":{now},'
        '"user_data":{"client_user_agent":"{ua}","fbc":"fb.1.{now}.{adid}"}}]'
    )
    request = render(template, adid='a&b=c "quoted"#%')
    form = parse_qs(request["body"])
    assert form["access_token"] == ["TOKEN"]
    # A value with a quote in it breaks the JSON inside the form: percent-encoding is all
    # a form value gets, as the seed's format defines; this one has none, so it parses.
    assert form["data"][0].startswith('[{"event_time":1714564800,')
    assert form["data"][0].endswith('"fbc":"fb.1.1714564800.a&b=c "quoted"#%"}}]')
    clean = parse_qs(render(template, adid="ad-991&x=1")["body"])
    assert json.loads(clean["data"][0]) == [
        {
            "event_time": 1714564800,
            "user_data": {"client_user_agent": CLICK.user_agent, "fbc": "fb.1.1714564800.ad-991&x=1"},
        }
    ]


# --- filters and the platforms' published hashing examples ------------------------------------


def test_sha256_matches_metas_published_email_example():
    assert (
        apply_filters("  John_Smith@gmail.com ", ["sha256"])
        == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    )


def test_sha256_matches_metas_published_name_examples():
    assert (
        apply_filters("Mary", ["sha256"])
        == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    )
    assert (
        apply_filters("Valéry", ["sha256"])
        == "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
    )
    assert (
        apply_filters("정", ["sha256"]) == "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"
    )


def test_meta_and_snapchat_phone_is_digits_with_the_country_code_then_sha256():
    # Meta's example: "(650)555-1212", a US number, normalized to 16505551212. No filter guesses
    # a country code: the lead's phone carries it, as "+1 (650) 555-1212" does.
    assert apply_filters("+1 (650) 555-1212", ["digits"]) == "16505551212"
    assert (
        apply_filters("+1 (650) 555-1212", ["digits", "sha256"])
        == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    )


def test_tiktok_phone_is_e164_with_the_plus_then_sha256():
    assert apply_filters("+1 (650) 555-1212", ["e164"]) == "+16505551212"
    assert (
        apply_filters("+1 (650) 555-1212", ["e164", "sha256"]) == hashlib.sha256(b"+16505551212").hexdigest()
    )


def test_filters_chain_left_to_right_and_empty_stays_empty():
    assert apply_filters("  MiXed ", ["trim", "upper"]) == "MIXED"
    assert apply_filters("  MiXed ", ["lower"]) == "  mixed "
    assert apply_filters("   ", ["sha256"]) == ""
    assert apply_filters("", ["e164"]) == ""
    assert set(FILTERS) == {"sha256", "digits", "e164", "lower", "upper", "trim", "raw", "required"}


def test_filters_apply_in_every_position():
    request = render(
        'https://pb.example/?h={email|sha256}|JSON|{"ph":"{phone|digits|sha256}","n":{phone|digits}}'
    )
    assert urlsplit(request["url"]).query == "h=" + hashlib.sha256(b"john.smith@example.com").hexdigest()
    assert json.loads(request["body"]) == {
        "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
        "n": "16505551212",
    }


def test_token_reference_lists_every_design_spelling():
    spellings = {s.lower() for token in TOKENS for s in (token.name, *token.aliases)}
    design = (
        "click_id click.id clickid click subid sessionid id externalid external_id var1 var10 sub1 subid1 "
        "utm_source utm_content flow.id campaign.id campaignid campaign_id flow.name offer.id lander.id "
        "trafficsource.id ip ipaddress ua useragent user_agent referrer refererurl referrerdomain "
        "locationurl language country geo countryname region state city zip isp asn carrier "
        "connection.type os osversion browser browserversion device brand model event goal payout "
        "publisherrevenue revenue cash conversion.payout currency status stage txid transaction.id "
        "externalidentifier conversion.cost campaign.cpa cost now timestamp event_time click_time email "
        "phone first_name last_name gender dob advertisername pixelcode conversion_time"
    ).split()
    assert [name for name in design if name not in spellings] == []


def test_header_tokens_work_in_the_angle_bracket_spelling_with_filters():
    headers = {"X-Click": "<clickid>", "X-Email": "<email|sha256>", "X-Sub": "{sub1|upper}"}
    request = pt.preview(
        "https://pb.example/", click=CLICK, flow=CLICK.flow, now=SAMPLE_TIME, headers=headers
    )
    email = pt.sample_conversion(CLICK, CLICK.flow).data["email"]
    assert request["headers"] == {
        "X-Click": CLICK.click_id,
        "X-Email": hashlib.sha256(email.strip().lower().encode()).hexdigest(),
        "X-Sub": CLICK.sub1.upper(),
    }


def test_a_token_after_an_escaped_backslash_stands_outside_the_string():
    body = render('https://pb.example/|JSON|{"path":"C:\\\\","e":{event},"s":"{event}"}')["body"]
    assert json.loads(body) == {"path": "C:\\", "e": "conversion", "s": "conversion"}


def test_a_json_body_that_is_one_string_gets_the_value_inside_it():
    assert render('https://pb.example/|JSON|"{event} of {payout}"')["body"] == '"conversion of 12.50"'


def test_json_bodies_carry_non_ascii_as_utf8_text_and_raw_values_without_nul():
    body = render(
        'https://pb.example/|JSON|{"n":"{who}","m":{who},"r":"{note|raw}"}', who="Zoë", note="a\x00b"
    )
    assert body["body"] == '{"n":"Zoë","m":"Zoë","r":"ab"}'


def test_a_saved_clicks_lead_profile_fills_what_the_conversion_lacks(app):
    with db.connection_context():
        flow = add_flow()
        click = make_click(flow.id)
        LeadProfile.create(click=click.click_id, data={"email": "profile@example.com", "city": "Lyon"})
        conversion = Conversion(click=click, data={"email": "conv@example.com", "phone": "+33 1 23 45 67 89"})
        assert pt.stored_lead(click, conversion) == {
            "email": "profile@example.com",
            "city": "Lyon",
            "phone": "+33 1 23 45 67 89",
        }
        assert pt.stored_lead(click) == {"email": "profile@example.com", "city": "Lyon"}


def test_the_flow_given_beside_the_click_and_its_source_are_what_the_tokens_read(app):
    """A delivery passes the flow it has (the cached one, with its traffic source attached)
    beside the click: the context reads that flow and its source, not the click's own row."""
    with db.connection_context():
        saved = add_flow("Saved")
        click = make_click(saved.id)
        given = Flow(id=saved.id, name="Given", key=saved.key, offer_url=saved.offer_url)
        given.source = TrafficSource(name="Given source")
        context = pt.context(click=click, flow=given)
        assert (context.flow.name, context.traffic_source.name) == ("Given", "Given source")
        assert pt.context(click=click).flow.name == "Saved"
