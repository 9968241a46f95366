"""Postback presets for the editor: the seeds' ad-platform, LendingTree, MomentScience,
ClickFlare and generic templates, built from a few inputs (pixel id, access token, ...).

The ad platforms' payloads are the seeds' own, with raw user-data tokens: the renderer
normalizes and hashes them by each platform's rules for graph.facebook.com, tr.snapchat.com
and business-api.tiktok.com (``platforms.protect_body``), and leaves out the empty ones. Each
platform preset also sets what the platform needs beyond the URL: TikTok's ``Access-Token``
header, the ``success_body`` its 200 must carry (TikTok and Snapchat answer 200 with an
error in the body), and the optional ``test_event_code`` that "send test" adds. Revenue
presets fire on ``status`` ``approved`` with a positive payout only (DESIGN §4.4), so a
pending lead or a chargeback is never reported as revenue.
"""

import json
import re
from dataclasses import dataclass

from ..errors import NotFound, ValidationError

SAFE_VALUE = re.compile(r"[A-Za-z0-9._~-]{1,500}")
BARE = re.compile(r'"@bare:([^"@]+)@"')
# What each platform answers when it took the events (a 200 without it is a failure).
META_SUCCESS = r'"events_received"\s*:\s*[1-9]'
SNAPCHAT_SUCCESS = r'"status"\s*:\s*"(VALID|SUCCESS)"'
TIKTOK_SUCCESS = r'"code"\s*:\s*0\s*[,}]'
REVENUE = {"trigger": "status", "statuses": ["approved"], "payout_type": "payout"}


def bare(token):
    """A token that stands outside quotes in a JSON payload (numbers stay numbers)."""
    return "@bare:%s@" % token


def json_payload(structure):
    """A compact JSON template from a structure whose strings hold tokens."""
    return BARE.sub(r"\1", json.dumps(structure, separators=(",", ":")))


def _meta_user_data():
    return {
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
    }


def facebook(fields, revenue):
    """Meta Conversions API: a Lead, with the revenue in custom_data for the revenue variant."""
    event = {
        "event_name": "Lead",
        "event_time": bare("{event_time}"),
        "event_id": "{externalidentifier}" if revenue else "{sessionid}",
        "event_source_url": "{locationurl}",
        "action_source": "website",
        "user_data": dict(_meta_user_data(), fbc="{req.cookie._fbc}", fbp="{req.cookie._fbp}"),
    }
    if revenue:
        event["custom_data"] = {"currency": "{currency}", "value": bare("{publisherrevenue}")}
    event["opt_out"] = False
    url = "https://graph.facebook.com/%s/%s/events?access_token=%s" % (
        fields["api_version"],
        fields["pixel_id"],
        fields["access_token"],
    )
    return {
        "url": url + "|JSON|" + json_payload({"data": [event]}),
        "success_body": META_SUCCESS,
        **_test_code(fields),
    }


def snapchat(fields, revenue):
    """Snapchat Conversions API v3: SIGN_UP, or PURCHASE with its value."""
    event = {
        "event_name": "PURCHASE" if revenue else "SIGN_UP",
        "event_time": bare("{event_time}"),
        "event_id": "{externalidentifier}" if revenue else "{sessionid}",
        "event_source_url": "{locationurl}",
        "action_source": "website",
        "user_data": dict(_meta_user_data(), sc_click_id="{req.qs.ScCid}"),
    }
    if revenue:
        event["custom_data"] = {
            "currency": "{currency}",
            "value": bare("{publisherrevenue}"),
            "referrer_url": "{refererUrl}",
        }
    url = "https://tr.snapchat.com/v3/%s/events?access_token=%s" % (
        fields["pixel_id"],
        fields["access_token"],
    )
    return {"url": url + "|JSON|" + json_payload({"data": [event]}), "success_body": SNAPCHAT_SUCCESS}


def tiktok(fields, revenue):
    """TikTok Events API (``pixel/track``): SubmitForm, or CompletePayment with its value; the
    access token goes in the ``Access-Token`` header, as TikTok requires."""
    payload = {
        "pixel_code": fields["pixel_code"],
        "event": "CompletePayment" if revenue else "SubmitForm",
        "event_id": "{externalidentifier}" if revenue else "{sessionid}",
        "timestamp": "{event_time_iso}",
        "context": {
            "ad": {"callback": "{req.cookie.ttclid}"},
            "page": {"url": "{locationurl}", "referrer": "{refererUrl}"},
            "user": {
                "external_id": "{external_id}",
                "phone_number": "{phone}",
                "email": "{email}",
                "ttp": "{req.cookie._ttp}",
            },
            "user_agent": "{useragent}",
            "ip": "{ipaddress}",
        },
    }
    if revenue:
        payload["properties"] = {"currency": "{currency}", "value": bare("{publisherrevenue}")}
    return {
        "url": "https://business-api.tiktok.com/open_api/v1.3/pixel/track/|JSON|" + json_payload(payload),
        "headers": {"Access-Token": fields["access_token"]},
        "success_body": TIKTOK_SUCCESS,
        **_test_code(fields),
    }


def _test_code(fields):
    return {"test_event_code": fields["test_event_code"]} if fields.get("test_event_code") else {}


LENDINGTREE_GET = {
    "session": "?sessionid={sessionid}&campaign={campaignid}&clickid={req.qs.clickid}"
    "&utm_source={req.qs.utm_source}",
    "conversion": "?sessionid={sessionid}&email={email}&phone={phone}&campaign={campaignid}"
    "&utm_source={req.qs.utm_source}",
    "payout": "?sessionid={sessionid}&revenue={publisherrevenue}&advertiser={advertisername}"
    "&campaign={campaignid}&external_id={externalidentifier}",
}

LENDINGTREE_POST = {
    "session": {
        "event_type": "session",
        "session_id": "{sessionid}",
        "campaign_id": "{campaignid}",
        "utm_source": "{req.qs.utm_source}",
        "timestamp": "{timestamp}",
        "ip_address": "{ipaddress}",
        "user_agent": "{useragent}",
    },
    "conversion": {
        "event_type": "conversion",
        "session_id": "{sessionid}",
        "user_data": {
            "email": "{email}",
            "phone": "{phone}",
            "first_name": "{req.sessionData.contact.firstName}",
            "last_name": "{req.sessionData.contact.lastName}",
        },
        "campaign_id": "{campaignid}",
        "utm_source": "{req.qs.utm_source}",
        "timestamp": "{timestamp}",
    },
    "payout": {
        "event_type": "payout",
        "session_id": "{sessionid}",
        "revenue_data": {
            "amount": "{publisherrevenue}",
            "advertiser": "{advertisername}",
            "external_id": "{externalidentifier}",
        },
        "user_data": {"email": "{email}", "phone": "{phone}"},
        "campaign_id": "{campaignid}",
        "timestamp": "{timestamp}",
    },
}


def _join_query(url, query):
    """Append ``?a=b…`` to a URL that may already have a query."""
    return url + ("&" + query[1:] if "?" in url else query)


def lendingtree(fields, kind, post):
    """LendingTree's session, conversion and payout postbacks, GET or POST (JSON)."""
    if post:
        return {"url": fields["url"] + "|JSON|" + json_payload(LENDINGTREE_POST[kind])}
    return {"url": _join_query(fields["url"], LENDINGTREE_GET[kind])}


def momentscience(fields, advanced):
    """MomentScience S2S: the click id they sent us (``click_id`` on their click) is our
    ``{externalid}``; a conversion whose click has none fails instead of being sent without
    it. They ask to be retried on any answer but 200."""
    url = "https://track.momentscience.com/postback?click_id={externalid|required}"
    if advanced:
        url = (
            "https://track.momentscience.com/postback?measurement=1&click_id={externalid|required}"
            "&event={event}&payout={payout}"
        )
    return {"url": url, "retry_4xx": True}


def traffic_source(fields):
    """A traffic source's postback in the ClickFlare style: its click id, payout and txid."""
    return {
        "url": _join_query(
            fields["url"],
            "?%s={externalid}&payout={payout}&txid={transaction.id}" % fields["click_id_param"],
        )
    }


def generic(fields, kind):
    """Plain GET, form POST or JSON POST with the conversion's main values."""
    values = {
        "click_id": "{click_id}",
        "event": "{event}",
        "payout": "{payout}",
        "status": "{status}",
        "txid": "{txid}",
    }
    if kind == "json":
        return {"url": fields["url"] + "|JSON|" + json_payload(dict(values, payout=bare("{payout}")))}
    query = "&".join("%s=%s" % item for item in values.items())
    if kind == "post":
        return {"url": fields["url"] + "|POST|" + query}
    return {"url": _join_query(fields["url"], "?" + query)}


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    trigger: str
    fields: tuple  # (name, label, default or None, required)
    make: object  # function(fields) -> {url, headers?, success_body?, retry_4xx?, test_event_code?}
    settings: tuple = ()  # more of the postback: (("statuses", [...]), ...)


URL_FIELD = ("url", "Endpoint URL", None, True)
TEST_CODE_FIELD = ("test_event_code", "Test event code (used by Send test)", None, False)
FB_FIELDS = (
    ("pixel_id", "Pixel ID", None, True),
    ("access_token", "Access token", None, True),
    ("api_version", "Graph API version", "v21.0", True),
    TEST_CODE_FIELD,
)
SNAP_FIELDS = (("pixel_id", "Pixel ID", None, True), ("access_token", "Access token", None, True))
TIKTOK_FIELDS = (
    ("pixel_code", "Pixel code", None, True),
    ("access_token", "Access token", None, True),
    TEST_CODE_FIELD,
)
REVENUE_SETTINGS = (("statuses", ["approved"]), ("payout_type", "payout"))

PRESETS = [
    Preset(
        "facebook_conversion",
        "Facebook Conversions API: lead",
        "conversion",
        FB_FIELDS,
        lambda f: facebook(f, False),
    ),
    Preset(
        "facebook_revenue",
        "Facebook Conversions API: revenue",
        "status",
        FB_FIELDS,
        lambda f: facebook(f, True),
        REVENUE_SETTINGS,
    ),
    Preset(
        "snapchat_conversion",
        "Snapchat Conversions API: sign-up",
        "conversion",
        SNAP_FIELDS,
        lambda f: snapchat(f, False),
    ),
    Preset(
        "snapchat_revenue",
        "Snapchat Conversions API: purchase",
        "status",
        SNAP_FIELDS,
        lambda f: snapchat(f, True),
        REVENUE_SETTINGS,
    ),
    Preset(
        "tiktok_conversion",
        "TikTok Events API: submit form",
        "conversion",
        TIKTOK_FIELDS,
        lambda f: tiktok(f, False),
    ),
    Preset(
        "tiktok_revenue",
        "TikTok Events API: complete payment",
        "status",
        TIKTOK_FIELDS,
        lambda f: tiktok(f, True),
        REVENUE_SETTINGS,
    ),
    Preset(
        "lendingtree_session_get",
        "Session postback (GET)",
        "click",
        (URL_FIELD,),
        lambda f: lendingtree(f, "session", False),
    ),
    Preset(
        "lendingtree_session_post",
        "Session postback (POST JSON)",
        "click",
        (URL_FIELD,),
        lambda f: lendingtree(f, "session", True),
    ),
    Preset(
        "lendingtree_conversion_get",
        "Conversion postback (GET)",
        "conversion",
        (URL_FIELD,),
        lambda f: lendingtree(f, "conversion", False),
    ),
    Preset(
        "lendingtree_conversion_post",
        "Conversion postback (POST JSON)",
        "conversion",
        (URL_FIELD,),
        lambda f: lendingtree(f, "conversion", True),
    ),
    Preset(
        "lendingtree_payout_get",
        "Payout postback (GET)",
        "payout",
        (URL_FIELD,),
        lambda f: lendingtree(f, "payout", False),
    ),
    Preset(
        "lendingtree_payout_post",
        "Payout postback (POST JSON)",
        "payout",
        (URL_FIELD,),
        lambda f: lendingtree(f, "payout", True),
    ),
    Preset(
        "momentscience_simple",
        "MomentScience: simple postback",
        "conversion",
        (),
        lambda f: momentscience(f, False),
    ),
    Preset(
        "momentscience_advanced",
        "MomentScience: events and payouts",
        "conversion",
        (),
        lambda f: momentscience(f, True),
    ),
    Preset(
        "traffic_source",
        "Traffic source postback (ClickFlare style)",
        "conversion",
        (URL_FIELD, ("click_id_param", "The source's click id parameter", "clickid", True)),
        traffic_source,
    ),
    Preset("generic_get", "Generic GET", "conversion", (URL_FIELD,), lambda f: generic(f, "get")),
    Preset("generic_post", "Generic POST (form)", "conversion", (URL_FIELD,), lambda f: generic(f, "post")),
    Preset("generic_json", "Generic POST (JSON)", "conversion", (URL_FIELD,), lambda f: generic(f, "json")),
]
BY_ID = {preset.id: preset for preset in PRESETS}


def list_presets():
    """Every preset as ``{id, name, trigger, fields: [{name, label, default, required}]}``."""
    return [
        {
            "id": p.id,
            "name": p.name,
            "trigger": p.trigger,
            "fields": [
                {"name": n, "label": label, "default": default, "required": required}
                for n, label, default, required in p.fields
            ],
        }
        for p in PRESETS
    ]


def _clean(preset, fields):
    cleaned = {}
    for name, label, default, required in preset.fields:
        value = fields.get(name)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            value = default
        if not required and value in (None, ""):
            continue
        if not isinstance(value, str) or not value:
            raise ValidationError("%s (%s) is required" % (label, name))
        if name == "url":
            if not re.match(r"https?://[^\s|]+$", value):
                raise ValidationError("url must be an http:// or https:// URL without spaces or '|'")
        elif not SAFE_VALUE.fullmatch(value):
            raise ValidationError("%s may hold only letters, digits and . _ ~ -" % name)
        cleaned[name] = value
    return cleaned


def build(preset_id, **fields):
    """The postback of preset ``preset_id`` filled with ``fields``: ``{trigger, url}`` and what
    else the preset sets (``headers, success_body, retry_4xx, test_event_code, statuses,
    payout_type``); raises ValidationError."""
    preset = BY_ID.get(preset_id)
    if preset is None:
        raise NotFound("preset %r" % preset_id)
    return {"trigger": preset.trigger, **preset.make(_clean(preset, fields)), **dict(preset.settings)}
