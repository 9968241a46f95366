"""The click's lead profile (DESIGN §4.2): the lead data of every conversion and event of a click,
merged, feeds every later postback of the click. Issue 9, point 3: a ``sale`` after a ``lead``
rendered ``email=&phone=``, on /postback and on the event API."""

import pytest

from tracker.models import Delivery, LeadProfile, utcnow
from tracker.postbacks.leads import merge

from conversion_helpers import click_on
from postback_helpers import at_receiver, catch_all, received, sweep

SALE_TEMPLATE = (
    "https://pb.example/sale?e={email}&p={phone}&n={req.sessionData.contact.firstName}&c={city}&v={payout}"
)


@pytest.fixture
def flow(make_flow, receiver):
    catch_all(receiver)
    url = at_receiver(receiver, SALE_TEMPLATE)
    return make_flow(
        events=[{"name": "lead"}, {"name": "sale", "conversion": True}],
        postbacks=[{"trigger": "conversion", "events": ["sale"], "url": url}],
    )


def sent(delivery_app, receiver):
    assert sweep(delivery_app, now=utcnow()) == 1
    return received(receiver)[-1].args.to_dict()


def test_a_sale_after_a_lead_carries_the_leads_data_on_postback(delivery_app, client, flow, receiver):
    click_id = click_on(client, flow)
    lead = {
        "click_id": click_id,
        "event": "lead",
        "email": "ann@example.com",
        "phone": "+1 650 555 1212",
        "city": "Austin",
        "contact": {"firstName": "Ann"},
    }
    assert client.post("/postback", json=lead).status_code == 200
    assert client.get("/postback?click_id=%s&event=sale&payout=40" % click_id).status_code == 200
    assert sent(delivery_app, receiver) == {
        "e": "ann@example.com",
        "p": "+1 650 555 1212",
        "n": "Ann",
        "c": "Austin",
        "v": "40.00",
    }


def test_a_sale_after_a_lead_carries_the_leads_data_on_the_event_api(delivery_app, client, flow, receiver):
    click_id = click_on(client, flow)
    event = {"cid": flow["key"], "transaction_id": click_id}
    answer = client.post(
        "/api/v1/events", data=dict(event, event_id="lead", email="bo@example.com", phone="5551")
    )
    assert answer.status_code == 200
    assert client.post("/api/v1/events", json=dict(event, event_id="sale", revenue="12.5")).status_code == 200
    assert sent(delivery_app, receiver) == {
        "e": "bo@example.com",
        "p": "5551",
        "n": "",
        "c": "",
        "v": "12.50",
    }


def test_later_values_win_and_empty_ones_never_overwrite(client, flow):
    click_id = click_on(client, flow)
    lead = "/postback?click_id=%s&event=lead&email=old@example.com&phone=111&first_name=Ann" % click_id
    assert client.get(lead).status_code == 200
    refused = "/postback?click_id=%s&event=upsell&email=x@example.com" % click_id  # not a flow event
    assert client.get(refused).status_code == 400
    assert LeadProfile.get_by_id(click_id).data == {
        "email": "old@example.com",
        "phone": "111",
        "first_name": "Ann",
    }
    sale = "/postback?click_id=%s&event=sale&email=new@example.com&phone=&first_name=%%20" % click_id
    assert client.get(sale).status_code == 200
    assert LeadProfile.get_by_id(click_id).data == {
        "email": "new@example.com",
        "phone": "111",
        "first_name": "Ann",
    }


def test_a_status_update_merges_too_and_renders_from_the_profile(make_flow, client, receiver, delivery_app):
    catch_all(receiver)
    flow = make_flow(
        postbacks=[
            {"trigger": "status", "url": at_receiver(receiver, "https://pb.example/s?e={email}&s={status}")}
        ]
    )
    click_id = click_on(client, flow)
    client.get("/postback?click_id=%s&txid=T1&status=pending&email=a@example.com" % click_id)
    client.get("/postback?click_id=%s&txid=T1&status=approved&email=b@example.com" % click_id)
    assert sweep(delivery_app, now=utcnow()) == 2
    # The two are sent side by side: they may arrive in either order.
    assert sorted((r.args.to_dict() for r in received(receiver)), key=lambda args: args["e"]) == [
        {"e": "a@example.com", "s": "pending"},
        {"e": "b@example.com", "s": "approved"},
    ]
    assert [d.status for d in Delivery.select().order_by(Delivery.id)] == ["delivered", "delivered"]


def test_merge_rules():
    base = {"email": "a@x.co", "contact": {"firstName": "Ann", "city": "Austin"}, "phone": "1"}
    new = {"email": "", "phone": "2", "contact": {"city": "Boston", "zip": None}, "tags": [], "gender": "f"}
    assert merge(base, new) == {
        "email": "a@x.co",
        "contact": {"firstName": "Ann", "city": "Boston"},
        "phone": "2",
        "gender": "f",
    }
    assert base == {"email": "a@x.co", "contact": {"firstName": "Ann", "city": "Austin"}, "phone": "1"}
    assert merge({}, {"a": {"b": ""}}) == {}
