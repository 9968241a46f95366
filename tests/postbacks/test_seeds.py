"""Every postback example of the seeds, rendered, sent by the worker to a real receiver on
loopback, and checked value by value: method, content type, path, query, form or JSON body.

The templates are the seeds' text verbatim; only the scheme and host point at the receiver,
and where a seed says "set your data instead of texts" (API version, pixel id, token) the
test sets them as a user would.
"""

import datetime
import hashlib
import json
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from tracker.models import Click, Delivery

from postback_helpers import (
    LEAD,
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

# --- 000: LendingTree server-side postbacks ---------------------------------------------------

SESSION_GET = (
    "https://example.com/session?sessionid={sessionid}&campaign={campaignid}"
    "&clickid={req.qs.clickid}&utm_source={req.qs.utm_source}"
)
SESSION_POST = """{
"event_type": "session",
"session_id": "{sessionid}",
"campaign_id": "{campaignid}",
"utm_source": "{req.qs.utm_source}",
"timestamp": "{timestamp}",
"ip_address": "{ipaddress}",
"user_agent": "{useragent}"
}"""
CONVERSION_GET = (
    "https://example.com/conversion?sessionid={sessionid}&email={email}&phone={phone}"
    "&campaign={campaignid}&utm_source={req.qs.utm_source}"
)
CONVERSION_POST = """{
"event_type": "conversion",
"session_id": "{sessionid}",
"user_data": {
"email": "{email}",
"phone": "{phone}",
"first_name": "{req.sessionData.contact.firstName}",
"last_name": "{req.sessionData.contact.lastName}"
},
"campaign_id": "{campaignid}",
"utm_source": "{req.qs.utm_source}",
"timestamp": "{timestamp}"
}"""
REVENUE_GET = (
    "https://example.com/revenue?sessionid={sessionid}&revenue={publisherrevenue}"
    "&advertiser={advertisername}&campaign={campaignid}&external_id={externalidentifier}"
)
REVENUE_POST = """{
"event_type": "payout",
"session_id": "{sessionid}",
"revenue_data": {
"amount": "{publisherrevenue}",
"advertiser": "{advertisername}",
"external_id": "{externalidentifier}"
},
"user_data": {
"email": "{email}",
"phone": "{phone}"
},
"campaign_id": "{campaignid}",
"timestamp": "{timestamp}"
}"""
FACEBOOK_URL = "https://graph.facebook.com/{API_VERSION}/{PIXEL_ID}/events?access_token={TOKEN}"
FACEBOOK_CONVERSION = """{
"data": [
{
"event_name": "Lead",
"event_time": "{event_time}",
"event_id": "{sessionid}",
"event_source_url": "{locationurl}",
"action_source": "website",
"user_data": {
"em": "{email}",
"ph": "{phone}",
"fn": "{first_name}",
"ln": "{last_name}",
"ge": "{gender}",
"db": "{dob}",
"ct": "{city}",
"st": "{state}",
"zp": "{zip}",
"country": "{country}",
"external_id": "{external_id}",
"client_ip_address": "{ipaddress}",
"client_user_agent": "{useragent}",
"fbc": "{req.cookie._fbc}",
"fbp": "{req.cookie._fbp}"
},
"opt_out": false
}
]
}"""
FACEBOOK_REVENUE = """{
"data": [
{
"event_name": "Lead",
"event_time": "{event_time}",
"event_id": "{externalidentifier}",
"event_source_url": "{locationurl}",
"action_source": "website",
"user_data": {
"em": "{email}",
"ph": "{phone}",
"fn": "{first_name}",
"ln": "{last_name}",
"ge": "{gender}",
"db": "{dob}",
"ct": "{city}",
"st": "{state}",
"zp": "{zip}",
"country": "{country}",
"external_id": "{external_id}",
"client_ip_address": "{ipaddress}",
"client_user_agent": "{useragent}",
"fbc": "{req.cookie._fbc}",
"fbp": "{req.cookie._fbp}"
},
"custom_data": {
"currency": "USD",
"value": "{publisherrevenue}"
},
"opt_out": false
}
]
}"""
SNAPCHAT_URL = "https://tr.snapchat.com/v3/{PIXEL_ID}/events?access_token={TOKEN}"
SNAPCHAT_CONVERSION = """{
"data": [
{
"event_name": "SIGN_UP",
"event_time": "{event_time}",
"event_id": "{sessionid}",
"event_source_url": "{locationurl}",
"action_source": "website",
"user_data": {
"em": "{email}",
"ph": "{phone}",
"fn": "{first_name}",
"ln": "{last_name}",
"ge": "{gender}",
"db": "{dob}",
"ct": "{city}",
"st": "{state}",
"zp": "{zip}",
"country": "{country}",
"external_id": "{external_id}",
"client_ip_address": "{ipaddress}",
"client_user_agent": "{useragent}",
"sc_click_id": "{req.qs.ScCid}"
}
}
]
}"""
SNAPCHAT_REVENUE = """{
"data": [
{
"event_name": "PURCHASE",
"event_time": "{event_time}",
"event_id": "{externalidentifier}",
"event_source_url": "{locationurl}",
"action_source": "website",
"user_data": {
"em": "{email}",
"ph": "{phone}",
"fn": "{first_name}",
"ln": "{last_name}",
"ge": "{gender}",
"db": "{dob}",
"ct": "{city}",
"st": "{state}",
"zp": "{zip}",
"country": "{country}",
"external_id": "{external_id}",
"client_ip_address": "{ipaddress}",
"client_user_agent": "{useragent}",
"sc_click_id": "{req.qs.ScCid}"
},
"custom_data": {
"currency": "USD",
"value": "{publisherrevenue}",
"referrer_url": "{refererUrl}"
}
}
]
}"""
TIKTOK_URL = "https://business-api.tiktok.com/open_api/v1.3/pixel/track/"
TIKTOK_CONVERSION = """{
"pixel_code": "{pixelCode}",
"event": "SubmitForm",
"event_id": "{sessionid}",
"timestamp": "{event_time}",
"context": {
"ad": {
"callback": "{req.cookie.ttclid}"
},
"page": {
"url": "{locationurl}",
"referrer": "{refererUrl}"
},
"user": {
"external_id": "{external_id}",
"phone_number": "{phone}",
"email": "{email}",
"ttp": "{req.cookie._ttp}"
},
"user_agent": "{useragent}",
"ip": "{ipaddress}"
}
}"""
TIKTOK_REVENUE = """{
"pixel_code": "{pixelCode}",
"event": "CompletePayment",
"event_id": "{externalidentifier}",
"timestamp": "{event_time}",
"context": {
"ad": {
"callback": "{req.cookie.ttclid}"
},
"page": {
"url": "{locationurl}",
"referrer": "{refererUrl}"
},
"user": {
"external_id": "{external_id}",
"phone_number": "{phone}",
"email": "{email}",
"ttp": "{req.cookie._ttp}"
},
"user_agent": "{useragent}",
"ip": "{ipaddress}"
},
"properties": {
"currency": "USD",
"value": "{publisherrevenue}"
}
}"""
SESSION_AD_PIXEL = """{
"adresponse": "{adresponse}",
"campaign": "{campaignid}",
"emailaddress": "{req.session.contact.email}",
"first_name": "{req.session.contact.first_name}",
"last_name": "{req.session.contact.last_name}",
"sessionid": "{sessionid}"
}"""

# --- 002: AlterCPA ---------------------------------------------------------------------------

ALTERCPA_FACEBOOK = (
    'https://graph.facebook.com/v18.0/PIXEL/events|POST|access_token=TOKEN&data=[{"action_source":'
    '"website","event_name":"Lead","event_time":{now},"user_data":{"external_id":"{id}",'
    '"client_ip_address":"{ip}","client_user_agent":"{ua}","fbc":"fb.1.{now}.{adid}",'
    '"fbp":"fb.1.{now}.{id}"}}]'
)
ALTERCPA_POST = "https://track.er/postback?code=abc|POST|click={click}&name={name}"
ALTERCPA_JSON = 'https://track.er/postback|JSON|{"foo":"bar","click":"{click}"}'

# --- 003: MomentScience (the seed's text lost its punctuation: "click id" is click_id) --------

MOMENTSCIENCE_SIMPLE = "https://track.momentscience.com/postback?click_id={click_id}"
MOMENTSCIENCE_ADVANCED = (
    "https://track.momentscience.com/postback?measurement=1&click_id={click_id}&event={event}&payout={payout}"
)

# --- 004: ClickFlare's token table -----------------------------------------------------------

CLICKFLARE_TOKENS = [
    "country",
    "countryname",
    "region",
    "city",
    "os",
    "osversion",
    "browser",
    "browserversion",
    "device",
    "brand",
    "model",
    "language",
    "transaction.id",
    "click.id",
    "payout",
    "conversion.cost",
    "campaign.cpa",
    "externalid",
    "var1",
    "var2",
    "var3",
    "var:variablename",
    "referrerdomain",
    "ip",
    "isp",
    "carrier",
    "connection.type",
    "campaign.id",
    "lander.id",
    "trafficsource.id",
    "offer.id",
]


def fill_placeholders(url):
    """What the seeds ask the user to do: put their own API version, pixel id and token in."""
    return (
        url.replace("{API_VERSION}", "v18.0")
        .replace("{PIXEL_ID}", "1234567890")
        .replace("{TOKEN}", "EAAGm0PX4ZCps")
    )


@pytest.fixture
def send(delivery_app, receiver, make_flow, api):
    """Put ``template`` on a flow as a ``trigger`` postback (``source``: the flow's traffic
    source's own postback), make a click (and a conversion), run one sweep, and return
    ``(the one request received, click, conversion)``."""

    def run(template, trigger, **conversion):
        catch_all(receiver)
        url = at_receiver(receiver, template)
        if trigger == "source":
            status, source = api.post(
                "/api/v1/traffic-sources",
                json={"name": "Source", "click_id_param": "clickid", "postback_url": url},
            )
            assert status == 201, source
            flow = make_flow(traffic_source_id=source["id"])
        else:
            flow = make_flow(postbacks=[{"trigger": trigger, "url": url}])
        click = make_click(flow["id"])
        conv = None
        if trigger == "click":
            click_deliveries(click)
        else:
            conv, _ = convert(click, **conversion)
        assert sweep(delivery_app) == 1
        assert [d.status for d in Delivery.select()] == ["delivered"]
        requests = received(receiver)
        assert len(requests) == 1
        return requests[0], click, conv

    return run


def offer(click):
    return "https://offer.example/lp?cid=" + click.click_id


def test_lendingtree_session_get(send):
    request, click, _ = send(SESSION_GET, "click")
    assert (request.method, request.path) == ("GET", "/session")
    assert request.args.to_dict(flat=False) == {
        "sessionid": [click.click_id],
        "campaign": [str(click.flow_id)],
        "clickid": ["ts-7781"],
        "utm_source": ["facebook"],
    }


def test_lendingtree_session_post(send):
    request, click, _ = send("https://example.com/session|JSON|" + SESSION_POST, "click")
    assert (request.method, request.path, request.content_type) == ("POST", "/session", "application/json")
    assert request.get_json() == {
        "event_type": "session",
        "session_id": click.click_id,
        "campaign_id": str(click.flow_id),
        "utm_source": "facebook",
        "timestamp": str(NOW_UNIX),
        "ip_address": "198.51.100.23",
        "user_agent": UA,
    }


def test_lendingtree_conversion_get(send):
    request, click, _ = send(CONVERSION_GET, "conversion")
    assert (request.method, request.path) == ("GET", "/conversion")
    assert request.args.to_dict(flat=False) == {
        "sessionid": [click.click_id],
        "email": ["  John_Smith@gmail.com "],
        "phone": ["+1 (650) 555-1212"],
        "campaign": [str(click.flow_id)],
        "utm_source": ["facebook"],
    }


def test_lendingtree_conversion_post(send):
    request, click, _ = send("https://example.com/conversion|JSON|" + CONVERSION_POST, "conversion")
    assert (request.method, request.content_type) == ("POST", "application/json")
    assert request.get_json() == {
        "event_type": "conversion",
        "session_id": click.click_id,
        "user_data": {
            "email": "  John_Smith@gmail.com ",
            "phone": "+1 (650) 555-1212",
            "first_name": "Mary",
            "last_name": "O'Brien",
        },
        "campaign_id": str(click.flow_id),
        "utm_source": "facebook",
        "timestamp": str(NOW_UNIX),
    }


def test_lendingtree_revenue_get(send):
    request, click, _ = send(REVENUE_GET, "payout")
    assert (request.method, request.path) == ("GET", "/revenue")
    assert request.args.to_dict(flat=False) == {
        "sessionid": [click.click_id],
        "revenue": ["49.99"],
        "advertiser": ["Acme & Sons"],
        "campaign": [str(click.flow_id)],
        "external_id": ["TX-1001"],
    }


def test_lendingtree_revenue_post(send):
    request, click, _ = send("https://example.com/revenue|JSON|" + REVENUE_POST, "payout")
    assert request.get_json() == {
        "event_type": "payout",
        "session_id": click.click_id,
        "revenue_data": {"amount": "49.99", "advertiser": "Acme & Sons", "external_id": "TX-1001"},
        "user_data": {"email": "  John_Smith@gmail.com ", "phone": "+1 (650) 555-1212"},
        "campaign_id": str(click.flow_id),
        "timestamp": str(NOW_UNIX),
    }


def facebook_user_data(click):
    return {
        "em": "  John_Smith@gmail.com ",
        "ph": "+1 (650) 555-1212",
        "fn": "Mary",
        "ln": 'O\'Brien "Jr"',
        "ge": "f",
        "db": "1990-01-31",
        "ct": "Mountain View",
        "st": "CA",
        "zp": "94043",
        "country": "US",
        "external_id": "ts-7781",
        "client_ip_address": "198.51.100.23",
        "client_user_agent": UA,
    }


@pytest.mark.parametrize(
    "payload,trigger,event_id,custom",
    [
        (FACEBOOK_CONVERSION, "conversion", "click", None),
        (FACEBOOK_REVENUE, "payout", "txid", {"currency": "USD", "value": "49.99"}),
    ],
)
def test_facebook_conversion_api(send, payload, trigger, event_id, custom):
    request, click, _ = send(fill_placeholders(FACEBOOK_URL) + "|JSON|" + payload, trigger)
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/v18.0/1234567890/events",
        "application/json",
    )
    assert request.args.to_dict(flat=False) == {"access_token": ["EAAGm0PX4ZCps"]}
    event = {
        "event_name": "Lead",
        "event_time": str(NOW_UNIX),
        "event_id": click.click_id if event_id == "click" else "TX-1001",
        "event_source_url": offer(click),
        "action_source": "website",
        "user_data": dict(
            facebook_user_data(click), fbc="fb.1.1714560000.IwAR2abc", fbp="fb.1.1714560000.987654321"
        ),
        "opt_out": False,
    }
    if custom:
        event["custom_data"] = custom
    assert request.get_json() == {"data": [event]}


@pytest.mark.parametrize(
    "payload,trigger,revenue",
    [
        (SNAPCHAT_CONVERSION, "conversion", False),
        (SNAPCHAT_REVENUE, "payout", True),
    ],
)
def test_snapchat_conversion_api(send, payload, trigger, revenue):
    request, click, _ = send(fill_placeholders(SNAPCHAT_URL) + "|JSON|" + payload, trigger)
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/v3/1234567890/events",
        "application/json",
    )
    assert request.args.to_dict(flat=False) == {"access_token": ["EAAGm0PX4ZCps"]}
    event = {
        "event_name": "PURCHASE" if revenue else "SIGN_UP",
        "event_time": str(NOW_UNIX),
        "event_id": "TX-1001" if revenue else click.click_id,
        "event_source_url": offer(click),
        "action_source": "website",
        "user_data": dict(facebook_user_data(click), sc_click_id="sc-5150"),
    }
    if revenue:
        event["custom_data"] = {
            "currency": "USD",
            "value": "49.99",
            "referrer_url": "https://news.example/story?id=7&x=y",
        }
    assert request.get_json() == {"data": [event]}


@pytest.mark.parametrize(
    "payload,trigger,revenue",
    [
        (TIKTOK_CONVERSION, "conversion", False),
        (TIKTOK_REVENUE, "payout", True),
    ],
)
def test_tiktok_events_api(send, payload, trigger, revenue):
    request, click, _ = send(TIKTOK_URL + "|JSON|" + payload, trigger)
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/open_api/v1.3/pixel/track/",
        "application/json",
    )
    body = {
        "pixel_code": "C4PIXEL77",
        "event": "CompletePayment" if revenue else "SubmitForm",
        "event_id": "TX-1001" if revenue else click.click_id,
        "timestamp": str(NOW_UNIX),
        "context": {
            "ad": {"callback": "E.C.P.tt123"},
            "page": {"url": offer(click), "referrer": "https://news.example/story?id=7&x=y"},
            "user": {
                "external_id": "ts-7781",
                "phone_number": "+1 (650) 555-1212",
                "email": "  John_Smith@gmail.com ",
                "ttp": "ttp-456",
            },
            "user_agent": UA,
            "ip": "198.51.100.23",
        },
    }
    if revenue:
        body["properties"] = {"currency": "USD", "value": "49.99"}
    assert request.get_json() == body


def test_session_ad_pixel(send):
    request, click, _ = send("https://example.com/ad-pixel|JSON|" + SESSION_AD_PIXEL, "conversion")
    assert (request.method, request.path) == ("POST", "/ad-pixel")
    assert request.get_json() == {
        "adresponse": "",
        "campaign": str(click.flow_id),
        "emailaddress": "mary@example.com",
        "first_name": "",
        "last_name": "",
        "sessionid": click.click_id,
    }


def test_altercpa_facebook_server_pixel_form_holding_json(send):
    request, click, _ = send(ALTERCPA_FACEBOOK, "conversion")
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/v18.0/PIXEL/events",
        "application/x-www-form-urlencoded",
    )
    assert sorted(request.form) == ["access_token", "data"]
    assert request.form["access_token"] == "TOKEN"
    assert json.loads(request.form["data"]) == [
        {
            "action_source": "website",
            "event_name": "Lead",
            "event_time": NOW_UNIX,
            "user_data": {
                "external_id": click.click_id,
                "client_ip_address": "198.51.100.23",
                "client_user_agent": UA,
                "fbc": "fb.1.%d.ad-991" % NOW_UNIX,
                "fbp": "fb.1.%d.%s" % (NOW_UNIX, click.click_id),
            },
        }
    ]


def test_altercpa_post_split(send):
    request, click, _ = send(ALTERCPA_POST, "conversion")
    assert (request.method, request.path, request.content_type) == (
        "POST",
        "/postback",
        "application/x-www-form-urlencoded",
    )
    assert request.args.to_dict(flat=False) == {"code": ["abc"]}
    assert request.form.to_dict(flat=False) == {"click": [click.click_id], "name": ["Jane Doe & Co"]}


def test_altercpa_json_split(send):
    request, click, _ = send(ALTERCPA_JSON, "conversion")
    assert (request.method, request.path, request.content_type) == ("POST", "/postback", "application/json")
    assert request.args.to_dict() == {}
    assert request.get_json() == {"foo": "bar", "click": click.click_id}


def test_momentscience_simple(send):
    request, click, _ = send(MOMENTSCIENCE_SIMPLE, "conversion")
    assert (request.method, request.path) == ("GET", "/postback")
    assert request.args.to_dict(flat=False) == {"click_id": [click.click_id]}


def test_momentscience_advanced(send):
    request, click, _ = send(MOMENTSCIENCE_ADVANCED, "conversion", event="purchase", payout="49.99")
    assert request.args.to_dict(flat=False) == {
        "measurement": ["1"],
        "click_id": [click.click_id],
        "event": ["purchase"],
        "payout": ["49.99"],
    }


def test_clickflare_token_table_on_the_traffic_source_postback(send):
    query = "&".join("%s={%s}" % (name, name) for name in CLICKFLARE_TOKENS)
    request, click, conversion = send("https://ts.example/pb?" + query, "source")
    assert (request.method, request.path) == ("GET", "/pb")
    expected = {
        "country": "US",
        "countryname": "United States",
        "region": "CA",
        "city": "Mountain View",
        "os": "iOS",
        "osversion": "17.5",
        "browser": "Mobile Safari",
        "browserversion": "17.5",
        "device": "mobile",
        "brand": "Apple",
        "model": "iPhone",
        "language": "en-US",
        "transaction.id": "TX-1001",
        "click.id": click.click_id,
        "payout": "49.99",
        "conversion.cost": "0.35",
        "campaign.cpa": "0.35",
        "externalid": "ts-7781",
        "var1": "zone 42",
        "var2": "creative#9",
        "var3": "",
        "var:variablename": "v=1&w",
        "referrerdomain": "news.example",
        "ip": "198.51.100.23",
        "isp": "Comcast Cable",
        "carrier": "T-Mobile",
        "connection.type": "Cellular",
        "campaign.id": str(click.flow_id),
        "lander.id": "",
        "trafficsource.id": str(conversion.flow.traffic_source_id),
        "offer.id": str(click.flow_id),
    }
    assert request.args.to_dict(flat=False) == {name: [value] for name, value in expected.items()}


# --- The platforms' own hosts: what graph.facebook.com, tr.snapchat.com and -------------------
# business-api.tiktok.com get from the seeds' payloads pasted verbatim (the preview API shows
# the exact request; the loopback tests above see the same templates unhashed, since only those
# hosts are the platforms).


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def platform_preview(api, template, click_id, data=LEAD):
    status, request = api.post(
        "/api/v1/postbacks/preview",
        json={
            "url": template,
            "click_id": click_id,
            "conversion": {"event": "lead", "payout": "49.99", "txid": "TX-1001", "data": data},
        },
    )
    assert status == 200, request
    return request


HASHED_LEAD = {
    "em": sha("john_smith@gmail.com"),
    "ph": sha("16505551212"),
    "fn": sha("mary"),
    "ln": sha("obrien jr"),
    "ge": sha("f"),
    "db": sha("19900131"),
    "ct": sha("mountainview"),
    "st": sha("ca"),
    "zp": sha("94043"),
    "country": sha("us"),
}


@pytest.mark.parametrize(
    "url,payload",
    [
        (FACEBOOK_URL, FACEBOOK_CONVERSION),
        (FACEBOOK_URL, FACEBOOK_REVENUE),
        (SNAPCHAT_URL, SNAPCHAT_CONVERSION),
        (SNAPCHAT_URL, SNAPCHAT_REVENUE),
    ],
)
def test_meta_and_snapchat_seeds_pasted_verbatim_send_no_raw_pii(api, make_flow, url, payload):
    """Issue 9, point 2: the seed's JSON sent "em": "Jane.Doe@Example.com" as it was."""
    click = make_click(make_flow()["id"])
    request = platform_preview(api, fill_placeholders(url) + "|JSON|" + payload, click.click_id)
    [event] = json.loads(request["body"])["data"]
    expected = dict(HASHED_LEAD, external_id=sha("ts-7781"), client_ip_address="198.51.100.23")
    expected["client_user_agent"] = UA
    if "facebook" in url:
        expected.update(fbc="fb.1.1714560000.IwAR2abc", fbp="fb.1.1714560000.987654321")
    else:
        expected["sc_click_id"] = "sc-5150"
    assert event["user_data"] == expected
    for raw in ("John_Smith", "650", "Mary", "Mountain View", "1990-01-31"):
        assert raw not in request["body"]


@pytest.mark.parametrize("payload", [TIKTOK_CONVERSION, TIKTOK_REVENUE])
def test_tiktok_seeds_pasted_verbatim_send_no_raw_pii(api, make_flow, payload):
    click = make_click(make_flow()["id"])
    request = platform_preview(api, TIKTOK_URL + "|JSON|" + payload, click.click_id)
    assert json.loads(request["body"])["context"]["user"] == {
        "external_id": sha("ts-7781"),
        "phone_number": sha("+16505551212"),
        "email": sha("john_smith@gmail.com"),
        "ttp": "ttp-456",
    }


def test_the_altercpa_pixel_pasted_verbatim_sends_its_external_id_hashed(api, make_flow):
    click = make_click(make_flow()["id"])
    request = platform_preview(api, ALTERCPA_FACEBOOK, click.click_id)
    assert request["body"].startswith('access_token=TOKEN&data=[{"action_source":"website"')
    form = dict(parse_qsl(request["body"]))
    [event] = json.loads(form["data"])
    now = event["event_time"]  # a preview is rendered at the current time
    assert event["user_data"] == {
        "external_id": sha(click.click_id),
        "client_ip_address": "198.51.100.23",
        "client_user_agent": UA,
        "fbc": "fb.1.%d.ad-991" % now,
        "fbp": "fb.1.%d.%s" % (now, click.click_id),
    }


def test_empty_user_fields_are_left_out_not_sent_empty(api, make_flow):
    """Issue 9, point 12: missing user fields were sent as ""."""
    click = make_click(make_flow()["id"], external_id="", city="", region="", zip="")
    request = platform_preview(
        api,
        fill_placeholders(FACEBOOK_URL) + "|JSON|" + FACEBOOK_CONVERSION,
        click.click_id,
        {"email": "a@b.co"},
    )
    user = json.loads(request["body"])["data"][0]["user_data"]
    assert user == {
        "em": sha("a@b.co"),
        "country": sha("us"),
        "client_ip_address": "198.51.100.23",
        "client_user_agent": UA,
        "fbc": "fb.1.1714560000.IwAR2abc",
        "fbp": "fb.1.1714560000.987654321",
    }
    assert '""' not in request["body"]


def test_the_leads_own_address_wins_over_geoip_in_metas_normalization(api, make_flow):
    """Issue 9, point 11: city, state, zip and country came from GeoIP, and "California" was
    hashed as such instead of Meta's "ca"."""
    template = fill_placeholders(FACEBOOK_URL) + "|JSON|" + FACEBOOK_CONVERSION
    geo_only = make_click(make_flow()["id"], region="California", city="Mountain View")
    user = json.loads(platform_preview(api, template, geo_only.click_id)["body"])["data"][0]["user_data"]
    assert (user["st"], user["ct"]) == (sha("ca"), sha("mountainview"))
    lead = dict(LEAD, city="San Francisco", state="New York", zip="10001-1234", country="Canada")
    lead["phone"] = "(416) 555-0199"  # no country code: completed from the lead's country
    user = json.loads(platform_preview(api, template, geo_only.click_id, lead)["body"])["data"][0][
        "user_data"
    ]
    assert (user["ct"], user["st"], user["zp"], user["country"], user["ph"]) == (
        sha("sanfrancisco"),
        sha("ny"),
        sha("10001"),
        sha("ca"),
        sha("14165550199"),
    )


def test_platform_click_ids_come_from_the_url_on_redirect_traffic(api, client, make_flow):
    """Issue 9, point 7: fbclid and ttclid in the URL were lost without the cookies."""
    flow = make_flow(offer_url="https://offer.example/lp?cid={clickid}")
    response = client.get("/r/%s?fbclid=IwAR1fb&ttclid=E.C.P.tt9&ScCid=sc-77" % flow["key"])
    click = Click.get_by_id(parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0])
    ms = int(click.created_at.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    assert click.cookies == {"_fbc": "fb.1.%d.IwAR1fb" % ms, "ttclid": "E.C.P.tt9", "ScCid": "sc-77"}
    facebook = platform_preview(
        api, fill_placeholders(FACEBOOK_URL) + "|JSON|" + FACEBOOK_CONVERSION, click.click_id
    )
    assert json.loads(facebook["body"])["data"][0]["user_data"]["fbc"] == "fb.1.%d.IwAR1fb" % ms
    tiktok = platform_preview(api, TIKTOK_URL + "|JSON|" + TIKTOK_CONVERSION, click.click_id)
    assert json.loads(tiktok["body"])["context"]["ad"] == {"callback": "E.C.P.tt9"}
    snapchat = platform_preview(
        api, fill_placeholders(SNAPCHAT_URL) + "|JSON|" + SNAPCHAT_CONVERSION, click.click_id
    )
    assert json.loads(snapchat["body"])["data"][0]["user_data"]["sc_click_id"] == "sc-77"


def test_a_real_fbc_cookie_wins_over_the_fbclid(client, make_flow):
    flow = make_flow()
    client.set_cookie("_fbc", "fb.1.1700000000000.FromCookie")
    client.get("/r/%s?fbclid=IwAR1fb" % flow["key"])
    assert Click.get().cookies == {"_fbc": "fb.1.1700000000000.FromCookie"}


def test_phone_filters_complete_a_number_from_the_clicks_country(delivery_app, receiver, make_flow):
    catch_all(receiver)
    url = at_receiver(
        receiver, "https://pb.example/p?d={phone|digits}&e={phone|e164}&h={phone|digits|sha256}"
    )
    flow = make_flow(postbacks=[{"trigger": "conversion", "url": url}])
    convert(make_click(flow["id"], country="GB"), data={"phone": "07911 123456"})
    sweep(delivery_app)
    [request] = received(receiver)
    assert request.args.to_dict() == {"d": "447911123456", "e": "+447911123456", "h": sha("447911123456")}
