"""Presets: each builds a template that passes the editor's check, and the ad platforms' ones
send hashed user data (each platform's normalization) and never hash IP, UA or click ids."""

import hashlib
import json

import pytest

from tracker.errors import ValidationError
from tracker.postbacks import presets
from tracker.postbacks import templates as postback_templates

from postback_helpers import (
    NOW_UNIX,
    UA,
    at_receiver,
    catch_all,
    click_deliveries,
    convert,
    make_click,
    received,
    sweep,
)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The lead of postback_helpers.LEAD and the click of postback_helpers.CLICK, hashed as each
# platform wants them.
META_USER = {
    "em": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",  # Meta's own example
    "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",  # Meta's own example
    "fn": "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",  # "Mary", Meta's example
    "ln": sha('o\'brien "jr"'),
    "ge": sha("f"),
    "db": sha("19900131"),
    "ct": sha("mountain view"),
    "st": sha("ca"),
    "zp": sha("94043"),
    "country": sha("us"),
    "external_id": sha("ts-7781"),
    "client_ip_address": "198.51.100.23",
    "client_user_agent": UA,
}

FIELDS = {
    "pixel_id": "1234567890",
    "access_token": "EAAGm0PX4ZCps",
    "api_version": "v19.0",
    "pixel_code": "C4PIXEL77",
    "click_id_param": "cid",
}


def fields_for(preset, receiver):
    return {
        f["name"]: receiver.url_for("/ep") if f["name"] == "url" else FIELDS[f["name"]]
        for f in preset["fields"]
    }


@pytest.mark.parametrize("preset", presets.list_presets(), ids=lambda p: p["id"])
def test_every_preset_builds_a_template_the_editor_accepts(preset, receiver):
    built = presets.build(preset["id"], **fields_for(preset, receiver))
    assert built["trigger"] == preset["trigger"] in ("click", "conversion", "status", "payout")
    assert postback_templates.check(built["url"]) == ([], [])


@pytest.fixture
def deliver(delivery_app, receiver, make_flow):
    """Send a preset's template for a click and a conversion; return the request received."""

    def run(preset_id, **fields):
        catch_all(receiver)
        built = presets.build(preset_id, **fields)
        flow = make_flow(
            postbacks=[{"trigger": built["trigger"], "url": at_receiver(receiver, built["url"])}]
        )
        click = make_click(flow["id"])
        if built["trigger"] == "click":
            click_deliveries(click)
        else:
            convert(click)
        assert sweep(delivery_app) == 1
        [request] = received(receiver)
        return request, click

    return run


@pytest.mark.parametrize("preset_id,revenue", [("facebook_conversion", False), ("facebook_revenue", True)])
def test_facebook_presets_hash_user_data_the_meta_way(deliver, preset_id, revenue):
    request, click = deliver(preset_id, pixel_id="1234567890", access_token="EAAGm0PX4ZCps")
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/v21.0/1234567890/events",
        "application/json",
    )
    assert request.args.to_dict() == {"access_token": "EAAGm0PX4ZCps"}
    event = {
        "event_name": "Lead",
        "event_time": NOW_UNIX,
        "event_id": "TX-1001" if revenue else click.click_id,
        "event_source_url": "https://offer.example/lp?cid=" + click.click_id,
        "action_source": "website",
        "user_data": dict(META_USER, fbc="fb.1.1714560000.IwAR2abc", fbp="fb.1.1714560000.987654321"),
        "opt_out": False,
    }
    if revenue:
        event["custom_data"] = {"currency": "USD", "value": 49.99}
    assert request.get_json() == {"data": [event]}


@pytest.mark.parametrize("preset_id,revenue", [("snapchat_conversion", False), ("snapchat_revenue", True)])
def test_snapchat_presets_hash_like_meta_and_keep_the_click_id(deliver, preset_id, revenue):
    request, click = deliver(preset_id, pixel_id="1234567890", access_token="snap.tok-en_1")
    assert (request.method, request.path) == ("POST", "/v3/1234567890/events")
    assert request.args.to_dict() == {"access_token": "snap.tok-en_1"}
    [event] = request.get_json()["data"]
    assert event["event_name"] == ("PURCHASE" if revenue else "SIGN_UP")
    assert event["user_data"] == dict(META_USER, sc_click_id="sc-5150")
    if revenue:
        assert event["custom_data"] == {
            "currency": "USD",
            "value": 49.99,
            "referrer_url": "https://news.example/story?id=7&x=y",
        }


@pytest.mark.parametrize("preset_id,revenue", [("tiktok_conversion", False), ("tiktok_revenue", True)])
def test_tiktok_presets_hash_phone_in_e164(deliver, preset_id, revenue):
    request, click = deliver(preset_id, pixel_code="C4PIXEL77")
    assert (request.method, request.path) == ("POST", "/open_api/v1.3/pixel/track/")
    body = request.get_json()
    assert body["pixel_code"] == "C4PIXEL77"
    assert body["event"] == ("CompletePayment" if revenue else "SubmitForm")
    assert body["context"] == {
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
    }
    if revenue:
        assert body["properties"] == {"currency": "USD", "value": 49.99}


def test_momentscience_preset_sends_their_click_id(deliver):
    request, click = deliver("momentscience_advanced")
    assert request.args.to_dict(flat=False) == {
        "measurement": ["1"],
        "click_id": ["ts-7781"],
        "event": ["conversion"],
        "payout": ["49.99"],
    }


def test_traffic_source_preset(deliver, receiver):
    request, click = deliver("traffic_source", url=receiver.url_for("/ts") + "?acc=7", click_id_param="cid")
    assert request.path == "/ts"
    assert request.args.to_dict(flat=False) == {
        "acc": ["7"],
        "cid": ["ts-7781"],
        "payout": ["49.99"],
        "txid": ["TX-1001"],
    }


@pytest.mark.parametrize("kind", ["get", "post", "json"])
def test_generic_presets(deliver, receiver, kind):
    request, click = deliver("generic_" + kind, url=receiver.url_for("/g"))
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


def test_lendingtree_session_post_preset_on_the_click(deliver, receiver):
    request, click = deliver("lendingtree_session_post", url=receiver.url_for("/session"))
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
