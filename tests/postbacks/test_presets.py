"""Presets: each builds a postback the editor accepts; the ad platforms' ones are the seeds'
payloads, hashed on the way out by each platform's rules (checked through the preview API for
the platforms' own hosts, with Meta's Business SDK as the oracle), and carry what the platform
needs besides: TikTok's Access-Token header, the success_body a 200 must match, the test event
code, and the revenue presets' filters. What a receiver gets is checked on loopback."""

import datetime
import hashlib
import json
import time

import pytest

from tracker.errors import ValidationError
from tracker.models import Click, Delivery, Postback
from tracker.postbacks import presets
from tracker.postbacks import templates as postback_templates

from postback_helpers import (
    LEAD,
    NOW_UNIX,
    UA,
    at_receiver,
    catch_all,
    change,
    click_deliveries,
    convert,
    make_click,
    received,
    statuses,
    sweep,
    utc_from,
    utcnow,
)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The lead of postback_helpers.LEAD on the click of postback_helpers.CLICK, as Meta and
# Snapchat want them: normalized by their rules, then SHA-256.
META_USER = {
    "em": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",  # Meta's own example
    "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",  # Meta's own example
    "fn": "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",  # "Mary", Meta's example
    "ln": sha("obrien jr"),  # 'O\'Brien "Jr"': lowercase, no punctuation
    "ge": sha("f"),
    "db": sha("19900131"),  # "1990-01-31"
    "ct": sha("mountainview"),  # no spaces
    "st": sha("ca"),
    "zp": sha("94043"),
    "country": sha("us"),
    "external_id": sha("ts-7781"),
    "client_ip_address": "198.51.100.23",
    "client_user_agent": UA,
}
# What the lead and the click said, before normalization: what the SDK is given.
RAW = {
    "em": LEAD["email"],
    "ph": LEAD["phone"],
    "fn": LEAD["first_name"],
    "ge": LEAD["gender"],
    "ct": "Mountain View",
    "st": "CA",
    "zp": "94043",
    "country": "US",
}

FIELDS = {
    "pixel_id": "1234567890",
    "access_token": "EAAGm0PX4ZCps",
    "api_version": "v19.0",
    "pixel_code": "C4PIXEL77",
    "click_id_param": "cid",
    "test_event_code": "TEST4242",
}
CONVERSION = {"event": "conversion", "payout": "49.99", "txid": "TX-1001", "data": LEAD}


def fields_for(preset, receiver):
    return {
        f["name"]: receiver.url_for("/ep") if f["name"] == "url" else FIELDS[f["name"]]
        for f in preset["fields"]
    }


@pytest.mark.parametrize("preset", presets.list_presets(), ids=lambda p: p["id"])
def test_every_preset_builds_a_postback_the_editor_accepts(preset, receiver, api):
    built = presets.build(preset["id"], **fields_for(preset, receiver))
    assert built["trigger"] == preset["trigger"] in ("click", "conversion", "status", "payout")
    assert postback_templates.check(built["url"], built.get("headers")) == ([], [])
    status, flow = api.post(  # ?reveal=1: the API masks the access tokens otherwise
        "/api/v1/flows?reveal=1", json={"name": "p", "offer_url": "https://o.example/", "postbacks": [built]}
    )
    assert status == 201, flow
    saved = flow["postbacks"][0]
    assert {name: saved[name] for name in built if name != "headers"} == {
        name: value for name, value in built.items() if name != "headers"
    }


def test_platform_presets_set_what_each_platform_needs():
    tiktok = presets.build("tiktok_revenue", pixel_code="P1", access_token="tt-secret", test_event_code="T1")
    assert tiktok["headers"] == {"Access-Token": "tt-secret"}
    assert tiktok["success_body"] == presets.TIKTOK_SUCCESS
    assert tiktok["test_event_code"] == "T1"
    assert (tiktok["trigger"], tiktok["statuses"], tiktok["payout_type"]) == (
        "status",
        ["approved"],
        "payout",
    )
    facebook = presets.build("facebook_revenue", pixel_id="1", access_token="t")
    assert (facebook["trigger"], facebook["statuses"], facebook["payout_type"]) == (
        "status",
        ["approved"],
        "payout",
    )
    assert "test_event_code" not in facebook  # optional, not given
    assert presets.build("snapchat_revenue", pixel_id="1", access_token="t")["trigger"] == "status"
    for preset_id in ("facebook_conversion", "snapchat_conversion", "tiktok_conversion"):
        built = presets.build(preset_id, pixel_id="1", access_token="t", pixel_code="P")
        assert built["trigger"] == "conversion" and built["success_body"]
    with pytest.raises(ValidationError, match=r"Access token \(access_token\) is required"):
        presets.build("tiktok_conversion", pixel_code="P1")


def preview(api, template, click, headers=None, **conversion):
    """What ``template`` sends for ``click`` and a conversion of it, by the preview API."""
    body = {"url": template, "click_id": click.click_id, "conversion": dict(CONVERSION, **conversion)}
    if headers:
        body["headers"] = headers
    status, request = api.post("/api/v1/postbacks/preview", json=body)
    assert status == 200, request
    return request


@pytest.mark.parametrize("preset_id,revenue", [("facebook_conversion", False), ("facebook_revenue", True)])
def test_facebook_presets_send_user_data_hashed_the_meta_way(api, make_flow, preset_id, revenue):
    click = make_click(make_flow()["id"])
    built = presets.build(preset_id, pixel_id="1234567890", access_token="EAAGm0PX4ZCps")
    request = preview(api, built["url"], click)
    assert (request["method"], request["url"]) == (
        "POST",
        "https://graph.facebook.com/v21.0/1234567890/events?access_token=EAAGm0PX4ZCps",
    )
    [sent] = json.loads(request["body"])["data"]
    assert abs(sent["event_time"] - time.time()) < 60  # a preview is rendered now
    event = {
        "event_name": "Lead",
        "event_time": sent["event_time"],
        "event_id": "TX-1001" if revenue else click.click_id,
        "event_source_url": "https://offer.example/lp?cid=" + click.click_id,
        "action_source": "website",
        "user_data": dict(META_USER, fbc="fb.1.1714560000.IwAR2abc", fbp="fb.1.1714560000.987654321"),
        "opt_out": False,
    }
    if revenue:
        event["custom_data"] = {"currency": "USD", "value": 49.99}
    assert json.loads(request["body"]) == {"data": [event]}


def test_meta_hashes_equal_the_business_sdks_where_its_rules_and_metas_documentation_agree():
    from facebook_business.adobjects.serverside.normalize import Normalize

    for field, raw in RAW.items():
        assert Normalize.normalize_field(field, raw) == META_USER[field], field


@pytest.mark.parametrize("preset_id,revenue", [("snapchat_conversion", False), ("snapchat_revenue", True)])
def test_snapchat_presets_hash_like_meta_and_keep_the_click_id(api, make_flow, preset_id, revenue):
    click = make_click(make_flow()["id"])
    built = presets.build(preset_id, pixel_id="1234567890", access_token="snap.tok-en_1")
    request = preview(api, built["url"], click)
    assert request["url"] == "https://tr.snapchat.com/v3/1234567890/events?access_token=snap.tok-en_1"
    [event] = json.loads(request["body"])["data"]
    assert event["event_name"] == ("PURCHASE" if revenue else "SIGN_UP")
    assert event["user_data"] == dict(META_USER, sc_click_id="sc-5150")
    if revenue:
        assert event["custom_data"] == {
            "currency": "USD",
            "value": 49.99,
            "referrer_url": "https://news.example/story?id=7&x=y",
        }


@pytest.mark.parametrize("preset_id,revenue", [("tiktok_conversion", False), ("tiktok_revenue", True)])
def test_tiktok_presets_hash_the_phone_in_e164_and_send_the_access_token(api, make_flow, preset_id, revenue):
    click = make_click(make_flow()["id"])
    built = presets.build(preset_id, pixel_code="C4PIXEL77", access_token="tt-secret-9")
    request = preview(api, built["url"], click, headers=built["headers"])
    assert (request["method"], request["url"]) == (
        "POST",
        "https://business-api.tiktok.com/open_api/v1.3/pixel/track/",
    )
    assert request["headers"] == {"Content-Type": "application/json", "Access-Token": "***"}
    body = json.loads(request["body"])
    sent_at = datetime.datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ")  # ISO 8601 UTC
    assert abs((sent_at - utcnow()).total_seconds()) < 60
    assert body == {
        "pixel_code": "C4PIXEL77",
        "event": "CompletePayment" if revenue else "SubmitForm",
        "event_id": "TX-1001" if revenue else click.click_id,
        "timestamp": body["timestamp"],
        "context": {
            "ad": {"callback": "E.C.P.tt123"},
            "page": {
                "url": "https://offer.example/lp?cid=" + click.click_id,
                "referrer": "https://news.example/story?id=7&x=y",
            },
            "user": {
                "external_id": sha("ts-7781"),
                "phone_number": sha("+16505551212"),
                "email": META_USER["em"],
                "ttp": "ttp-456",
            },
            "user_agent": UA,
            "ip": "198.51.100.23",
        },
        **({"properties": {"currency": "USD", "value": 49.99}} if revenue else {}),
    }


@pytest.fixture
def deliver(delivery_app, receiver, make_flow):
    """Put a preset's postback on a flow, pointed at the loopback receiver; return its flow."""

    def run(preset_id, answer="ok", **fields):
        catch_all(receiver, body=answer)
        built = presets.build(preset_id, **fields)
        built["url"] = at_receiver(receiver, built["url"])
        return make_flow(postbacks=[built])

    return run


TIKTOK_OK = '{"code":0,"message":"OK","request_id":"2024050112","data":{}}'
TIKTOK_REFUSED = '{"code":40001,"message":"Access token is incorrect or has been revoked.","data":{}}'


def test_tiktok_gets_its_access_token_header_and_a_refusal_in_a_200_fails(delivery_app, deliver, receiver):
    flow = deliver("tiktok_conversion", answer=TIKTOK_REFUSED, pixel_code="C4PIXEL77", access_token="tt-1")
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    [request] = received(receiver)
    assert request.headers["Access-Token"] == "tt-1"
    assert request.headers["Content-Type"] == "application/json"
    delivery = Delivery.get()
    assert (delivery.status, delivery.headers) == (
        "failed",
        {"Content-Type": "application/json", "Access-Token": "tt-1"},
    )
    assert delivery.last_error == (
        'HTTP 200, but the answer does not match success_body "code"\\s*:\\s*0\\s*[,}]: ' + TIKTOK_REFUSED
    )
    assert sweep(delivery_app, now=utc_from(3600)) == 0  # failed at once: resending won't help


def test_tiktok_answering_code_0_is_delivered(delivery_app, deliver):
    flow = deliver("tiktok_conversion", answer=TIKTOK_OK, pixel_code="C4PIXEL77", access_token="tt-1")
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    assert statuses() == ["delivered"]


def test_the_access_token_is_masked_in_the_api_and_on_screen(delivery_app, deliver, api, client):
    flow = deliver("tiktok_conversion", answer=TIKTOK_OK, pixel_code="C4PIXEL77", access_token="tt-secret-1")
    assert flow["postbacks"][0]["headers"] == {"Access-Token": "***"}
    convert(make_click(flow["id"]))
    status, listing = api.get("/api/v1/deliveries")
    assert listing["items"][0]["headers"] == {"Content-Type": "application/json", "Access-Token": "***"}
    # a flow read and sent back keeps its token
    assert api.patch("/api/v1/flows/%d" % flow["id"], json={"postbacks": flow["postbacks"]})[0] == 200
    assert Delivery.select().count() == 1
    status, again = api.get("/api/v1/flows/%d" % flow["id"])
    assert Postback.get().headers == {"Access-Token": "tt-secret-1"}
    assert again["postbacks"][0]["headers"] == {"Access-Token": "***"}


def test_facebook_success_body(delivery_app, deliver):
    ok = '{"events_received":1,"messages":[],"fbtrace_id":"AbC"}'
    flow = deliver("facebook_conversion", answer=ok, pixel_id="1", access_token="t")
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    assert statuses() == ["delivered"]


def test_revenue_presets_report_approved_positive_payouts_only(delivery_app, deliver, receiver):
    """Issue 9, point 8: a pending lead is reported once approved; a chargeback never."""
    flow = deliver("tiktok_revenue", answer=TIKTOK_OK, pixel_code="C4PIXEL77", access_token="tt-1")
    click = make_click(flow["id"])
    lead, pending = convert(click, status="pending", payout="40", txid="TX-1")
    assert pending == []
    assert [d.status for d in change(lead, status="approved", now=utc_from(60))] == ["queued"]
    _, refund = convert(click, status="approved", payout="-40", txid="TX-1-CB", now=utc_from(120))
    assert refund == []
    assert sweep(delivery_app, now=utc_from(120)) == 1
    [request] = received(receiver)
    body = request.get_json()
    assert (body["event"], body["event_id"], body["properties"]) == (
        "CompletePayment",
        "TX-1",
        {"currency": "USD", "value": 40},
    )


def test_send_test_adds_the_test_event_code_and_live_deliveries_do_not(
    delivery_app, receiver, api, make_flow
):
    catch_all(receiver, body=TIKTOK_OK)
    built = presets.build(
        "tiktok_conversion", pixel_code="C4PIXEL77", access_token="tt-1", test_event_code="TEST4242"
    )
    built["url"] = at_receiver(receiver, built["url"])
    flow = make_flow(postbacks=[built])
    status, test = api.post(
        "/api/v1/postbacks/test",
        json={
            "flow_id": flow["id"],
            **{k: built[k] for k in ("url", "headers", "success_body", "test_event_code")},
        },
    )
    assert status == 201 and test["test"] is True
    assert test["body"].startswith('{"test_event_code":"TEST4242","pixel_code":"C4PIXEL77",')
    assert test["headers"] == {"Content-Type": "application/json", "Access-Token": "***"}
    click_id = make_click(flow["id"]).click_id
    convert(Click.get_by_id(click_id))
    assert sweep(delivery_app, now=utcnow()) == 2
    # sent side by side: tell them apart by the event id (the sample click's, or the real one's)
    test_request, live_request = sorted(
        received(receiver), key=lambda r: r.get_json()["event_id"] == click_id
    )
    assert test_request.get_json()["test_event_code"] == "TEST4242"
    assert test_request.headers["Access-Token"] == "tt-1"
    assert "test_event_code" not in live_request.get_json()
    assert statuses() == ["delivered", "delivered"]


def test_facebook_test_event_code_joins_the_json_and_the_altercpa_form():
    request = postback_templates.Request("POST", "https://graph.facebook.com/x", {}, '{"data":[]}')
    assert postback_templates.with_test_event_code(request, "json", "TEST1").body == (
        '{"test_event_code":"TEST1","data":[]}'
    )
    form = postback_templates.Request("POST", "https://graph.facebook.com/x", {}, "access_token=T&data=[]")
    assert postback_templates.with_test_event_code(form, "form", "TEST 1").body == (
        "access_token=T&data=[]&test_event_code=TEST%201"
    )
    get = postback_templates.Request("GET", "https://pb.example/?a=1", {}, "")
    assert (
        postback_templates.with_test_event_code(get, "get", "T").url
        == "https://pb.example/?a=1&test_event_code=T"
    )


def test_momentscience_preset_sends_the_click_id_they_sent_us(delivery_app, deliver, receiver, client):
    """Issue 9, point 10: MomentScience's click id arrives as click_id on their click."""
    flow = deliver("momentscience_advanced")
    response = client.get("/r/%s?click_id=abc123xyz456&offer_id=789" % flow["key"])
    our_click = response.headers["Location"].rsplit("cid=", 1)[1]
    answer = client.get("/postback?click_id=%s&event=purchase&payout=49.99&measurement=1" % our_click)
    assert answer.status_code == 200
    assert sweep(delivery_app, now=utcnow()) == 1
    [request] = received(receiver)
    assert request.args.to_dict(flat=False) == {
        "measurement": ["1"],
        "click_id": ["abc123xyz456"],
        "event": ["purchase"],
        "payout": ["49.99"],
    }


def test_momentscience_preset_fails_rather_than_sending_an_empty_click_id(delivery_app, deliver, receiver):
    flow = deliver("momentscience_simple")
    convert(make_click(flow["id"], external_id=""))
    delivery = Delivery.get()
    assert (delivery.status, delivery.last_error) == (
        "failed",
        "{externalid|required} is empty for this click, and the postback requires it: not sent",
    )
    assert sweep(delivery_app) == 0 and received(receiver) == []


def test_momentscience_preset_retries_4xx(delivery_app, receiver, make_flow):
    catch_all(receiver, status=404)
    built = presets.build("momentscience_simple")
    assert built["retry_4xx"] is True
    built["url"] = at_receiver(receiver, built["url"])
    flow = make_flow(postbacks=[built])
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    delivery = Delivery.get()
    assert (delivery.status, delivery.last_error) == ("retrying", "HTTP 404")


def test_traffic_source_preset(delivery_app, deliver, receiver):
    flow = deliver("traffic_source", url=receiver.url_for("/ts") + "?acc=7", click_id_param="cid")
    convert(make_click(flow["id"]))
    sweep(delivery_app)
    [request] = received(receiver)
    assert request.path == "/ts"
    assert request.args.to_dict(flat=False) == {
        "acc": ["7"],
        "cid": ["ts-7781"],
        "payout": ["49.99"],
        "txid": ["TX-1001"],
    }


@pytest.mark.parametrize("kind", ["get", "post", "json"])
def test_generic_presets(delivery_app, deliver, receiver, kind):
    flow = deliver("generic_" + kind, url=receiver.url_for("/g"))
    click = make_click(flow["id"])
    convert(click)
    sweep(delivery_app)
    [request] = received(receiver)
    expected = {
        "click_id": click.click_id,
        "event": "conversion",
        "payout": "49.99",
        "status": "approved",
        "txid": "TX-1001",
    }
    if kind == "get":
        assert (request.method, request.args.to_dict()) == ("GET", expected)
    elif kind == "post":
        assert (request.method, request.form.to_dict()) == ("POST", expected)
    else:
        assert request.get_json() == dict(expected, payout=49.99)


def test_lendingtree_session_post_preset_on_the_click(delivery_app, deliver, receiver):
    flow = deliver("lendingtree_session_post", url=receiver.url_for("/session"))
    click = make_click(flow["id"])
    click_deliveries(click)
    sweep(delivery_app)
    [request] = received(receiver)
    assert request.get_json() == {
        "event_type": "session",
        "session_id": click.click_id,
        "campaign_id": str(click.flow_id),
        "utm_source": "facebook",
        "timestamp": str(NOW_UNIX),
        "ip_address": "198.51.100.23",
        "user_agent": UA,
    }


def test_preset_inputs_are_checked():
    with pytest.raises(ValidationError, match="pixel_id may hold only"):
        presets.build("facebook_conversion", pixel_id="1{2}", access_token="t")
    with pytest.raises(ValidationError, match="url must be an http"):
        presets.build("generic_get", url="javascript:alert(1)")
    assert (
        json.loads(
            postback_templates.preview(presets.build("generic_json", url="https://x.example/?a=1")["url"])[
                "body"
            ]
        )["payout"]
        == 12.5
    )
