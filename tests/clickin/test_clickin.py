"""Click-in: ``GET /r/<key>`` records every field and redirects; bad input never breaks it."""

from decimal import Decimal
from urllib.parse import parse_qs, urlparse

from flask import request

from tracker.db import db, is_postgres
from tracker.models import Click, OrphanVisit

from conftest import Api

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def only_click():
    with db.connection_context():
        clicks = list(Click.select())
    assert len(clicks) == 1
    return clicks[0]


def test_click_is_recorded_and_redirected_with_its_id(client, make_flow):
    flow = make_flow(offer_url="https://offer.example/lp?cid={clickid}&s1={sub1}&geo={country}")
    client.set_cookie("_fbp", "fb.1.123.456")
    client.set_cookie("other", "x")
    response = client.get(
        "/r/%s?sub1=abc&utm_source=fb&utm_campaign=spring+sale&gclid=G-1&cost=0.35" % flow["key"],
        headers={
            "User-Agent": IPHONE,
            "Referer": "https://news.example/a",
            "Accept-Language": "de-DE,de;q=0.9,en;q=0.8",
        },
    )
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    click = only_click()
    location = urlparse(response.headers["Location"])
    assert location.netloc == "offer.example"
    assert parse_qs(location.query) == {"cid": [click.click_id], "s1": ["abc"]}
    assert click.flow_id == flow["id"]
    assert click.sub1 == "abc"
    assert click.utm_source == "fb" and click.utm_campaign == "spring sale"
    assert click.external_id == "G-1"
    assert click.cost == Decimal("0.35")
    assert click.referrer == "https://news.example/a"
    assert click.language == "de-DE"
    assert click.cookies == {"_fbp": "fb.1.123.456"}
    assert click.params["gclid"] == "G-1"
    assert click.device_type == "mobile" and click.os == "iOS" and click.brand == "Apple"
    assert click.is_unique is True and click.is_bot is False
    assert click.ip == "127.0.0.1"
    assert click.country == ""  # no GeoIP database: empty, no error


def test_click_ids_are_unique_time_ordered_lowercase_alphanumerics(client, make_flow):
    flow = make_flow()
    for _ in range(20):
        assert client.get("/r/" + flow["key"]).status_code == 302
    with db.connection_context():
        ids = [c.click_id for c in Click.select().order_by(Click.created_at, Click.click_id)]
    assert len(set(ids)) == 20
    assert all(len(i) <= 32 and set(i) <= set("0123456789abcdefghijklmnopqrstuvwxyz") for i in ids)
    prefixes = [i[:9] for i in ids]  # milliseconds; clicks in the same millisecond may sort either way
    assert prefixes == sorted(prefixes)


def test_second_click_of_same_visitor_is_not_unique(client, make_flow):
    flow = make_flow()
    client.get("/r/" + flow["key"], headers={"User-Agent": IPHONE})
    client.get("/r/" + flow["key"], headers={"User-Agent": IPHONE})
    client.get("/r/" + flow["key"], headers={"User-Agent": "other"})
    with db.connection_context():
        flags = [c.is_unique for c in Click.select().order_by(Click.created_at)]
    assert flags == [True, False, True]


def test_head_redirects_without_recording(client, make_flow):
    flow = make_flow()
    response = client.head("/r/" + flow["key"])
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://offer.example/lp?cid=")
    with db.connection_context():
        assert Click.select().count() == 0


def test_unknown_key_is_404_and_an_orphan_visit(client):
    response = client.get("/r/nope?sub1=x")
    assert response.status_code == 404
    assert response.get_json()["error"] == "no active flow with this key"
    with db.connection_context():
        orphan = OrphanVisit.get()
    assert (orphan.key, orphan.reason, orphan.params) == ("nope", "unknown", {"sub1": "x"})


def test_paused_flow_goes_to_its_fallback_and_counts_an_orphan(client, api, make_flow):
    flow = make_flow(fallback_url="https://fallback.example/")
    assert api.patch("/api/v1/flows/%d" % flow["id"], json={"paused": True})[0] == 200
    response = client.get("/r/" + flow["key"])
    assert response.status_code == 302
    assert response.headers["Location"] == "https://fallback.example/"
    with db.connection_context():
        assert Click.select().count() == 0
        assert [o.reason for o in OrphanVisit.select()] == ["paused"]


def test_global_fallback_for_unknown_keys(make_app):
    application = make_app(TRACKER_FALLBACK_URL="https://home.example/")
    response = application.test_client().get("/r/missing")
    assert (response.status_code, response.headers["Location"]) == (302, "https://home.example/")


def test_token_values_are_percent_encoded(client, make_flow):
    flow = make_flow(offer_url="https://offer.example/?s={sub2}&u={utm_content}&z=<sub3>")
    response = client.get(
        "/r/%s" % flow["key"], query_string={"sub2": "a b&c=d#e", "utm_content": "ü/ö?", "sub3": "<x>"}
    )
    query = urlparse(response.headers["Location"]).query
    assert "s=a%20b%26c%3Dd%23e" in query
    assert parse_qs(query) == {"s": ["a b&c=d#e"], "u": ["ü/ö?"], "z": ["<x>"]}


def test_traffic_source_maps_its_click_id_and_vars(client, api, make_flow):
    status, source = api.post(
        "/api/v1/traffic-sources",
        json={"name": "PropellerAds", "click_id_param": "visitor_id", "vars": {"var1": "zoneid"}},
    )
    assert status == 201
    flow = make_flow(traffic_source_id=source["id"], offer_url="https://o.example/?z={var1}&e={externalid}")
    response = client.get("/r/%s?visitor_id=V9&zoneid=777&var2=two&gclid=ignored" % flow["key"])
    assert parse_qs(urlparse(response.headers["Location"]).query) == {"z": ["777"], "e": ["V9"]}
    click = only_click()
    assert (click.external_id, click.var1, click.var2) == ("V9", "777", "two")


def test_external_id_falls_back_to_known_click_id_params(client, make_flow):
    flow = make_flow()
    client.get("/r/%s?fbclid=FB1&ttclid=TT1" % flow["key"])
    assert only_click().external_id == "FB1"


def test_trusted_proxy_header_gives_client_ip(make_app):
    client = make_app(TRACKER_TRUSTED_PROXIES=1).test_client()
    status, flow = Api(client).post("/api/v1/flows", json={"name": "f", "offer_url": "https://o.example/"})
    client.get("/r/" + flow["key"], headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1"})
    client.get("/r/" + flow["key"], headers={"X-Forwarded-For": "garbage"})
    with db.connection_context():
        assert [c.ip for c in Click.select().order_by(Click.created_at)] == ["198.51.100.1", "127.0.0.1"]


# Hostile input: each still gets its redirect, values are cut, nothing answers 500.


def test_three_thousand_parameters(client, make_flow):
    flow = make_flow()
    query = "&".join("p%d=v%d" % (i, i) for i in range(3000))
    response = client.get("/r/%s?sub1=first&%s" % (flow["key"], query))
    assert response.status_code == 302
    click = only_click()
    assert click.sub1 == "first"
    assert len(click.params) == 200
    assert "params" in click.cut


def test_a_200_kb_value_is_cut(client, make_flow):
    flow = make_flow(offer_url="https://o.example/?s={sub1}")
    response = client.get("/r/%s?sub1=%s&big=%s" % (flow["key"], "a" * 300, "b" * 200_000))
    assert response.status_code == 302
    click = only_click()
    assert click.sub1 == "a" * 255
    assert len(click.params["big"]) == 2000
    assert {"sub1", "params.big"} <= set(click.cut)


def test_invalid_utf8_and_nul_escapes(client, make_flow):
    flow = make_flow(offer_url="https://o.example/?s={sub1}")
    response = client.get("/r/%s?sub1=%%ff%%fe%%00x&sub2=a%%00b&k%%00=v" % flow["key"])
    assert response.status_code == 302
    click = only_click()
    assert "\x00" not in click.sub1 and click.sub1.endswith("x")
    assert click.sub2 == "ab"
    assert "params.sub2" in click.cut


def test_control_character_user_agent(client, make_flow):
    flow = make_flow()
    response = client.get("/r/" + flow["key"], headers={"User-Agent": "Mozilla\x01\x02\x7f\x1b[31m"})
    assert response.status_code == 302
    assert only_click().user_agent == "Mozilla\x01\x02\x7f\x1b[31m"


def test_unknown_key_with_hostile_characters(client):
    assert client.get("/r/%00%ff" + "x" * 5000).status_code == 404
    with db.connection_context():
        assert len(OrphanVisit.get().key) == 255


# The fast path: clicks are answered before Flask's request machinery.


def test_clicks_skip_flask_hooks_other_requests_do_not(app, make_flow):
    seen = []
    app.before_request(lambda: seen.append(request.path))
    flow = make_flow()
    client = app.test_client()
    assert client.get("/r/" + flow["key"]).status_code == 302
    assert client.head("/r/" + flow["key"]).status_code == 302
    assert client.get("/r/unknown-key").status_code == 404
    assert client.get("/healthz").status_code == 200
    assert seen == ["/api/v1/flows", "/healthz"]


def test_other_methods_and_an_empty_key_go_to_flask(client, make_flow):
    flow = make_flow()
    assert client.post("/r/" + flow["key"]).status_code == 405
    response = client.get("/r/")
    assert response.status_code == 404 and "error" in response.get_json()
    with db.connection_context():
        assert (Click.select().count(), OrphanVisit.select().count()) == (0, 0)


def test_click_leaves_the_connection_as_the_request_hooks_would(client, make_flow):
    flow = make_flow()
    assert client.get("/r/" + flow["key"]).status_code == 302
    # SQLite keeps its connection per thread; a PostgreSQL one goes back to the pool.
    assert db.is_closed() == is_postgres()


def test_redirect_headers_and_an_iri_offer_url_sent_as_a_uri(client, make_flow):
    flow = make_flow(offer_url="https://Bücher.example/straße?q={sub1}&x=a b")
    response = client.get("/r/%s?sub1=ö" % flow["key"])
    assert response.status_code == 302
    with db.connection_context():
        click_id = Click.get().click_id
    assert sorted(response.headers.items()) == sorted(
        [
            ("Location", "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%B6&x=a%20b"),
            ("Cache-Control", "no-store"),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "0"),
            ("Set-Cookie", "tid=%s; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax" % click_id),
        ]
    )
    assert response.data == b""
