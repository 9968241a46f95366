"""The API masks secret-looking query parameters, body fields and headers in every URL, body
and header it shows (DESIGN §4.8), unless asked with ?reveal=1 by a token that may:
TRACKER_API_TOKEN (the operator's, from the server's environment) or a token made with
``tracker token create NAME --reveal``. A masked value sent back keeps the stored secret."""

from tracker.accounts import create_api_token
from tracker.models import Delivery, Postback

from conftest import API_TOKEN

PB = "https://graph.example/pb?c={clickid}&access_token=EAAG-secret-1|POST|api_key=k-secret-2&x=1"
HEADERS = {"Access-Token": "tt-secret-3", "X-Plain": "visible"}


def make(api):
    status, flow = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/?token=offer-secret-4&c={clickid}",
            "postbacks": [{"trigger": "conversion", "url": PB, "headers": HEADERS}],
        },
    )
    assert status == 201, flow
    return flow


def test_a_flow_shows_its_postbacks_secrets_masked(api):
    flow = make(api)
    (postback,) = api.get("/api/v1/flows/%d" % flow["id"])[1]["postbacks"]
    assert postback["url"] == "https://graph.example/pb?c={clickid}&access_token=***|POST|api_key=***&x=1"
    assert postback["headers"] == {"Access-Token": "***", "X-Plain": "visible"}
    assert (
        api.get("/api/v1/flows/%d" % flow["id"])[1]["offer_url"] == "https://o.example/?token=***&c={clickid}"
    )


def test_the_operators_token_reveals_them(api):
    flow = make(api)
    status, shown = api.get("/api/v1/flows/%d?reveal=1" % flow["id"])
    assert status == 200
    assert shown["postbacks"][0]["url"] == PB
    assert shown["postbacks"][0]["headers"] == HEADERS
    assert shown["offer_url"] == "https://o.example/?token=offer-secret-4&c={clickid}"


def test_a_stored_token_reveals_only_when_made_to(api, client):
    flow = make(api)
    plain, revealing = create_api_token("bi"), create_api_token("ops", may_reveal=True)
    path = "/api/v1/flows/%d?reveal=1" % flow["id"]
    refused = client.get(path, headers={"Authorization": "Bearer " + plain})
    assert refused.status_code == 403
    assert refused.get_json() == {
        "error": "this token may not reveal secrets: use TRACKER_API_TOKEN or a token made with "
        "'tracker token create NAME --reveal'"
    }
    masked = client.get(path.split("?")[0], headers={"Authorization": "Bearer " + plain}).get_json()
    assert "EAAG-secret-1" not in str(masked)
    shown = client.get(path, headers={"Authorization": "Bearer " + revealing}).get_json()
    assert shown["postbacks"][0]["url"] == PB


def test_deliveries_show_url_body_and_headers_masked(api, client):
    flow = make(api)
    Delivery.create(
        flow_id=flow["id"],
        trigger="conversion",
        method="POST",
        url="https://graph.example/pb?c=1&access_token=EAAG-secret-1",
        headers={"Access-Token": "tt-secret-3"},
        body='{"data": [1], "api_key": "k-secret-2"}',
    )
    (item,) = api.get("/api/v1/deliveries")[1]["items"]
    assert item["url"] == "https://graph.example/pb?c=1&access_token=***"
    assert item["headers"] == {"Access-Token": "***"}
    assert item["body"] == '{"data": [1], "api_key": "***"}'
    shown = api.get("/api/v1/deliveries/%d?reveal=1" % item["id"])[1]
    assert (shown["url"], shown["body"]) == (
        "https://graph.example/pb?c=1&access_token=EAAG-secret-1",
        '{"data": [1], "api_key": "k-secret-2"}',
    )


def test_inbound_params_are_masked(api, client):
    client.get("/postback?click_id=zzz&secret=s3cr3t&api_key=abc")
    (item,) = api.get("/api/v1/postbacks")[1]["items"]
    assert (item["params"]["secret"], item["params"]["api_key"], item["params"]["click_id"]) == (
        "***",
        "***",
        "zzz",
    )
    # the inbound log never stored the secrets: even ?reveal=1 shows them masked
    assert api.get("/api/v1/postbacks?reveal=1")[1]["items"][0]["params"]["secret"] == "***"


def test_a_flow_read_masked_and_sent_back_keeps_its_secrets(api):
    flow = make(api)
    shown = api.get("/api/v1/flows/%d" % flow["id"])[1]
    postbacks = [
        {k: v for k, v in p.items() if k in ("trigger", "url", "headers")} for p in shown["postbacks"]
    ]
    status, body = api.patch(
        "/api/v1/flows/%d" % flow["id"], json={"postbacks": postbacks, "offer_url": shown["offer_url"]}
    )
    assert status == 200, body
    (postback,) = Postback.select()
    assert (postback.url, postback.headers) == (PB, HEADERS)
    assert api.get("/api/v1/flows/%d?reveal=1" % flow["id"])[1]["offer_url"] == (
        "https://o.example/?token=offer-secret-4&c={clickid}"
    )


def test_a_masked_value_nothing_stored_matches_is_refused(api):
    status, body = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/",
            "postbacks": [{"trigger": "conversion", "url": "https://pb.example/?access_token=***"}],
        },
    )
    assert (status, body) == (
        422,
        {"error": "postback url: access_token is *** (masked): send its real value"},
    )


def test_reveal_needs_a_valid_token_first(client):
    assert client.get("/api/v1/flows?reveal=1").status_code == 401
    assert (
        client.get("/api/v1/flows?reveal=1", headers={"Authorization": "Bearer " + API_TOKEN}).status_code
        == 200
    )
