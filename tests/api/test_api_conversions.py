"""``GET /api/v1/conversions`` and ``GET /api/v1/postbacks`` (the inbound log): fields, filters, pages."""

from conversion_helpers import click_on


def test_conversion_fields(client, api, make_flow):
    flow = make_flow(offer_url="https://o.example/?cid={clickid}", payout="2", currency="EUR")
    click_id = click_on(client, flow)
    answer = client.get(
        "/postback?click_id=%s&goal=sale&sum=-1.5&tid=T1&stage=hold&email=a%%40b.example" % click_id
    ).get_json()
    status, page = api.get("/api/v1/conversions?click_id=" + click_id)
    assert status == 200 and page["next"] is None
    (item,) = page["items"]
    created = item["created_at"]
    assert created.endswith("Z") and item["updated_at"] == created
    (change,) = item["history"]
    assert item == {
        "id": answer["conversion_id"],
        "click_id": click_id,
        "flow_id": flow["id"],
        "event": "sale",
        "payout": "-1.50",
        "currency": "EUR",
        "status": "pending",
        "txid": "T1",
        "data": {"email": "a@b.example"},
        "created_at": created,
        "updated_at": created,
        "history": [
            {"at": created, "status": "pending", "payout": "-1.50", "inbound_id": change["inbound_id"]}
        ],
    }
    assert api.get("/api/v1/conversions/%d" % item["id"]) == (200, item)
    assert api.get("/api/v1/conversions/999") == (404, {"error": "conversion 999 not found"})


def test_conversions_filter_and_page_newest_first(client, api, make_flow):
    one = make_flow(offer_url="https://o.example/?cid={clickid}")
    two = make_flow(offer_url="https://o.example/?cid={clickid}")
    click_one, click_two = click_on(client, one), click_on(client, two)
    for event in ("a", "b", "c"):
        client.get("/postback?click_id=%s&event=%s" % (click_one, event))
    client.get("/postback?click_id=%s&event=z" % click_two)
    status, first = api.get("/api/v1/conversions?flow_id=%d&limit=2" % one["id"])
    assert [c["event"] for c in first["items"]] == ["c", "b"] and first["next"] is not None
    status, rest = api.get("/api/v1/conversions?flow_id=%d&limit=2&cursor=%s" % (one["id"], first["next"]))
    assert [c["event"] for c in rest["items"]] == ["a"] and rest["next"] is None
    assert [c["event"] for c in api.get("/api/v1/conversions?click_id=" + click_two)[1]["items"]] == ["z"]
    assert [c["event"] for c in api.get("/api/v1/conversions")[1]["items"]] == ["z", "c", "b", "a"]
    assert api.get("/api/v1/conversions?flow_id=x")[0] == 400


def test_inbound_log_fields_and_filters(client, api, make_flow):
    flow = make_flow(offer_url="https://o.example/?cid={clickid}")
    click_id = click_on(client, flow)
    ok = client.get("/postback?click_id=%s&payout=4" % click_id).get_json()
    client.post("/postback", data={"click_id": click_id, "payout": "abc"})
    client.get("/postback?click_id={clickid}")
    status, page = api.get("/api/v1/postbacks")
    assert status == 200
    assert [(e["http_status"], e["accepted"]) for e in page["items"]] == [
        (400, False),
        (400, False),
        (200, True),
    ]
    newest, refused, accepted = page["items"]
    assert set(accepted) >= {
        "id",
        "at",
        "ip",
        "method",
        "params",
        "http_status",
        "accepted",
        "reason",
        "conversion_id",
    }
    assert {
        k: accepted[k]
        for k in (
            "ip",
            "method",
            "params",
            "http_status",
            "accepted",
            "reason",
            "conversion_id",
            "endpoint",
            "flow_id",
            "click_id",
        )
    } == {
        "ip": "127.0.0.1",
        "method": "GET",
        "params": {"click_id": click_id, "payout": "4"},
        "http_status": 200,
        "accepted": True,
        "reason": "recorded",
        "conversion_id": ok["conversion_id"],
        "endpoint": "postback",
        "flow_id": flow["id"],
        "click_id": click_id,
    }
    assert (refused["method"], refused["reason"], refused["flow_id"]) == (
        "POST",
        "payout 'abc' is not a number",
        None,
    )
    assert [e["id"] for e in api.get("/api/v1/postbacks?accepted=false")[1]["items"]] == [
        newest["id"],
        refused["id"],
    ]
    assert [e["id"] for e in api.get("/api/v1/postbacks?accepted=true")[1]["items"]] == [accepted["id"]]
    # by flow: also the refusal of the flow's click that was stored before its flow was known
    assert [e["id"] for e in api.get("/api/v1/postbacks?flow_id=%d" % flow["id"])[1]["items"]] == [
        refused["id"],
        accepted["id"],
    ]
    assert [e["id"] for e in api.get("/api/v1/postbacks?click_id=" + click_id)[1]["items"]] == [
        refused["id"],
        accepted["id"],
    ]
    assert api.get("/api/v1/postbacks/%d" % refused["id"]) == (200, refused)
    assert api.get("/api/v1/postbacks?accepted=maybe")[0] == 400


def test_both_lists_need_the_bearer_token(client):
    for path in ("/api/v1/conversions", "/api/v1/postbacks", "/api/v1/conversions/1", "/api/v1/postbacks/1"):
        assert client.get(path).status_code == 401
