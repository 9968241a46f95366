"""Triggers and filters: which deliveries a click or a conversion enqueues, in its transaction."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tracker.db import db
from tracker.models import Click, Conversion, Delivery, Postback

from postback_helpers import (
    NOW,
    catch_all,
    change,
    click_deliveries,
    convert,
    make_click,
    received,
    statuses,
    sweep,
    utc_from,
)


def pb(trigger, **fields):
    return dict(
        {"trigger": trigger, "url": "https://pb.example/%s?c={clickid}&s={status}&p={payout}" % trigger},
        **fields,
    )


def triggers():
    return [d.trigger for d in Delivery.select().order_by(Delivery.id)]


def test_click_route_enqueues_click_postbacks_with_the_click(client, make_flow):
    flow = make_flow(
        postbacks=[
            pb("click", url="https://pb.example/s?c={clickid}&u={utm_source}"),
            pb("click", url="https://pb.example/off", enabled=False),
            pb("conversion"),
        ]
    )
    assert client.get("/r/%s?utm_source=push" % flow["key"]).status_code == 302
    click = Click.get()
    deliveries = list(Delivery.select())
    assert [(d.trigger, d.method, d.url, d.status, d.click_id, d.flow_id) for d in deliveries] == [
        (
            "click",
            "GET",
            "https://pb.example/s?c=%s&u=push" % click.click_id,
            "queued",
            click.click_id,
            flow["id"],
        )
    ]


def test_a_click_without_click_postbacks_writes_no_delivery(client, make_flow):
    flow = make_flow(postbacks=[pb("conversion")])
    assert client.get("/r/" + flow["key"]).status_code == 302
    assert (Click.select().count(), Delivery.select().count()) == (1, 0)


def test_a_click_and_its_deliveries_roll_back_together(app, make_flow):
    flow = make_flow(postbacks=[pb("click")])
    with pytest.raises(RuntimeError):
        with db.atomic():
            click_deliveries(make_click(flow["id"]))
            raise RuntimeError("crash before commit")
    assert (Click.select().count(), Delivery.select().count()) == (0, 0)


def test_conversion_trigger_fires_on_creation_filtered_by_events(app, make_flow):
    flow = make_flow(
        postbacks=[pb("conversion"), pb("conversion", events=["sale"]), pb("conversion", events=["lead"])]
    )
    click = make_click(flow["id"])
    _, deliveries = convert(click, event="sale")
    assert [d.postback.events for d in deliveries] == [[], ["sale"]]
    conversion, _ = convert(click, event="lead", txid="TX-2")
    assert Delivery.select().count() == 4
    change(conversion, status="declined")
    assert Delivery.select().count() == 4  # a change is no new conversion


def test_status_trigger_fires_on_creation_and_on_change_filtered_by_statuses(app, make_flow):
    flow = make_flow(postbacks=[pb("status"), pb("status", statuses=["approved"])])
    conversion, deliveries = convert(make_click(flow["id"]), status="pending")
    assert len(deliveries) == 1 and "s=pending" in deliveries[0].url
    assert change(conversion, payout="60") == []  # status unchanged
    approved = change(conversion, status="approved")
    assert [d.postback.statuses for d in approved] == [[], ["approved"]]
    assert all("s=approved" in d.url for d in approved)


@pytest.mark.parametrize(
    "payout_type,payouts,fired",
    [
        ("all", ["10", "-5", "0"], [True, True, True]),
        ("payout", ["10", "-5", "0"], [True, False, False]),
        ("debit", ["10", "-5", "0"], [False, True, False]),
    ],
)
def test_payout_trigger_fires_on_nonzero_creation_and_changes_filtered_by_type(
    app, make_flow, payout_type, payouts, fired
):
    flow = make_flow(postbacks=[pb("payout", payout_type=payout_type)])
    click = make_click(flow["id"])
    conversion, deliveries = convert(click, payout="0", txid="zero")
    assert deliveries == []  # a zero payout on creation is no payout event
    got = [bool(change(conversion, payout=p)) for p in payouts]
    assert got == fired
    assert change(conversion, payout=payouts[-1]) == []  # unchanged payout


def test_payout_trigger_fires_for_a_new_conversion_with_a_payout(app, make_flow):
    flow = make_flow(postbacks=[pb("payout", payout_type="debit")])
    _, deliveries = convert(make_click(flow["id"]), payout="-12.5")
    assert [parse_qs(urlsplit(d.url).query)["p"] for d in deliveries] == [["-12.50"]]


def test_traffic_source_postback_fires_on_new_conversions_of_its_events_while_active(app, api, make_flow):
    status, source = api.post(
        "/api/v1/traffic-sources",
        json={
            "name": "TS",
            "click_id_param": "clickid",
            "postback_url": "https://ts.example/pb?cid={externalid}",
            "postback_events": ["sale"],
        },
    )
    assert status == 201
    flow = make_flow(traffic_source_id=source["id"])
    click = make_click(flow["id"])
    _, deliveries = convert(click, event="sale")
    assert [(d.trigger, d.postback_id, d.url) for d in deliveries] == [
        ("conversion", None, "https://ts.example/pb?cid=ts-7781")
    ]
    assert convert(click, event="lead", txid="2")[1] == []
    assert api.patch("/api/v1/traffic-sources/%d" % source["id"], json={"active": False})[0] == 200
    assert convert(click, event="sale", txid="3")[1] == []


def test_a_template_that_cannot_render_is_saved_as_a_failed_delivery(app, make_flow):
    # Saved without the editor's check (which refuses it), or valid only for some clicks:
    # the render at enqueue decides, and the conversion is kept whatever it says.
    flow = make_flow()
    Postback.create(
        flow=flow["id"], trigger="conversion", url='https://pb.example/|JSON|{"a":{req.qs.n|raw}}'
    )
    convert(make_click(flow["id"], params={"n": "s1"}))
    assert Conversion.select().count() == 1  # the conversion is kept all the same
    delivery = Delivery.get()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("the JSON body is not valid JSON")
    assert delivery.body == '{"a":s1}'


def test_a_request_identical_to_the_last_of_its_postback_is_skipped(delivery_app, receiver, make_flow):
    catch_all(receiver)
    flow = make_flow(postbacks=[pb("status", url=receiver.url_for("/s") + "?c={clickid}")])
    conversion, _ = convert(make_click(flow["id"]), status="approved")
    sweep(delivery_app)
    skipped = change(conversion, status="pending", now=utc_from(1))  # the receiver has this request
    assert [d.status for d in skipped] == ["skipped"]
    assert skipped[0].last_error == "identical to delivery 1, the last one of this postback"
    assert statuses() == ["delivered", "skipped"]
    assert sweep(delivery_app, now=utc_from(3)) == 0
    assert [r.query_string for r in received(receiver)] == [b"c=" + conversion.click_id.encode()]


def test_a_reapproval_is_sent_after_a_decline(delivery_app, receiver, make_flow):
    """Issue 9, point 6: approved, declined, approved again sends three requests, the last one
    identical to the first (skipping it left the receiver at "declined")."""
    catch_all(receiver)
    flow = make_flow(postbacks=[pb("status", url=receiver.url_for("/s") + "?c={clickid}&s={status}")])
    conversion, _ = convert(make_click(flow["id"]), status="approved")
    sweep(delivery_app)
    change(conversion, status="declined", now=utc_from(1))
    sweep(delivery_app, now=utc_from(1))
    again = change(conversion, status="approved", now=utc_from(2))
    assert [d.status for d in again] == ["queued"]
    assert sweep(delivery_app, now=utc_from(2)) == 1
    assert statuses() == ["delivered", "delivered", "delivered"]
    assert [r.args["s"] for r in received(receiver)] == ["approved", "declined", "approved"]
    assert len({r.url for r in received(receiver)}) == 2  # the third is byte for byte the first


def test_a_reapproval_is_sent_even_before_the_decline_went_out(app, make_flow):
    flow = make_flow(postbacks=[pb("status", url="https://pb.example/?c={clickid}&s={status}")])
    conversion, _ = convert(make_click(flow["id"]), status="approved")
    Delivery.update(status="delivered").execute()
    change(conversion, status="declined", now=utc_from(1))  # still queued
    change(conversion, status="approved", now=utc_from(2))
    assert statuses() == ["delivered", "queued", "queued"]


def test_deliveries_are_rendered_once_and_keep_their_request(app, make_flow):
    flow = make_flow(postbacks=[pb("conversion", url="https://pb.example/?t={now}&e={email}")])
    conversion, deliveries = convert(make_click(flow["id"]), now=NOW)
    Conversion.update(data={"email": "changed@example.com"}).execute()
    Postback.update(url="https://elsewhere.example/").execute()
    assert (
        Delivery.get().url
        == deliveries[0].url
        == "https://pb.example/?t=1714564800&e=%20%20John_Smith%40gmail.com%20"
    )
