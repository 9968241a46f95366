"""Any rule a client sends is either saved or refused with 422 and a reason, never a 500; a
saved rule compiles and runs on a click (DESIGN §4.7, §4.8)."""

import datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker.clickin.routing import (
    FIELDS,
    OPS,
    clean_rule,
    compile_rule,
    fact_readers,
    local_clock,
    read_facts,
)

from conftest import examples

JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
)
FIELD = st.sampled_from(FIELDS + ("param:zoneid", "param:", "Country", "contry", "HOUR")) | ANY_JSON
OP = st.sampled_from(OPS + ("IN", "equals", "")) | ANY_JSON
VALUE = st.sampled_from(
    ["US", "true", "false", "10.0.0.0/8", "::1/128", "9-17", "22-3", "mon", "7", "25", "AS7922"]
)
VALUES = st.lists(VALUE | JSON_LEAVES, max_size=5) | ANY_JSON
RULE = (
    st.fixed_dictionaries({"field": FIELD, "op": OP}, optional={"values": VALUES, "extra": ANY_JSON})
    | ANY_JSON
)
CLICK = {
    "country": "US",
    "ip": "10.1.2.3",
    "asn": 7922,
    "is_bot": False,
    "is_unique": True,
    "params": {"zoneid": "7"},
    "sub1": "x",
}


@settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(rule={"field": "ip", "op": "in", "values": ["10.0.0.0/8", "::ffff:0:0/96"]})
@example(rule={"field": "hour", "op": "in", "values": [23, "0-2"]})
@example(rule={"field": "is_bot", "op": "not_in", "values": [False]})
@example(rule={"field": "param:zoneid", "op": "contains", "values": ["\x00"]})
@example(rule={"field": "weekday", "op": "in", "values": ["sun", 7, "Monday"]})
@example(rule={"field": "country", "op": "in", "values": ["x" * 100000]})
@example(rule={"field": "param:\ud800", "op": "in", "values": ["\udfff"]})
@given(rule=RULE)
def test_any_rule_is_saved_or_refused_with_422(api, make_flow, rule):
    flow = api.get("/api/v1/flows")[1]["items"]
    if not flow:
        status, offer = api.post("/api/v1/offers", json={"name": "O", "url": "https://o.example/"})
        flow = [make_flow(routes=[{"name": "first", "offers": [{"offer_id": offer["id"], "weight": 1}]}])]
    route = dict(flow[0]["routes"][0], rules=[rule])
    status, body = api.patch("/api/v1/flows/%d" % flow[0]["id"], json={"routes": [route]})
    assert status in (200, 422), body
    if status == 422:
        assert set(body) == {"error"} and body["error"].startswith("route 1 'first'")
        return
    [saved] = body["routes"][0]["rules"]
    key, test = compile_rule(saved)
    assert test(read_facts(fact_readers([key]), CLICK, (12, 3))) in (True, False)
    assert clean_rule(saved) == saved  # stored as cleaned: saving it again changes nothing


def test_a_rule_read_at_a_time_in_every_zone_never_fails():
    when = datetime.datetime(2024, 3, 31, 1, 30)  # a summer-time switch in Europe
    for zone in ("Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Pacific/Kiritimati", "UTC"):
        hour, weekday = local_clock(when, ZoneInfo(zone))
        assert 0 <= hour <= 23 and 1 <= weekday <= 7


BODY = (
    st.dictionaries(
        st.sampled_from(["name", "url", "payout", "currency", "ips", "user_agents", "routes", "extra"]),
        ANY_JSON,
        max_size=5,
    )
    | ANY_JSON
)


@settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(body={"name": "x", "url": "https://o.example/", "payout": 1e308})
@example(body={"ips": ["1.2.3.4/99", "::/0", "\x00"], "user_agents": ["\ud800"]})
@example(body={"name": "\ud800", "url": "https://o.example/\udfff", "currency": "\ud800"})
@given(body=BODY)
def test_offers_landers_and_bot_rules_answer_any_body_with_a_4xx_or_success(api, body):
    for method, path in (
        ("POST", "/api/v1/offers"),
        ("POST", "/api/v1/landers"),
        ("PUT", "/api/v1/bot-rules"),
    ):
        status, answer = api.call(method, path, json=body)
        assert status in (200, 201, 400, 422), (path, status, answer)
        if status >= 400:
            assert set(answer) == {"error"}
