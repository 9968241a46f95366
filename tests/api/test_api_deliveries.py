"""``/api/v1/deliveries`` and ``/api/v1/postbacks/{preview,test,presets}`` through the test client."""

import json

import pytest

from tracker.models import Delivery

from postback_helpers import NOW, catch_all, convert, make_click, sweep

DELIVERY_FIELDS = {
    "id",
    "flow_id",
    "click_id",
    "conversion_id",
    "trigger",
    "method",
    "url",
    "headers",
    "body",
    "status",
    "test",
    "next_attempt_at",
    "attempts",
}


@pytest.fixture
def delivered(delivery_app, receiver, make_flow):
    """A flow with a conversion postback whose delivery failed once (500), then was delivered."""
    receiver.expect_ordered_request("/pb").respond_with_data("oops", status=500)
    receiver.expect_ordered_request("/pb").respond_with_data("ok")
    flow = make_flow(postbacks=[{"trigger": "conversion", "url": receiver.url_for("/pb") + "?c={clickid}"}])
    click = make_click(flow["id"])
    conversion, _ = convert(click)
    sweep(delivery_app)
    sweep(delivery_app, now=NOW.replace(second=5))
    return flow, click, conversion


def test_list_shows_each_delivery_with_its_attempts(api, delivered, receiver):
    flow, click, conversion = delivered
    status, body = api.get("/api/v1/deliveries?flow_id=%d" % flow["id"])
    assert status == 200 and body["next"] is None
    [item] = body["items"]
    assert DELIVERY_FIELDS <= set(item)
    assert {
        k: item[k]
        for k in (
            "flow_id",
            "click_id",
            "conversion_id",
            "trigger",
            "method",
            "url",
            "headers",
            "body",
            "status",
            "test",
            "next_attempt_at",
        )
    } == {
        "flow_id": flow["id"],
        "click_id": click.click_id,
        "conversion_id": conversion.id,
        "trigger": "conversion",
        "method": "GET",
        "url": receiver.url_for("/pb") + "?c=" + click.click_id,
        "headers": {},
        "body": "",
        "status": "delivered",
        "test": False,
        "next_attempt_at": None,
    }
    assert [(a["status_code"], a["error"], a["response"]) for a in item["attempts"]] == [
        (500, "HTTP 500", "oops"),
        (200, "", "ok"),
    ]
    assert item["attempts"][0]["at"] == "2024-05-01T12:00:00Z"
    assert all(isinstance(a["duration_ms"], float) for a in item["attempts"])


def test_list_filters(api, delivered):
    flow, click, _ = delivered
    assert len(api.get("/api/v1/deliveries?click_id=" + click.click_id)[1]["items"]) == 1
    assert api.get("/api/v1/deliveries?click_id=nope")[1]["items"] == []
    assert len(api.get("/api/v1/deliveries?status=delivered")[1]["items"]) == 1
    assert api.get("/api/v1/deliveries?status=failed")[1]["items"] == []
    assert api.get("/api/v1/deliveries?flow_id=%d" % (flow["id"] + 1))[1]["items"] == []
    assert api.get("/api/v1/deliveries?status=lost") == (
        400,
        {"error": "status must be one of queued, sending, retrying, delivered, failed, skipped"},
    )
    assert api.get("/api/v1/deliveries?flow_id=x")[0] == 400


def test_get_one_and_404(api, delivered):
    delivery = Delivery.get()
    status, body = api.get("/api/v1/deliveries/%d" % delivery.id)
    assert status == 200 and body["id"] == delivery.id and len(body["attempts"]) == 2
    assert api.get("/api/v1/deliveries/999999") == (404, {"error": "delivery 999999 not found"})


def test_retry_queues_the_same_request_again(api, delivered, delivery_app, receiver):
    delivery = Delivery.get()
    status, body = api.post("/api/v1/deliveries/%d/retry" % delivery.id)
    assert status == 200
    assert (body["status"], body["url"], len(body["attempts"])) == ("queued", delivery.url, 2)
    assert body["next_attempt_at"] is not None
    catch_all(receiver)
    assert sweep(delivery_app, now=None) == 1
    assert Delivery.get().status == "delivered"
    assert api.post("/api/v1/deliveries/999999/retry") == (404, {"error": "delivery 999999 not found"})


def test_retry_refuses_a_delivery_being_sent(api, app):
    delivery = Delivery.create(trigger="click", url="https://pb.example/", status="sending")
    assert api.post("/api/v1/deliveries/%d/retry" % delivery.id) == (
        422,
        {"error": "delivery %d is being sent right now" % delivery.id},
    )


def test_preview_with_sample_values(api, app):
    status, body = api.post(
        "/api/v1/postbacks/preview",
        json={"url": 'https://pb.example/x?c={clickid}&a={adid}|JSON|{"p":{payout},"e":"{email|sha256}"}'},
    )
    assert status == 200
    assert body["method"] == "POST" and body["headers"] == {"Content-Type": "application/json"}
    assert body["url"] == "https://pb.example/x?c=0lvn2p8q0a1b2c3d4e5f6g7h8&a="
    assert json.loads(body["body"])["p"] == 12.5
    assert [w.split(" ")[0] for w in body["warnings"]] == ["{adid}"]


def test_preview_with_a_real_click_and_a_conversion(api, app, make_flow):
    flow = make_flow()
    click = make_click(flow["id"])
    status, body = api.post(
        "/api/v1/postbacks/preview",
        json={
            "url": "https://pb.example/?c={clickid}&ip={ip}&p={payout}&e={event}&s={status}&m={email}",
            "click_id": click.click_id,
            "conversion": {
                "event": "sale",
                "payout": "-3.5",
                "status": "declined",
                "data": {"email": "a@b.c"},
            },
        },
    )
    assert status == 200
    assert body["url"] == (
        "https://pb.example/?c=%s&ip=198.51.100.23&p=-3.50&e=sale&s=declined&m=a%%40b.c" % click.click_id
    )


@pytest.mark.parametrize(
    "body,status,error",
    [
        ({}, 400, "url (the postback template) is required"),
        ({"url": 5}, 400, "url (the postback template) is required"),
        ({"url": "https://pb.example/", "click_id": "nope"}, 404, "click 'nope' not found"),
        (
            {"url": "https://pb.example/", "conversion": {"payout": "lots"}},
            422,
            "conversion.payout must be a number",
        ),
        ({"url": "https://pb.example/", "conversion": {"bogus": 1}}, 400, None),
        ({"url": 'https://pb.example/|JSON|{"a":}'}, 422, "the JSON body is not valid JSON: "),
    ],
)
def test_preview_errors(api, app, body, status, error):
    got_status, got = api.post("/api/v1/postbacks/preview", json=body)
    assert got_status == status
    assert "error" in got and (error is None or got["error"].startswith(error)), got


def test_preview_error_carries_warnings(api, app):
    status, body = api.post("/api/v1/postbacks/preview", json={"url": "https://pb.example/?a={zone}|JSON|{"})
    assert status == 422 and body["warnings"][0].startswith("{zone}")


def test_send_test_queues_a_real_delivery_marked_test(api, delivery_app, receiver, make_flow):
    catch_all(receiver)
    flow = make_flow()
    status, body = api.post(
        "/api/v1/postbacks/test", json={"url": receiver.url_for("/t") + "?c={clickid}", "flow_id": flow["id"]}
    )
    assert status == 201
    assert (body["test"], body["trigger"], body["status"], body["flow_id"]) == (
        True,
        "test",
        "queued",
        flow["id"],
    )
    sweep(delivery_app, now=None)
    assert api.get("/api/v1/deliveries?test=true")[1]["items"][0]["status"] == "delivered"
    assert api.post("/api/v1/postbacks/test", json={"url": "https://x.example/|JSON|{"})[0] == 422
    assert api.post("/api/v1/postbacks/test", json={"url": "https://x.example/", "flow_id": 999})[0] == 404


def test_flow_api_refuses_a_json_template_that_does_not_parse_and_warns_about_unknown_names(api, app):
    status, body = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/",
            "postbacks": [{"trigger": "conversion", "url": 'https://pb.example/|JSON|{"a":"{clickid}",}'}],
        },
    )
    assert status == 422 and body["error"].startswith("postback url: the JSON body is not valid JSON")
    status, body = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/",
            "postbacks": [{"trigger": "conversion", "url": "https://pb.example/?a={adid}"}],
        },
    )
    assert status == 201 and body["postbacks"][0]["warnings"][0].startswith("{adid} is not a built-in token")
    status, body = api.post(
        "/api/v1/traffic-sources", json={"name": "S", "postback_url": "https://pb.example/?p={phone|md5}"}
    )
    assert status == 422 and body["error"].startswith("postback_url: {phone|md5}: unknown filter")


def test_presets_list_and_build(api, app):
    status, body = api.get("/api/v1/postbacks/presets")
    assert status == 200
    ids = [p["id"] for p in body["items"]]
    assert "facebook_conversion" in ids and "momentscience_advanced" in ids
    facebook = next(p for p in body["items"] if p["id"] == "facebook_conversion")
    assert facebook["trigger"] == "conversion"
    assert [(f["name"], f["required"]) for f in facebook["fields"]] == [
        ("pixel_id", True),
        ("access_token", True),
        ("api_version", True),
        ("test_event_code", False),
    ]
    status, built = api.post(
        "/api/v1/postbacks/presets/facebook_conversion",
        json={"pixel_id": "123", "access_token": "EAAB", "api_version": "v19.0"},
    )
    assert status == 200 and built["trigger"] == "conversion"
    assert built["url"].startswith("https://graph.facebook.com/v19.0/123/events?access_token=EAAB|JSON|")
    assert api.post("/api/v1/postbacks/presets/nope", json={}) == (404, {"error": "preset 'nope' not found"})
    assert api.post("/api/v1/postbacks/presets/facebook_conversion", json={"pixel_id": "1"}) == (
        422,
        {"error": "Access token (access_token) is required"},
    )
    assert (
        api.post("/api/v1/postbacks/presets/generic_get", json={"url": "https://x.example/|JSON|{}"})[0]
        == 422
    )


def test_delivery_routes_need_the_token(client):
    assert client.get("/api/v1/deliveries").status_code == 401
    assert client.post("/api/v1/postbacks/preview", json={"url": "https://x.example/"}).status_code == 401
