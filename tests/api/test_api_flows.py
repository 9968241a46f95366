"""Management API: auth, flows, traffic sources, clicks; bad input gets a JSON 4xx."""

import time

import pytest

from tracker.accounts import create_api_token
from tracker.db import db


def test_requests_without_a_valid_token_get_401(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/flows", headers=headers)
        assert response.status_code == 401
        assert "Bearer" in response.get_json()["error"]


def test_a_created_token_works_and_only_its_hash_is_stored(client, app):
    with db.connection_context():
        token = create_api_token("automation")
        stored = db.execute_sql("SELECT token_hash FROM api_token").fetchall()
    assert token not in str(stored)
    response = client.get("/api/v1/flows", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200


def test_create_flow_returns_id_key_and_link(api):
    status, flow = api.post(
        "/api/v1/flows",
        json={
            "name": "Spring",
            "offer_url": "https://offer.example/?c={clickid}",
            "payout": "12.50",
            "events": [{"name": "lead", "conversion": True}, {"name": "deposit", "allow_duplicates": True}],
            "postbacks": [
                {"trigger": "conversion", "url": "https://ts.example/pb?c={externalid}", "events": ["lead"]}
            ],
        },
    )
    assert status == 201
    assert flow["link"] == "http://localhost/r/" + flow["key"]
    assert flow["payout"] == "12.50" and flow["currency"] == "USD"
    assert flow["events"] == [
        {"name": "lead", "conversion": True, "allow_duplicates": False},
        {"name": "deposit", "conversion": False, "allow_duplicates": True},
    ]
    assert flow["postbacks"][0]["url"] == "https://ts.example/pb?c={externalid}"
    assert api.get("/api/v1/flows/%d" % flow["id"]) == (200, flow)


def test_list_patch_delete_flow(api, make_flow):
    first, second = make_flow(name="a"), make_flow(name="b")
    status, listing = api.get("/api/v1/flows")
    assert status == 200
    assert [f["name"] for f in listing["items"]] == ["b", "a"] and listing["next"] is None
    status, page = api.get("/api/v1/flows?limit=1")
    assert [f["name"] for f in page["items"]] == ["b"] and page["next"] == second["id"]
    status, page = api.get("/api/v1/flows?limit=1&cursor=%d" % page["next"])
    assert [f["name"] for f in page["items"]] == ["a"]
    status, patched = api.patch("/api/v1/flows/%d" % first["id"], json={"name": "renamed", "payout": 3})
    assert (status, patched["name"], patched["payout"]) == (200, "renamed", "3.00")
    assert api.delete("/api/v1/flows/%d" % first["id"])[0] == 204
    assert api.get("/api/v1/flows/%d" % first["id"])[0] == 404
    assert [f["name"] for f in api.get("/api/v1/flows")[1]["items"]] == ["b"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({}, 422, "name is required"),
        ({"name": "x"}, 422, "offer_url is required"),
        ({"name": "x", "offer_url": "javascript:alert(1)"}, 422, "http:// or https://"),
        ({"name": "x", "offer_url": "https://o.example/", "payout": "abc"}, 422, "must be a number"),
        ({"name": "x", "offer_url": "https://o.example/", "payout": "NaN"}, 422, "finite"),
        ({"name": "x", "offer_url": "https://o.example/", "attribution_days": 0}, 422, "attribution_days"),
        ({"name": "x", "offer_url": "https://o.example/", "traffic_source_id": 999}, 422, "does not exist"),
        (
            {
                "name": "x",
                "offer_url": "https://o.example/",
                "postbacks": [{"trigger": "nope", "url": "https://a/"}],
            },
            422,
            "trigger must be one of",
        ),
        (
            {"name": "x", "offer_url": "https://o.example/", "events": [{"name": "a"}, {"name": "a"}]},
            422,
            "listed twice",
        ),
        (  # a bracket left open: urllib refuses to split it (was a 500)
            {
                "name": "x",
                "offer_url": "https://o.example/",
                "postbacks": [{"trigger": "conversion", "url": "http://[::1/p"}],
            },
            422,
            "url is not a valid URL: Invalid IPv6 URL",
        ),
        ({"name": "x", "offer_url": "https://[2001:db8::1/"}, 422, "offer_url is not a valid URL"),
        ({"name": "x", "offer_url": "https://o.example/", "colour": "red"}, 422, "unknown field"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_flow_bodies_get_a_reason(api, body, status, fragment):
    code, answer = api.post("/api/v1/flows", json=body)
    assert code == status
    assert fragment in answer["error"]


def test_non_json_body_is_400(client):
    response = client.post(
        "/api/v1/flows",
        data=b"\xff\x00not json",
        headers={"Authorization": "Bearer test-api-token", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]


def test_unknown_ids_and_bad_query_values(api):
    assert api.get("/api/v1/flows/12345")[0] == 404
    assert api.get("/api/v1/traffic-sources/12345")[0] == 404
    assert api.get("/api/v1/clicks/nope") == (404, {"error": "click 'nope' not found"})
    assert api.get("/api/v1/clicks?flow_id=abc")[0] == 400
    assert api.get("/api/v1/clicks?limit=0")[0] == 400
    assert api.get("/api/v1/flows?cursor=zz")[0] == 400
    assert api.get("/api/v1/nothing-here")[0] == 404


def test_traffic_source_validation(api):
    code, answer = api.post("/api/v1/traffic-sources", json={"name": "x", "vars": {"var11": "zone"}})
    assert code == 422 and "var1" in answer["error"]
    code, source = api.post(
        "/api/v1/traffic-sources",
        json={
            "name": "Zeropark",
            "click_id_param": "cid",
            "postback_url": "https://zp.example/pb?c={externalid}",
        },
    )
    assert code == 201
    code, patched = api.patch("/api/v1/traffic-sources/%d" % source["id"], json={"vars": {"var2": "target"}})
    assert (code, patched["vars"], patched["click_id_param"]) == (200, {"var2": "target"}, "cid")
    assert [s["name"] for s in api.get("/api/v1/traffic-sources")[1]["items"]] == ["Zeropark"]


def test_clicks_are_read_back_by_id_and_listed(client, api, make_flow):
    flow, other = make_flow(), make_flow()
    client.get("/r/%s?sub1=one" % flow["key"])
    time.sleep(0.002)  # newest first is by the click id's millisecond: two in one ms have no order
    client.get("/r/%s?sub1=two" % flow["key"])
    time.sleep(0.002)
    client.get("/r/%s?sub1=elsewhere" % other["key"])
    status, listing = api.get("/api/v1/clicks?flow_id=%d" % flow["id"])
    assert status == 200
    assert [c["sub1"] for c in listing["items"]] == ["two", "one"]
    click = listing["items"][0]
    assert api.get("/api/v1/clicks/" + click["click_id"]) == (200, click)
    assert click["flow_id"] == flow["id"] and click["created_at"].endswith("Z")
    expected = {
        "click_id",
        "flow_id",
        "created_at",
        "ip",
        "user_agent",
        "referrer",
        "language",
        "country",
        "country_name",
        "region",
        "city",
        "isp",
        "asn",
        "carrier",
        "connection_type",
        "device_type",
        "brand",
        "model",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "is_bot",
        "is_unique",
        "external_id",
        "sub1",
        "sub2",
        "sub3",
        "sub4",
        "sub5",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "cost",
        "params",
        "cookies",
    }
    assert expected <= set(click)
    page = api.get("/api/v1/clicks?limit=2")[1]
    rest = api.get("/api/v1/clicks?limit=2&cursor=" + page["next"])[1]
    assert [c["sub1"] for c in page["items"] + rest["items"]] == ["elsewhere", "two", "one"]


def test_the_seeds_words_for_triggers_and_payout_types(api):
    """Issue 9, point 12: ``All``, ``Debit`` and ``session`` were refused with 422."""
    postbacks = [
        {"trigger": "Session", "url": "https://pb.example/s?c={sessionid}"},
        {"trigger": "payout", "payout_type": "All", "url": "https://pb.example/a"},
        {"trigger": "Payout", "payout_type": "Payout", "url": "https://pb.example/p"},
        {"trigger": "PAYOUT", "payout_type": "Debit", "url": "https://pb.example/d"},
        {"trigger": "status", "statuses": ["Approved"], "url": "https://pb.example/st"},
    ]
    status, flow = api.post(
        "/api/v1/flows", json={"name": "seeds", "offer_url": "https://o.example/", "postbacks": postbacks}
    )
    assert status == 201, flow
    assert [(p["trigger"], p["payout_type"], p["statuses"]) for p in flow["postbacks"]] == [
        ("click", "all", []),
        ("payout", "all", []),
        ("payout", "payout", []),
        ("payout", "debit", []),
        ("status", "all", ["approved"]),
    ]
