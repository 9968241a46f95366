"""The ad platforms' user-data rules (tracker/postbacks/platforms.py): normalization, hashing
and payload protection, as plain function calls.

Meta's Business SDK (facebook_business) is the oracle where its ``Normalize`` and Meta's
documentation agree; where they disagree the documentation wins and the test says so.
"""

import hashlib
import json
import re
from urllib.parse import parse_qsl, quote_plus

import pytest

from tracker.postbacks import platforms
from tracker.postbacks.platforms import (
    PLATFORM_HOSTS,
    TEMPLATE_FILTERS,
    hash_value,
    normalize,
    phone_digits,
    phone_e164,
    platform_of,
    protect_body,
    protect_json,
)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Seed 002 (AlterCPA's Facebook server pixel), verbatim.
ALTERCPA_SEED = (
    'https://graph.facebook.com/v18.0/PIXEL/events|POST|access_token=TOKEN&data=[{"action_source":'
    '"website","event_name":"Lead","event_time":{now},"user_data":{"external_id":"{id}",'
    '"client_ip_address":"{ip}","client_user_agent":"{ua}","fbc":"fb.1.{now}.{adid}",'
    '"fbp":"fb.1.{now}.{id}"}}]'
)
# A Meta payload as seed 000's Facebook template renders it for a lead.
FACEBOOK_JSON_SEED = (
    '{"data":[{"event_name":"Lead","event_time":1714564800,"action_source":"website",'
    '"user_data":{"em":"Jane.Doe@Example.com","ph":"+1 (650) 555-1212","client_ip_address":"203.0.113.7",'
    '"client_user_agent":"Mozilla/5.0","fbc":"fb.1.1714564800000.IwAR0abc"}}]}'
)
FACEBOOK_URL = "https://graph.facebook.com/v19.0/PIXEL_ID/events"

CLICK_ID = "0lvn2p8q0a1b2c3d4e5f6g7h8"
CLICK = {
    "{now}": "1714564800",
    "{id}": CLICK_ID,
    "{ip}": "203.0.113.7",
    "{ua}": "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
    "{adid}": "IwAR0abc",
}


def split_seed(seed):
    url, method, body = seed.split("|", 2)
    return url, method, body


def render(template, values, encode=None):
    for placeholder, value in values.items():
        template = template.replace(placeholder, encode(value) if encode else value)
    return template


def form_data_events(body):
    fields = dict(parse_qsl(body, keep_blank_values=True))
    return json.loads(fields["data"])


# ---------------------------------------------------------------- platform_of


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://graph.facebook.com/v19.0/123/events", "meta"),
        ("https://GRAPH.Facebook.COM/v19.0/123/events?access_token=x", "meta"),
        ("https://graph.facebook.com:443/v19.0/123/events", "meta"),
        ("graph.facebook.com/v19.0/123/events", "meta"),
        ("https://tr.snapchat.com/v3/PIXEL/events", "snapchat"),
        ("https://business-api.tiktok.com/open_api/v1.3/event/track/", "tiktok"),
        ("https://www.facebook.com/tr", None),
        ("https://graph.facebook.com.evil.example/v19.0", None),
        ("https://example.com/?u=graph.facebook.com", None),
        ("", None),
        (None, None),
    ],
)
def test_platform_of(url, expected):
    assert platform_of(url) == expected


def test_platform_hosts_constant():
    assert PLATFORM_HOSTS == {
        "graph.facebook.com": "meta",
        "tr.snapchat.com": "snapchat",
        "business-api.tiktok.com": "tiktok",
    }


# ----------------------------------------------------------------- phone_e164


@pytest.mark.parametrize(
    "value, country, expected",
    [
        ("(650)555-1212", "US", "+16505551212"),
        ("(650)555-1212", "us", "+16505551212"),
        ("650.555.1212", "US", "+16505551212"),
        ("+1 (650) 555-1212", "", "+16505551212"),
        ("+1 (650) 555-1212", "DE", "+16505551212"),
        ("16505551212", "US", "+16505551212"),
        ("1-650-555-1212", "US", "+16505551212"),
        ("16505551212", "", "+16505551212"),
        ("447911123456", "", "+447911123456"),
        ("447911123456", "US", "+447911123456"),
        ("07911 123456", "GB", "+447911123456"),
        ("07911 123456", "uk", "+447911123456"),
        ("0044 7911 123456", "", "+447911123456"),
        ("0044 7911 123456", "US", "+447911123456"),
        ("011 44 7911 123456", "US", "+447911123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+44 844 412 4653", "", "+448444124653"),
        ("+1 650 555 1212 ext. 7", "", "+16505551212"),
        (6505551212, "US", "+16505551212"),
    ],
)
def test_phone_e164(value, country, expected):
    assert phone_e164(value, country) == expected


@pytest.mark.parametrize(
    "value, country",
    [
        ("", "US"),
        (None, "US"),
        ("{phone}", "US"),
        ("call me", "US"),
        ("555-1212", "US"),
        ("06 12 34 56 78", ""),
        ("6505551212", ""),
        ("6505551212", "XX"),
        ("+0 123", ""),
        ("12", "US"),
    ],
)
def test_phone_e164_rejects_implausible_numbers(value, country):
    assert phone_e164(value, country) == ""


def test_phone_digits_is_e164_without_plus():
    assert phone_digits("(650) 555-1212", "US") == "16505551212"
    assert phone_digits("nope", "US") == ""


def test_template_filters_complete_a_number_from_the_click_country():
    assert TEMPLATE_FILTERS["digits"]("(650) 555-1212", "US") == "16505551212"
    assert TEMPLATE_FILTERS["e164"]("(650) 555-1212", "US") == "+16505551212"
    assert TEMPLATE_FILTERS["e164"]("0612345678", "fr") == "+33612345678"


# ------------------------------------------------- documented example hashes


@pytest.mark.parametrize(
    "platform, field, value, digest",
    [
        (
            "meta",
            "em",
            "John_Smith@gmail.com",
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
        ),
        ("meta", "ph", "(650)555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
        ("meta", "fn", "Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
        ("meta", "fn", "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
        ("meta", "fn", "Valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
        ("meta", "fn", "Vale\u0301ry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
        (
            "snapchat",
            "em",
            "Person@Example.com",
            "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345",
        ),
        (
            "snapchat",
            "ph",
            "+44 844 412 4653",
            "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383",
        ),
        ("snapchat", "fn", "John", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
        ("snapchat", "fn", "Raphaël", "e74bb89e718fe1e19c422a48382870399f8bf7ca8dfa008739e75b0be76627b7"),
    ],
)
def test_documented_examples(platform, field, value, digest):
    assert hash_value(platform, field, value, "US") == digest


# -------------------------------------------- Meta Business SDK as the oracle

from facebook_business.adobjects.serverside.normalize import Normalize  # noqa: E402 (a test dependency)

AGREED = [
    ("em", "Jane.Doe@Example.com"),
    ("em", "  John_Smith@gmail.com "),
    ("ph", "+1 (650) 555-1212"),
    ("ph", "+44 844 412 4653"),
    ("ph", "0044 7911 123456"),
    ("ph", "16505551212"),
    ("fn", "Mary"),
    ("fn", " JOHN "),
    ("ln", "Valéry"),
    ("ln", "정"),
    ("ct", "South San Francisco"),
    ("ct", "St. Louis"),
    ("ct", "Menlo Park"),
    ("st", "CA"),
    ("st", " ny "),
    ("st", "bayern"),
    ("zp", "94035"),
    ("zp", "94035-1234"),
    ("zp", "SW1A 1AA"),
    ("country", "US"),
    ("country", " gb "),
    ("ge", "f"),
    ("ge", "M"),
    ("db", "19970216"),
]


@pytest.mark.parametrize("field, value", AGREED)
def test_agrees_with_business_sdk(field, value):
    assert normalize("meta", field, value) == Normalize.normalize_field_skip_hashing(field, value)
    assert hash_value("meta", field, value) == Normalize.normalize_field(field, value)


@pytest.mark.parametrize(
    "field, value, ours, sdk",
    [
        ("st", "California", "ca", "california"),
        ("ct", "O'Fallon", "ofallon", "o'fallon"),
        ("fn", "Mary-Ann", "maryann", "mary-ann"),
        ("zp", "01310-100", "01310100", "01310"),
        ("ph", "(650) 555-1212", "16505551212", "6505551212"),
        ("db", "1997-02-16", "19970216", "1997-02-16"),
    ],
)
def test_documentation_wins_where_the_sdk_differs(field, value, ours, sdk):
    assert Normalize.normalize_field_skip_hashing(field, value) == sdk
    assert normalize("meta", field, value, "US") == ours


def test_sdk_rejects_what_we_drop_or_map():
    with pytest.raises(TypeError):
        Normalize.normalize_field("em", "not-an-email")
    assert normalize("meta", "em", "not-an-email") == ""
    with pytest.raises(TypeError):
        Normalize.normalize_field("country", "United States")
    assert normalize("meta", "country", "United States") == "us"


def test_sdk_and_we_keep_an_already_hashed_value():
    digest = sha("jane.doe@example.com")
    assert (
        hash_value("meta", "em", digest.upper()) == Normalize.normalize_field("em", digest.upper()) == digest
    )


# ------------------------------------------------------------ field by field


@pytest.mark.parametrize(
    "value, expected",
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("{email}", ""),
        ("jane", ""),
        ("", ""),
    ],
)
def test_email(value, expected):
    assert normalize("meta", "em", value) == expected
    assert normalize("tiktok", "email", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Mary", "mary"),
        ("  O'Brien ", "obrien"),
        ("Jean-Luc", "jeanluc"),
        ("Mary  Ann", "mary ann"),
        ("José", "josé"),
        ("ÉMILIE", "émilie"),
        ("Müller!", "müller"),
        ("Дмитрий", "дмитрий"),
        ("...", ""),
    ],
)
def test_names(value, expected):
    assert normalize("meta", "fn", value) == expected
    assert normalize("snapchat", "ln", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("South San Francisco", "southsanfrancisco"),
        ("Winston-Salem", "winstonsalem"),
        ("St. John's", "stjohns"),
        ("São Paulo", "sãopaulo"),
        ("München", "münchen"),
        ("10115", ""),
    ],
)
def test_city(value, expected):
    assert normalize("meta", "ct", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("California", "ca"),
        ("CA", "ca"),
        ("new york", "ny"),
        ("New-Hampshire", "nh"),
        ("District of Columbia", "dc"),
        ("Puerto Rico", "pr"),
        ("Ontario", "on"),
        ("Québec", "qc"),
        ("Bayern", "bayern"),
        ("Île-de-France", "îledefrance"),
    ],
)
def test_state(value, expected):
    assert normalize("meta", "st", value) == expected


@pytest.mark.parametrize(
    "value, country, expected",
    [
        ("94035", "", "94035"),
        ("94035-1234", "", "94035"),
        ("94035 1234", "", "94035"),
        ("940351234", "US", "94035"),
        ("940351234", "", "940351234"),
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("K1A 0B1", "CA", "k1a0b1"),
        ("01310-100", "BR", "01310100"),
        ("  ", "US", ""),
    ],
)
def test_zip(value, country, expected):
    assert normalize("meta", "zp", value, country) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("US", "us"),
        ("us", "us"),
        ("United States", "us"),
        ("United States of America", "us"),
        ("USA", "us"),
        ("UK", "gb"),
        ("United Kingdom", "gb"),
        ("Germany", "de"),
        ("Deutschland", "de"),
        ("France", "fr"),
        ("Nowhere Land", ""),
    ],
)
def test_country(value, expected):
    assert normalize("meta", "country", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Female", "f"),
        ("F", "f"),
        ("female", "f"),
        ("f.", "f"),
        ("MALE", "m"),
        ("m", "m"),
        ("other", ""),
        ("x", ""),
    ],
)
def test_gender(value, expected):
    assert normalize("meta", "ge", value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1997-02-16", "19970216"),
        ("19970216", "19970216"),
        ("1997/2/6", "19970206"),
        ("1997.02.16", "19970216"),
        ("2/16/1997", "19970216"),
        ("02/06/1997", "19970206"),
        ("16/02/1997", "19970216"),
        ("16.02.1997", "19970216"),
        ("06.02.1997", "19970206"),
        ("16-02-1997", "19970216"),
        ("02-16-1997", "19970216"),
        ("1997-02-16T00:00:00Z", "19970216"),
        ("1997-02/16", ""),
        ("16021997", ""),
        ("1997-02-16 08:30", "19970216"),
        ("1997-02-30", ""),
        ("16/02/97", ""),
        ("1899-12-31", ""),
        ("2999-01-01", ""),
        ("yesterday", ""),
    ],
)
def test_date_of_birth(value, expected):
    assert normalize("meta", "db", value) == expected


@pytest.mark.parametrize("field", ["fn", "ln", "ct", "st", "zp", "country", "ge", "db", "em", "ph"])
def test_unfilled_placeholders_are_dropped(field):
    assert normalize("meta", field, "{" + field + "}", "US") == ""
    assert hash_value("meta", field, " {first_name} ", "US") == ""


def test_external_id_is_trimmed_and_lowercased():
    assert normalize("meta", "external_id", "  User-ABC-42 ") == "user-abc-42"
    assert normalize("tiktok", "external_id", "ABC") == "abc"
    assert normalize("meta", "external_id", 12345) == "12345"


def test_tiktok_phone_keeps_the_plus():
    assert normalize("tiktok", "phone_number", "(213) 373-4253", "US") == "+12133734253"
    assert normalize("tiktok", "phone", "+1 213 373 4253") == "+12133734253"
    assert normalize("meta", "ph", "+1 213 373 4253") == "12133734253"


def test_unknown_platform_or_field_is_an_error():
    with pytest.raises(ValueError):
        normalize("google", "em", "a@b.co")
    with pytest.raises(ValueError):
        normalize("tiktok", "em", "a@b.co")
    with pytest.raises(ValueError):
        hash_value("meta", "email", "a" * 64)


@pytest.mark.parametrize("value", [None, True, {"a": 1}, ["x"], "   ", "{external_id}", "{req.cookie.uid}"])
def test_values_without_text_normalize_to_nothing(value):
    assert normalize("meta", "external_id", value) == ""


# ----------------------------------------------------------------- hash_value


def test_hash_value():
    assert hash_value("meta", "em", "") == ""
    assert hash_value("meta", "em", None) == ""
    assert hash_value("meta", "em", "{email}") == ""
    assert hash_value("meta", "em", " Jane.Doe@Example.com") == sha("jane.doe@example.com")
    assert hash_value("meta", "ph", "+1 (650) 555-1212") == sha("16505551212")
    assert hash_value("tiktok", "phone_number", "+1 (650) 555-1212") == sha("+16505551212")
    assert hash_value("meta", "external_id", 42) == sha("42")


def test_hash_value_keeps_an_existing_hash_lowercased():
    digest = sha("x")
    assert hash_value("meta", "ph", digest) == digest
    assert hash_value("tiktok", "email", " " + digest.upper() + " ") == digest
    md5_like = "0" * 32
    assert hash_value("meta", "external_id", md5_like) == sha(md5_like)


# --------------------------------------------------------------- protect_json


def test_protect_json_facebook_seed():
    data = json.loads(FACEBOOK_JSON_SEED)
    result = protect_json("meta", data, "US")
    user = result["data"][0]["user_data"]
    assert user["em"] == sha("jane.doe@example.com")
    assert user["ph"] == sha("16505551212")
    assert user["client_ip_address"] == "203.0.113.7"
    assert user["client_user_agent"] == "Mozilla/5.0"
    assert user["fbc"] == "fb.1.1714564800000.IwAR0abc"
    assert data == json.loads(FACEBOOK_JSON_SEED)


def test_protect_json_all_meta_fields_arrays_and_empties():
    user = {
        "em": ["Jane@Example.com", "", "not an email", "JOE@example.com"],
        "ph": ["", "{phone}"],
        "fn": "Jane",
        "ln": "",
        "ge": "Female",
        "db": "1990-05-01",
        "ct": "Menlo Park",
        "st": "California",
        "zp": "94025-1234",
        "country": "United States",
        "external_id": ["ABC", None],
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "UA",
        "fbp": "fb.1.1.1",
        "fbc": "fb.1.1.abc",
    }
    result = protect_json("meta", {"data": [{"event_name": "Lead", "user_data": user}]})["data"][0]
    protected = result["user_data"]
    assert protected == {
        "em": [sha("jane@example.com"), sha("joe@example.com")],
        "fn": sha("jane"),
        "ge": sha("f"),
        "db": sha("19900501"),
        "ct": sha("menlopark"),
        "st": sha("ca"),
        "zp": sha("94025"),
        "country": sha("us"),
        "external_id": [sha("abc")],
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "UA",
        "fbp": "fb.1.1.1",
        "fbc": "fb.1.1.abc",
    }
    assert list(protected) == [key for key in user if key in protected]
    assert result["event_name"] == "Lead"


def test_protect_json_drops_values_that_are_not_text():
    user = {"em": {"value": "jane@example.com"}, "ph": True, "external_id": 7}
    assert protect_json("meta", {"data": [{"user_data": user}]})["data"][0]["user_data"] == {
        "external_id": sha("7")
    }


def test_protect_json_uses_the_record_country_when_the_click_has_none():
    user = {"ph": "06 12 34 56 78", "country": "DE"}
    from_click = protect_json("meta", {"data": [{"user_data": user}]}, "FR")["data"][0]["user_data"]
    from_record = protect_json("meta", {"data": [{"user_data": user}]})["data"][0]["user_data"]
    assert from_click["ph"] == sha("33612345678")
    assert from_record["ph"] == sha(phone_digits("06 12 34 56 78", "DE"))
    assert phone_digits("06 12 34 56 78", "DE").startswith("49")
    hashed_country = {"ph": "06 12 34 56 78", "country": sha("de")}
    assert "ph" not in protect_json("meta", {"data": [{"user_data": hashed_country}]})["data"][0]["user_data"]


def test_protect_json_snapchat_events_and_root_user_data():
    body = {
        "user_data": {"em": "A@B.co"},
        "data": [
            {"event_name": "PURCHASE", "user_data": {"ph": "0044 844 412 4653", "sc_click_id": "CLICK"}}
        ],
    }
    result = protect_json("snapchat", body)
    assert result["user_data"] == {"em": sha("a@b.co")}
    assert result["data"][0]["user_data"] == {"ph": sha("448444124653"), "sc_click_id": "CLICK"}


def test_protect_json_data_may_be_a_single_event():
    result = protect_json("meta", {"data": {"user_data": {"em": "A@B.co"}}})
    assert result["data"]["user_data"]["em"] == sha("a@b.co")


def test_protect_json_tiktok_legacy_and_batch():
    body = {
        "pixel_code": "PIX",
        "event": "CompletePayment",
        "context": {
            "ad": {"callback": "E.C.P.abc"},
            "user": {
                "email": " Jane@Example.com",
                "phone_number": "(213) 373-4253",
                "external_id": "",
                "ttp": "t",
            },
            "ip": "203.0.113.7",
            "user_agent": "UA",
        },
    }
    result = protect_json("tiktok", body, "US")
    assert result["context"]["user"] == {
        "email": sha("jane@example.com"),
        "phone_number": sha("+12133734253"),
        "ttp": "t",
    }
    assert result["context"]["ad"] == {"callback": "E.C.P.abc"}
    batch = protect_json("tiktok", {"batch": [body]}, "US")["batch"][0]
    assert batch["context"]["user"] == result["context"]["user"]


def test_protect_json_tiktok_events_api_2():
    body = {
        "event_source": "web",
        "event_source_id": "PIX",
        "data": [
            {
                "event": "SubmitForm",
                "user": {
                    "email": ["Jane@Example.com"],
                    "phone": "+1 213 373 4253",
                    "external_id": "ID-1",
                    "ttclid": "E.C.P.xyz",
                    "ip": "203.0.113.7",
                    "user_agent": "UA",
                },
            }
        ],
    }
    user = protect_json("tiktok", body)["data"][0]["user"]
    assert user == {
        "email": [sha("jane@example.com")],
        "phone": sha("+12133734253"),
        "external_id": sha("id-1"),
        "ttclid": "E.C.P.xyz",
        "ip": "203.0.113.7",
        "user_agent": "UA",
    }


def test_protect_json_leaves_other_platforms_fields_alone():
    body = {"data": [{"user_data": {"email": "jane@example.com"}, "user": {"em": "x@y.co"}}]}
    assert protect_json("meta", body) == {
        "data": [{"user_data": {"email": "jane@example.com"}, "user": {"em": "x@y.co"}}]
    }


def test_protect_json_unknown_platform():
    with pytest.raises(ValueError):
        protect_json("google", {})


# --------------------------------------------------------------- protect_body


def test_protect_body_json_seed_exact_output():
    expected = (
        '{"data":[{"event_name":"Lead","event_time":1714564800,"action_source":"website",'
        '"user_data":{"em":"' + sha("jane.doe@example.com") + '","ph":"' + sha("16505551212") + '",'
        '"client_ip_address":"203.0.113.7","client_user_agent":"Mozilla/5.0","fbc":"fb.1.1714564800000.IwAR0abc"}}]}'
    )
    assert protect_body(FACEBOOK_URL, "json", FACEBOOK_JSON_SEED, "US") == expected
    assert protect_body(FACEBOOK_URL, "json", FACEBOOK_JSON_SEED, "") == expected


def test_protect_body_json_keeps_non_ascii_and_is_compact():
    body = json.dumps(
        {"data": [{"user_data": {"em": "a@b.co", "client_user_agent": "Ünïcode UA"}}]}, indent=2
    )
    out = protect_body(FACEBOOK_URL, "json", body)
    assert out == '{"data":[{"user_data":{"em":"' + sha("a@b.co") + '","client_user_agent":"Ünïcode UA"}}]}'


def test_protect_body_json_without_user_data_is_unchanged():
    body = '{"data": [ {"event_name": "Lead", "user_data": {"client_ip_address": "1.2.3.4"}} ]}'
    assert protect_body(FACEBOOK_URL, "json", body) == body


@pytest.mark.parametrize("body", ["", "not json", '{"data": [', "[1, 2]", '"text"'])
def test_protect_body_unparseable_json_is_unchanged(body):
    assert protect_body(FACEBOOK_URL, "json", body) == body


def test_protect_body_other_hosts_are_unchanged():
    assert protect_body("https://example.com/postback", "json", FACEBOOK_JSON_SEED) == FACEBOOK_JSON_SEED
    form = "data=" + quote_plus(json.dumps([{"user_data": {"em": "a@b.co"}}]))
    assert protect_body("https://www.facebook.com/tr", "form", form) == form


def test_protect_body_unknown_method_kind_is_unchanged():
    assert protect_body(FACEBOOK_URL, "xml", FACEBOOK_JSON_SEED) == FACEBOOK_JSON_SEED


def test_protect_body_tiktok_json():
    body = json.dumps({"event_source": "web", "data": [{"user": {"phone": "213-373-4253", "ip": "1.2.3.4"}}]})
    out = json.loads(
        protect_body("https://business-api.tiktok.com/open_api/v1.3/event/track/", "json", body, "us")
    )
    assert out["data"][0]["user"] == {"phone": sha("+12133734253"), "ip": "1.2.3.4"}


def test_protect_body_altercpa_seed_rendered_raw():
    url, method, template = split_seed(ALTERCPA_SEED)
    assert (platform_of(url), method) == ("meta", "POST")
    body = render(template, CLICK)
    out = protect_body(url, "form", body, "US")
    assert out.startswith('access_token=TOKEN&data=[{"action_source":"website","event_name":"Lead",')
    assert form_data_events(out)[0]["user_data"] == {
        "external_id": sha(CLICK_ID),
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
        "fbc": "fb.1.1714564800.IwAR0abc",
        "fbp": "fb.1.1714564800." + CLICK_ID,
    }


def test_protect_body_altercpa_seed_rendered_percent_encoded():
    url, _, template = split_seed(ALTERCPA_SEED)
    prefix, data = template.split("&data=")
    body = prefix + "&data=" + quote_plus(render(data, CLICK))
    out = protect_body(url, "form", body, "")
    assert out.startswith("access_token=TOKEN&data=%5B%7B%22action_source%22%3A%22website%22")
    user = form_data_events(out)[0]["user_data"]
    assert user["external_id"] == sha(CLICK_ID)
    assert user["client_user_agent"] == CLICK["{ua}"]


def test_protect_body_altercpa_seed_with_an_empty_user_field_drops_it():
    url, _, template = split_seed(ALTERCPA_SEED)
    body = render(template, {**CLICK, "{id}": ""})
    user = form_data_events(protect_body(url, "form", body, "US"))[0]["user_data"]
    assert "external_id" not in user
    assert user["client_ip_address"] == "203.0.113.7"


def test_protect_body_altercpa_seed_verbatim_is_not_json_and_stays_unchanged():
    url, _, template = split_seed(ALTERCPA_SEED)
    assert protect_body(url, "form", template) == template


def test_protect_body_altercpa_seed_with_unfilled_placeholders_sends_no_placeholder_pii():
    url, _, template = split_seed(ALTERCPA_SEED)
    body = template.replace("{now}", "1714564800")
    user = form_data_events(protect_body(url, "form", body))[0]["user_data"]
    assert user == {
        "client_ip_address": "{ip}",
        "client_user_agent": "{ua}",
        "fbc": "fb.1.1714564800.{adid}",
        "fbp": "fb.1.1714564800.{id}",
    }


def test_protect_body_form_keeps_other_fields_and_their_order_exactly():
    data = quote_plus(json.dumps([{"user_data": {"em": "a@b.co"}}]))
    body = "a=1&access_token=T%2Bk+n&&data=" + data + "&test_event_code=TEST%20123&flag"
    out = protect_body(FACEBOOK_URL, "form", body)
    pieces = out.split("&")
    assert pieces[:3] == ["a=1", "access_token=T%2Bk+n", ""]
    assert pieces[4:] == ["test_event_code=TEST%20123", "flag"]
    assert json.loads(dict(parse_qsl(out))["data"]) == [{"user_data": {"em": sha("a@b.co")}}]


def test_protect_body_form_raw_json_escapes_what_would_change_its_meaning():
    body = 'data=[{"user_data":{"em":"a@b.co","client_user_agent":"A%26B 100%"}}]'
    out = protect_body(FACEBOOK_URL, "form", body)
    assert out == 'data=[{"user_data":{"em":"' + sha("a@b.co") + '","client_user_agent":"A%26B%20100%25"}}]'
    assert json.loads(dict(parse_qsl(out))["data"])[0]["user_data"]["client_user_agent"] == "A&B 100%"


@pytest.mark.parametrize(
    "body",
    [
        'access_token=T&data=[{"user_data":{"em":"a@b.co","client_user_agent":"A&B"}}]',
        "access_token=T&data=not-json",
        "access_token=T&data=42",
        "access_token=T&data=",
        "access_token=T",
        'access_token=T&data=[{"user_data":{"client_ip_address":"1.2.3.4"}}]',
    ],
)
def test_protect_body_form_without_user_data_is_unchanged(body):
    assert protect_body(FACEBOOK_URL, "form", body) == body


def test_protect_body_form_data_object_for_snapchat():
    body = "data=" + quote_plus(json.dumps({"user_data": {"em": "A@B.co"}}))
    out = protect_body("https://tr.snapchat.com/v3/PIX/events", "form", body)
    assert json.loads(dict(parse_qsl(out))["data"]) == {"user_data": {"em": sha("a@b.co")}}


def test_module_imports_nothing_from_tracker():
    source = open(platforms.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(from|import)\s+(tracker|\.)", source, re.MULTILINE)
