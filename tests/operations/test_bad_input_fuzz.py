"""No 500 for bad input, anywhere (DESIGN §4.8): Hypothesis sends hostile requests to every
route of the app's url_map with every method (ids past 64 bits, NUL and %00, huge and unicode
segments, odd query strings, form and JSON bodies of wrong types or nested far too deep,
cursors), anonymous, with the API token and with a logged-in dashboard session, and no answer
may be a 5xx; afterwards the app still answers /healthz and still records a click. The
Schemathesis run (tests/api/test_api_fuzz.py) checks the API against its description; this
one covers the routes and methods the description does not name. It runs on SQLite and, with
TRACKER_TEST_DATABASE_URL, on PostgreSQL, like the rest of the suite."""

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.models import Click, User

from conftest import API_TOKEN, examples, seed_one_of_everything

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", examples(300)))  # more by hand, to hunt
CONVERTER_RE = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[a-z_]+)>")
BIG_IDS = ["9223372036854775807", "9223372036854775808", "18446744073709551616", "9" * 40, "0", "1", "2"]
HOSTILE_TEXT = [
    "%00",
    "a%00b",
    "%2F%09%2Fevil.example",
    "..%2F..%2Fetc%2Fpasswd",
    "%E2%80%AE",
    "%FF%FE",
    "x" * 5000,
    "%C3%A9t%C3%A9",
    "%F0%9F%92%A5",
    "%0d%0aSet-Cookie:%20a=b",
    "9223372036854775808",
    "-1",
]
# Names the routes read, so the values land where the code looks.
PARAM_NAMES = [
    "cursor",
    "limit",
    "flow_id",
    "from",
    "to",
    "group_by",
    "click_id",
    "clickid",
    "next",
    "status",
    "event",
    "payout",
    "txid",
    "country",
    "include_bots",
    "compare",
    "sort",
    "direction",
    "conversion_id",
    "endpoint",
    "accepted",
    "test",
    "preset",
    "url",
    "trigger",
    "token",
    "reveal",
    "timezone",
    "currency",
    "measurement",
    "conversion_date",
    "conversion_timezone",
    "secret",
    "cid",
    "event_id",
    "transaction_id",
    "revenue",
    "pid",
    "cost",
    "cost_operation",
    "name",
    "offer_url",
    "username",
    "password",
    "q",
    "ip",
    "page",
    "per_page",
    "sub1",
]
HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "9223372036854775808",
            "-9223372036854775809",
            "1e400",
            "NaN",
            "inf",
            "-1",
            "0",
            "1",
            "true",
            "[]",
            "{}",
            "null",
            "2024-02-30",
            "9999-12-31 23:59:59",
            "0000-00-00",
            "Mars/Phobos",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "javascript:alert(1)",
            "x" * 70000,
            "é" * 300,
            "\ud7ff\ue000\uffff",
            "%00",
            "{clickid}",
        ]
    ),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    HOSTILE_VALUES,
)
JSON_KEYS = st.one_of(
    st.sampled_from(PARAM_NAMES + ["events", "postbacks", "routes", "headers", "rules"]), st.text(max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(JSON_KEYS, inner, max_size=5)),
    max_leaves=12,
)


def deep(depth):
    """JSON nested ``depth`` levels deep (a list of lists …), as text."""
    return "[" * depth + "]" * depth


BODIES = st.one_of(
    st.none().map(lambda _: ("none", None)),
    st.dictionaries(st.sampled_from(PARAM_NAMES), HOSTILE_VALUES, max_size=6).map(lambda d: ("form", d)),
    st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=6).map(lambda d: ("json", json.dumps(d))),
    JSON_VALUES.map(lambda v: ("json", json.dumps(v))),
    st.sampled_from([65, 100, 3000, 100000]).map(lambda n: ("json", deep(n))),
    st.sampled_from(
        ['{"a": ' * 70 + "1" + "}" * 70, "{", '{"name": "\\u0000"}', "\xff\xfe", '{"a":1e999}']
    ).map(lambda raw: ("json", raw)),
    st.binary(max_size=200).map(lambda raw: ("bytes", raw)),
)


# The numeric and id-like names with the values that broke them: past 64 bits, negative, NUL.
TYPED_PAIRS = st.tuples(
    st.sampled_from(
        ["cursor", "flow_id", "conversion_id", "limit", "route_id", "lander_id", "offer_id", "status"]
    ),
    st.sampled_from(
        ["9223372036854775808", "18446744073709551616", "-9223372036854775809", "0", "-1", "\x00", "1\x00"]
    ),
)


def path_segments(converter):
    if converter == "int":
        return st.one_of(
            st.sampled_from(["1", "1", "2"]), st.sampled_from(BIG_IDS), st.integers(0, 2**80).map(str)
        )
    return st.one_of(st.sampled_from(HOSTILE_TEXT + BIG_IDS), st.text(min_size=1, max_size=30).map(_quote))


def _quote(text):
    from urllib.parse import quote

    return quote(text, safe="")


@st.composite
def hostile_requests(draw, rules):
    rule = draw(st.sampled_from(rules))
    path = rule.rule
    for match in CONVERTER_RE.finditer(rule.rule):
        segment = draw(path_segments(match.group("converter")))
        path = path.replace(match.group(0), segment, 1)
    query = draw(
        st.lists(st.one_of(TYPED_PAIRS, st.tuples(st.sampled_from(PARAM_NAMES), HOSTILE_VALUES)), max_size=5)
    )
    # Mostly a method the route takes and the credentials its door wants, so the requests get
    # past the 405 and the 401 to the code that reads them; sometimes anything at all.
    allowed = sorted(rule.methods - {"HEAD", "OPTIONS"})
    door = "token" if rule.rule.startswith("/api/") else "session"
    return {
        "path": path,
        "method": draw(
            st.one_of(st.sampled_from(allowed), st.sampled_from(allowed), st.sampled_from(METHODS))
        ),
        "query": query,
        "body": draw(BODIES),
        "auth": draw(st.sampled_from([door, door, door, "none", "token", "session"])),
    }


def send(client, request):
    kwargs = {"method": request["method"], "query_string": request["query"], "headers": {}}
    kind, body = request["body"]
    if kind == "form":
        kwargs["data"] = body
    elif kind == "json":
        kwargs["data"], kwargs["content_type"] = body, "application/json"
    elif kind == "bytes":
        kwargs["data"], kwargs["content_type"] = body, "application/octet-stream"
    if request["auth"] == "token":
        kwargs["headers"]["Authorization"] = "Bearer " + API_TOKEN
    return client.open(request["path"], **kwargs)


def sign_in(client, user):
    with client.session_transaction() as session:
        session["user_id"] = user.id


def assert_still_healthy(client, api):
    """/healthz answers 200, and a new flow's link still records its click."""
    assert client.get("/healthz").status_code == 200
    status, flow = api.post("/api/v1/flows", json={"name": "After", "offer_url": "https://after.example/"})
    assert status == 201
    before = Click.select().count()
    assert client.get("/r/%s" % flow["key"]).status_code == 302
    assert Click.select().count() == before + 1


@pytest.fixture
def fuzz_app(make_app):
    return make_app(TRACKER_POSTBACK_SECRET=None)


def test_no_route_or_method_answers_5xx(app, client, api):
    seed_one_of_everything(client, api)
    user = User.create(username="fuzz", password_hash="!unusable")
    rules = [rule for rule in app.url_map.iter_rules()]
    seen = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(request=hostile_requests(rules))
    def probe(request):
        fresh = app.test_client()
        if request["auth"] == "session":
            sign_in(fresh, user)
        response = send(fresh, request)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            request["method"],
            request["path"][:200],
            response.get_data()[:300],
        )

    probe()
    assert len(seen) >= EXAMPLES // 2
    assert_still_healthy(client, api)


# The named cases, each an example of its own.
OVER = 2**63


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/flows/%d" % OVER),
        ("PATCH", "/api/v1/flows/%d" % OVER),
        ("GET", "/api/v1/conversions/%d" % OVER),
        ("POST", "/api/v1/deliveries/%d/retry" % OVER),
        ("GET", "/api/v1/clicks/%d" % OVER),
    ],
)
def test_an_id_past_64_bits_in_an_api_path_is_404(api, method, path):
    assert api.call(method, path, json={})[0] == 404


@pytest.mark.parametrize(
    "path", ["/flows/%d/edit" % OVER, "/logs/deliveries/%d" % (2**64), "/offers/%d/edit" % OVER]
)
def test_an_id_past_64_bits_in_a_dashboard_path_is_404(client, path):
    sign_in(client, User.create(username="admin", password_hash="!unusable"))
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/v1/clicks", "/api/v1/conversions", "/api/v1/postbacks", "/api/v1/deliveries"]
)
def test_an_id_past_64_bits_in_a_filter_or_cursor_is_400(api, path):
    assert api.get(path, query_string={"flow_id": str(OVER)}) == (
        400,
        {"error": "flow_id must be between 1 and 9223372036854775807"},
    )
    expected = (400, {"error": "cursor is not valid: ids run from 1 to 9223372036854775807"})
    if path == "/api/v1/clicks":  # click ids are text: a number is just a cursor before every id
        expected = (200, {"items": [], "next": None})
    assert api.get(path, query_string={"cursor": str(OVER)}) == expected
    if path != "/api/v1/clicks":
        assert api.get(path, query_string={"cursor": "-5"}) == (
            400,
            {"error": "cursor is not valid: ids run from 1 to 9223372036854775807"},
        )


@pytest.mark.parametrize("path", ["/logs/conversions", "/logs/postbacks", "/logs/deliveries", "/logs/clicks"])
def test_dashboard_logs_refuse_a_nul_or_an_id_past_64_bits(client, path):
    sign_in(client, User.create(username="admin", password_hash="!unusable"))
    assert client.get(path, query_string={"cursor": "a\x00"}).status_code == 400
    if path != "/logs/clicks":
        expected = 200 if path == "/logs/postbacks" else 400  # the inbound log has no status filter
        assert client.get(path, query_string={"status": "a\x00"}).status_code == expected
        assert client.get(path, query_string={"cursor": str(OVER)}).status_code == 400


def test_a_nul_in_the_login_username_is_a_wrong_login(client):
    response = client.post("/login", data={"username": "ad\x00min", "password": "whatever1"})
    assert response.status_code == 401


def test_a_hundred_thousand_nested_brackets_to_flows_is_400(api):
    status, body = api.call("POST", "/api/v1/flows", data=deep(100000), content_type="application/json")
    assert status == 400
    assert "64" in body["error"]


def test_json_nested_65_levels_is_400_and_64_is_read(api):
    status, body = api.call(
        "POST", "/api/v1/flows", data='{"name": %s}' % deep(64 - 1), content_type="application/json"
    )
    assert status == 422, body  # read, then refused for what it says: a name is no list
    status, body = api.call(
        "POST", "/api/v1/flows", data='{"name": %s}' % deep(65), content_type="application/json"
    )
    assert (status, body) == (400, {"error": "the JSON body is nested deeper than 64 levels"})


def test_nul_in_a_click_id_path_is_404(api):
    assert api.get("/api/v1/clicks/%00")[0] == 404
    assert api.get("/api/v1/clicks/a%00b")[0] == 404


def test_nul_in_a_cursor_is_400(api):
    for path in (
        "/api/v1/clicks",
        "/api/v1/conversions",
        "/api/v1/postbacks",
        "/api/v1/deliveries",
        "/api/v1/flows",
    ):
        status, body = api.get(path + "?cursor=%00")
        assert status == 400, (path, status, body)


def test_nul_in_a_json_string_is_422(api):
    status, body = api.call(
        "POST",
        "/api/v1/flows",
        data='{"name": "a\\u0000b", "offer_url": "https://o.example/"}',
        content_type="application/json",
    )
    assert status == 422
    assert "NUL" in body["error"]


def test_a_newline_in_login_next_is_no_500(client):
    response = client.post("/login?next=/flows%0a/evil", data={"username": "nobody", "password": "wrong"})
    assert response.status_code == 401


def test_query_names_url_for_reserves_are_plain_parameters(client):
    """Found by the fuzz: ``?endpoint=`` (or ``_scheme=``) on the reports page was handed to
    ``url_for`` as a keyword, a TypeError (500)."""
    sign_in(client, User.create(username="admin", password_hash="!unusable"))
    response = client.get("/reports?endpoint=x&_scheme=ftp&_external=1&group_by=day")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/reports.csv?endpoint=x&amp;_scheme=ftp&amp;_external=1&amp;group_by=day" in page
    assert client.get("/logs/postbacks?endpoint=x&_anchor=y").status_code == 200


def test_ids_past_64_bits_in_a_json_body_are_refused(api):
    """Found by the Schemathesis run: ``traffic_source_id`` of 2^94 reached the database."""
    status, body = api.post(
        "/api/v1/flows", json={"name": "F", "offer_url": "https://o.example/", "traffic_source_id": 2**94}
    )
    assert (status, body["error"]) == (422, "traffic_source_id must be an id (from 1 to 2^63-1)")
    for field, value in (("flow_id", 2**63), ("flow_id", -1)):
        status, body = api.post("/api/v1/postbacks/test", json={"url": "https://pb.example/", field: value})
        assert (status, body["error"]) == (400, "flow_id must be an id (from 1 to 2^63-1)")
    status, body = api.post(
        "/api/v1/postbacks/preview", json={"url": "https://pb.example/", "click_id": "a\x00b"}
    )
    assert (status, body["error"]) == (400, "click_id must be a string without NUL characters")
