"""``POST /api/v1/events`` (DESIGN §4.3, the Pingtree contract of seed 001): codes, bodies, cost."""

import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from tracker.db import db
from tracker.models import Click, InboundRequest, RequestLock, utcnow

from conftest import Api
from conversion_helpers import click_on, conversions, inbound_log, last_log, old_click

EVENTS = [
    {"name": "lead", "conversion": False},
    {"name": "sale", "conversion": True},
    {"name": "upsell", "conversion": True, "allow_duplicates": True},
]


@pytest.fixture
def app(make_app):
    """Requests here repeat one after the other, each past the previous one's claim (its
    window is tested in test_event_claims.py)."""
    return make_app(TRACKER_EVENT_CLAIM_SECONDS=0)


@pytest.fixture
def flow(make_flow):
    return make_flow(offer_url="https://offer.example/lp?cid={clickid}&cost=0.35", events=EVENTS)


@pytest.fixture
def click_id(client, flow):
    response = client.get("/r/%s?cost=0.35" % flow["key"])
    return parse_qs(urlparse(response.headers["Location"]).query)["cid"][0]


def fire(client, form=False, **fields):
    """POST the event (JSON unless ``form``), no Authorization header: answer ``(status, json)``."""
    if form:
        response = client.post("/api/v1/events", data=fields)
    else:
        response = client.post("/api/v1/events", json=fields)
    return response.status_code, response.get_json()


def click_cost(click_id):
    with db.connection_context():
        return Click.get_by_id(click_id).cost


def test_json_and_form_bodies_fire_events(client, flow, click_id):
    status, body = fire(
        client,
        cid=flow["key"],
        event_id="lead",
        transaction_id=click_id,
        first_name="Ann",
        sub1="s1",
        utm_source="fb",
    )
    assert (status, body["status"], body["error"]) == (200, "fired", None)
    status, body = fire(
        client,
        form=True,
        cid=flow["key"],
        event_id="sale",
        transaction_id=click_id,
        revenue="49.99",
        adv1="a1",
    )
    assert (status, body["status"]) == (200, "fired")
    lead, sale = conversions()
    assert (lead.event, lead.payout, lead.status) == ("lead", Decimal(0), "approved")
    assert lead.data == {"first_name": "Ann", "sub1": "s1", "utm_source": "fb"}
    assert (sale.event, sale.payout, sale.data, sale.id) == (
        "sale",
        Decimal("49.99"),
        {"adv1": "a1"},
        body["conversion_id"],
    )
    assert [
        (log.endpoint, log.http_status, log.accepted, log.result, log.method) for log in inbound_log()
    ] == [("events", 200, True, "fired", "POST")] * 2


def test_json_revenue_keeps_its_exact_decimal(client, flow, click_id):
    response = client.post(
        "/api/v1/events",
        data='{"cid": "%s", "event_id": "sale", "transaction_id": "%s", '
        '"revenue": 0.1000000000000000055511151231257827}' % (flow["key"], click_id),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert conversions()[0].payout == Decimal("0.1")


REFUSALS = [
    ({"event_id": "lead", "transaction_id": "%(click)s"}, 400, "cid is required: the campaign (flow) key"),
    (
        {"cid": "nope", "event_id": "lead", "transaction_id": "%(click)s"},
        400,
        "cid 'nope' is invalid: no campaign (flow) has this key",
    ),
    (
        {"cid": "%(key)s", "transaction_id": "%(click)s"},
        400,
        "event_id is required: an event defined on the flow",
    ),
    (
        {"cid": "%(key)s", "event_id": "signup", "transaction_id": "%(click)s"},
        400,
        "event_id 'signup' is not defined on this flow (defined: lead, sale, upsell)",
    ),
    ({"cid": "%(key)s", "event_id": "lead"}, 400, "transaction_id is required: the click id of the lead"),
    (
        {"cid": "%(key)s", "event_id": "lead", "transaction_id": "X-1"},
        400,
        "transaction_id 'X-1' is malformed: a click id is at most 64 characters of 0-9 and a-z",
    ),
    (
        {"cid": "%(key)s", "event_id": "lead", "transaction_id": "0123456789abcdef"},
        400,
        "transaction_id '0123456789abcdef' is invalid: it is no click of campaign '%(key)s'",
    ),
    (
        {"cid": "%(key)s", "event_id": "sale", "transaction_id": "%(click)s"},
        400,
        "revenue is required: 'sale' is a conversion event",
    ),
    (
        {"cid": "%(key)s", "event_id": "sale", "transaction_id": "%(click)s", "revenue": "12,50"},
        400,
        "revenue '12,50' is ambiguous: a comma may be a decimal or a thousands separator; "
        "send a plain number with a dot, such as 1.5",
    ),
    (
        {"cid": "%(key)s", "event_id": "sale", "transaction_id": "%(click)s", "revenue": "NaN"},
        400,
        "revenue 'NaN' is not a finite number",
    ),
    (
        {"cid": "%(key)s", "event_id": "lead", "transaction_id": "%(click)s", "pid": "99"},
        400,
        "pid '99' is invalid: no traffic source has this id or name",
    ),
    (
        {"cid": "%(key)s", "event_id": "lead", "transaction_id": "{transaction_id}"},
        400,
        "transaction_id is '{transaction_id}', an unreplaced macro: the sender did not replace "
        "{transaction_id} with the real value; fix the postback URL on the sender's side",
    ),
]


@pytest.mark.parametrize("fields, code, reason", REFUSALS)
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_each_refusal_is_answered_and_logged(client, flow, click_id, fields, code, reason, form):
    values = {"key": flow["key"], "click": click_id}
    status, body = fire(client, form=form, **{k: v % values for k, v in fields.items()})
    assert (status, body) == (code, {"status": "error", "conversion_id": None, "error": reason % values})
    (log,) = inbound_log()
    assert (log.endpoint, log.http_status, log.accepted, log.reason) == (
        "events",
        code,
        False,
        reason % values,
    )
    assert conversions() == []


def test_duplicate_event_is_400_unless_the_event_allows_duplicates(client, flow, click_id):
    lead = dict(cid=flow["key"], event_id="lead", transaction_id=click_id)
    first = fire(client, **lead)[1]
    status, body = fire(client, **lead)
    assert (status, body) == (
        400,
        {
            "status": "error",
            "conversion_id": first["conversion_id"],
            "error": "duplicate: event 'lead' already fired for this transaction_id "
            "(the event does not allow duplicates)",
        },
    )
    upsell = dict(cid=flow["key"], event_id="upsell", transaction_id=click_id, revenue="5")
    assert fire(client, **upsell)[0] == 200
    assert fire(client, **upsell)[0] == 200
    assert [c.event for c in conversions()] == ["lead", "upsell", "upsell"]
    assert [log.http_status for log in inbound_log()] == [200, 400, 200, 200]


def test_an_old_click_is_refused_with_400(client, flow):
    click_id = old_click(flow, 31)
    status, body = fire(client, cid=flow["key"], event_id="lead", transaction_id=click_id)
    assert (status, body["error"]) == (400, "the click is 31 days old, outside the 30-day attribution window")


def test_source_pid_active_or_inactive(client, api, flow, click_id):
    active = api.post("/api/v1/traffic-sources", json={"name": "A", "click_id_param": "c"})[1]
    inactive = api.post("/api/v1/traffic-sources", json={"name": "B", "click_id_param": "c"})[1]
    assert api.patch("/api/v1/traffic-sources/%d" % inactive["id"], json={"active": False})[0] == 200
    status, body = fire(
        client, cid=flow["key"], event_id="lead", transaction_id=click_id, pid=str(inactive["id"])
    )
    assert (status, body["error"]) == (403, "source %d is inactive" % inactive["id"])
    assert (last_log().http_status, last_log().reason) == (403, body["error"])
    assert fire(client, cid=flow["key"], event_id="lead", transaction_id=click_id, pid=active["id"])[0] == 200
    assert (
        fire(client, cid=flow["key"], event_id="sale", transaction_id=click_id, pid="organic", revenue=1)[0]
        == 200
    )


def test_event_in_flight_is_403_and_an_expired_claim_is_taken_over(client, flow, click_id):
    key = "events:%s:lead" % click_id
    with db.connection_context():
        RequestLock.create(key=key, expires_at=utcnow() + datetime.timedelta(seconds=30))
    fields = dict(cid=flow["key"], event_id="lead", transaction_id=click_id)
    status, body = fire(client, **fields)
    assert (status, body["error"]) == (
        403,
        "the same transaction_id and event_id is claimed for 0 s by an earlier request; retry later",
    )
    assert (last_log().http_status, last_log().reason) == (403, body["error"])
    assert conversions() == []
    with db.connection_context():
        RequestLock.update(expires_at=utcnow() - datetime.timedelta(seconds=1)).execute()
    assert fire(client, **fields)[0] == 200
    with db.connection_context():
        assert RequestLock.select().count() == 1  # a claim lasts its window, recorded or not
    assert fire(client, **fields)[0] == 400  # past the window: now a duplicate


@pytest.mark.parametrize(
    "operation, expected",
    [
        ("add", "1.50"),
        ("subtract", "0.10"),
        ("substract", "0.10"),
        ("override", "1.15"),
        (None, "1.15"),
    ],
)
def test_cost_operations_change_the_clicks_cost_exactly(client, flow, click_id, operation, expected):
    assert click_cost(click_id) == Decimal("0.35")
    fields = dict(
        cid=flow["key"],
        event_id="lead",
        transaction_id=click_id,
        cost="0.25" if operation in ("subtract", "substract") else "1.15",
    )
    if operation:
        fields["cost_operation"] = operation
    status, body = fire(client, form=True, **fields)
    assert (status, body["status"]) == (200, "fired")
    assert click_cost(click_id) == Decimal(expected)


def test_cost_is_not_touched_by_a_refused_event(client, flow, click_id):
    fields = dict(cid=flow["key"], event_id="lead", transaction_id=click_id, cost="1", cost_operation="add")
    assert fire(client, **fields)[0] == 200
    assert fire(client, **fields)[0] == 400
    assert (
        fire(
            client, cid=flow["key"], event_id="sale", transaction_id=click_id, cost="1", cost_operation="add"
        )[0]
        == 400
    )
    assert click_cost(click_id) == Decimal("1.35")


def test_event_api_is_outside_the_bearer_token_but_under_the_postback_rules(make_app):
    client = make_app(TRACKER_POSTBACK_SECRET="pw", TRACKER_POSTBACK_ALLOWED_IPS="127.0.0.0/8").test_client()
    flow = Api(client).post(
        "/api/v1/flows",
        json={"name": "f", "offer_url": "https://o.example/?cid={clickid}", "events": ["lead"]},
    )[1]
    click_id = click_on(client, flow)
    fields = dict(cid=flow["key"], event_id="lead", transaction_id=click_id, revenue="2")
    assert fire(client, **fields) == (
        403,
        {"status": "error", "conversion_id": None, "error": "the secret parameter is missing"},
    )
    assert fire(client, secret="PW", **fields)[1]["error"] == "the secret is wrong"
    assert fire(client, secret="pw", **fields)[0] == 200
    response = client.post("/api/v1/events", json=fields, environ_base={"REMOTE_ADDR": "192.0.2.5"})
    assert (response.status_code, response.get_json()["error"]) == (
        403,
        "IP address 192.0.2.5 is not allowed to send conversions (TRACKER_POSTBACK_ALLOWED_IPS)",
    )
    assert [(log.endpoint, log.http_status) for log in inbound_log()] == [
        ("events", 403),
        ("events", 403),
        ("events", 200),
        ("events", 403),
    ]
    assert inbound_log()[2].params["secret"] == "***"


def test_a_flow_without_event_settings_takes_any_event(client, make_flow):
    flow = make_flow(offer_url="https://o.example/?cid={clickid}")
    click_id = click_on(client, flow)
    assert fire(client, cid=flow["key"], event_id="signup", transaction_id=click_id)[0] == 200
    assert fire(client, cid=flow["key"], event_id="purchase", transaction_id=click_id, revenue="10")[0] == 200
    assert [(c.event, c.payout) for c in conversions()] == [("signup", Decimal(0)), ("purchase", Decimal(10))]


def test_broken_bodies_are_refused_and_logged(client, flow):
    response = client.post("/api/v1/events", data="nope", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.get_json()["error"]) == (400, "the body is not valid JSON")
    response = client.post(
        "/api/v1/events", json={"cid": None, "event_id": {"a": [1]}, "transaction_id": True}
    )
    assert response.status_code == 400
    assert [(log.endpoint, log.http_status) for log in inbound_log()] == [("events", 400), ("events", 400)]


def test_only_events_marked_as_conversions_count_as_conversions(client, api, make_flow):
    """Issue 9, point 5: an event defined without ``conversion`` was a conversion type (it
    demanded revenue) and counted in conversions and CR (lead + sale on one click: 2, 200 %)."""
    flow = make_flow(events=[{"name": "lead"}, {"name": "sale", "conversion": True}])
    assert [e["conversion"] for e in flow["events"]] == [False, True]
    click_id = click_on(client, flow)
    assert fire(client, cid=flow["key"], event_id="lead", transaction_id=click_id) == (
        200,
        {"status": "fired", "conversion_id": 1, "error": None},
    )
    assert fire(client, cid=flow["key"], event_id="sale", transaction_id=click_id, revenue="10")[0] == 200
    assert [(c.event, c.is_conversion) for c in conversions()] == [("lead", False), ("sale", True)]
    status, stats = api.get("/api/v1/stats?flow_id=%d" % flow["id"])
    assert status == 200
    totals = stats["totals"]
    assert (totals["clicks"], totals["conversions"], totals["revenue"], totals["cr"]) == (
        1,
        1,
        "10.00",
        "100.00",
    )


def test_the_seeds_words_amount_and_pid_by_name(client, api, make_flow):
    """Issue 9, point 12: ``amount`` was not read as revenue; a text ``pid`` got 400."""
    source = api.post("/api/v1/traffic-sources", json={"name": "Native Ads", "click_id_param": "c"})[1]
    flow = make_flow(events=[{"name": "sale", "conversion": True}, {"name": "upsell", "isDuplicate": True}])
    assert flow["events"][1] == {"name": "upsell", "conversion": False, "allow_duplicates": True}
    click_id = click_on(client, flow)
    fields = dict(cid=flow["key"], event_id="sale", transaction_id=click_id, amount="12.5", pid="native ads")
    assert fire(client, **fields)[0] == 200
    assert (
        fire(client, cid=flow["key"], event_id="upsell", transaction_id=click_id, pid=str(source["id"]))[0]
        == 200
    )
    assert fire(client, cid=flow["key"], event_id="upsell", transaction_id=click_id, pid="Other")[1][
        "error"
    ] == ("pid 'Other' is invalid: no traffic source has this id or name")
    assert [(c.event, c.payout) for c in conversions()] == [("sale", Decimal("12.5")), ("upsell", Decimal(0))]
    assert conversions()[0].data == {}  # amount and pid are the contract's, not lead data


def test_json_nested_past_64_levels_is_400_and_logged(client):
    """DESIGN §4.8: the 100,000 nested ``[`` of the issue, and 65 levels of objects."""
    for raw in ("[" * 100000 + "]" * 100000, '{"cid": ' + '{"a": ' * 65 + "1" + "}" * 66):
        response = client.post("/api/v1/events", data=raw, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["error"] == "the JSON body is nested deeper than 64 levels"
    with db.connection_context():
        logged = [(r.http_status, r.reason) for r in InboundRequest.select().order_by(InboundRequest.id)]
    assert logged == [(400, "the JSON body is nested deeper than 64 levels")] * 2
