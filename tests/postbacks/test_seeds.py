"""Every postback example of the seeds, rendered, sent by the worker to a real receiver on
loopback, and checked value by value: method, content type, path, query, form or JSON body.

The templates are the seeds' text verbatim; only the scheme and host point at the receiver,
and where a seed says "set your data instead of texts" (API version, pixel id, token) the
test sets them as a user would.
"""

import json

import pytest

from tracker.models import Delivery

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
