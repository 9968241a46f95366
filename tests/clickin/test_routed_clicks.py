"""Routed clicks through the app (DESIGN §4.1, §4.7): ``/r/<key>`` to a lander or an offer with
the ``tid`` cookie, ``/click`` and ``/click/<n>`` on to the offer, ``not_found`` routes, bots,
visitor binding, an offer's payout on conversions, and the per-flow unique window."""

import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from tracker.clickin.flow_cache import load_flow
from tracker.clickin.record import record_click
from tracker.clickin.visitor import make_visitor
from tracker.db import db
from tracker.models import Click, Conversion, OrphanVisit

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/125.0 Mobile"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def setup(api):
    """Two offers, a lander, and a flow: bots get a 404, iPhones the lander (then an offer),
    others go straight to the second offer."""

    def post(path, body):
        status, answer = api.post(path, json=body)
        assert status == 201, answer
        return answer

    first = post(
        "/api/v1/offers",
        {
            "name": "First",
            "url": "https://one.example/?c={clickid}&o={offer.id}&l={lander.id}",
            "payout": "4",
            "currency": "EUR",
        },
    )
    second = post(
        "/api/v1/offers",
        {"name": "Second", "url": "https://two.example/?c={clickid}&o={offer.id}", "payout": "9"},
    )
    lander = post(
        "/api/v1/landers", {"name": "LP", "url": "https://lp.example/?go={click_url}&s={sub1}&l={lander.id}"}
    )
    flow = post(
        "/api/v1/flows",
        {
            "name": "Routed",
            "offer_url": "https://default.example/?c={clickid}",
            "payout": "1",
            "routes": [
                {
                    "name": "Bots",
                    "rules": [{"field": "is_bot", "op": "in", "values": ["true"]}],
                    "action": "not_found",
                },
                {
                    "name": "iPhone",
                    "rules": [{"field": "os", "op": "in", "values": ["iOS"]}],
                    "landers": [{"lander_id": lander["id"], "weight": 1}],
                    "offers": [
                        {"offer_id": first["id"], "weight": 1},
                        {"offer_id": second["id"], "weight": 0},
                    ],
                },
                {
                    "name": "Desktop",
                    "rules": [{"field": "device_type", "op": "in", "values": ["desktop"]}],
                    "offers": [{"offer_id": second["id"], "weight": 1}],
                },
            ],
        },
    )
    routes = {route["name"]: route["id"] for route in flow["routes"]}
    return {"flow": flow, "first": first, "second": second, "lander": lander, "routes": routes}


def clicks():
    with db.connection_context():
        return list(Click.select().order_by(Click.created_at, Click.click_id))


def query(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_a_routed_click_goes_to_the_lander_and_on_to_the_offer(client, setup):
    response = client.get("/r/%s?sub1=s7" % setup["flow"]["key"], headers={"User-Agent": IPHONE})
    [click] = clicks()
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://lp.example/?go=http%%3A%%2F%%2Flocalhost%%2Fclick%%3Fclick_id%%3D%s&s=s7&l=%d"
        % (click.click_id, setup["lander"]["id"])
    )
    assert (
        response.headers["Set-Cookie"]
        == "tid=%s; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax" % click.click_id
    )
    assert (click.route_id, click.lander_id, click.offer_id) == (
        setup["routes"]["iPhone"],
        setup["lander"]["id"],
        setup["first"]["id"],
    )
    assert click.lp_clicked_at is None

    onward = client.get(query(response.headers["Location"])["go"])  # the lander's link, {click_url}
    assert onward.status_code == 302
    assert query(onward.headers["Location"]) == {
        "c": click.click_id,
        "o": str(setup["first"]["id"]),
        "l": str(setup["lander"]["id"]),
    }
    [after] = clicks()
    assert after.lp_clicked_at is not None
    again = client.get("/click")  # the tid cookie finds the click
    assert again.status_code == 302 and again.headers["Location"] == onward.headers["Location"]
    assert clicks()[0].lp_clicked_at == after.lp_clicked_at  # counted once


def test_click_n_picks_the_routes_nth_offer_and_makes_it_the_clicks(client, setup):
    client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": IPHONE})
    [click] = clicks()
    response = client.get("/click/2?click_id=" + click.click_id)
    assert query(response.headers["Location"]) == {"c": click.click_id, "o": str(setup["second"]["id"])}
    assert clicks()[0].offer_id == setup["second"]["id"]  # the 2nd offer, though its weight is 0
    assert query(client.get("/click/9").headers["Location"])["o"] == str(
        setup["second"]["id"]
    )  # no 9th: its own


def test_a_conversion_before_click_n_is_reported_under_the_offer_click_n_picks(api, client, setup):
    """A conversion keeps a copy of its click's offer for reports; ``/click/<n>`` changing the
    click's offer after the conversion changes the copy too (that click's only), so the offer
    report still counts the conversion where a direct count of the raw rows does."""
    for sub1 in ("s7", "s8"):
        client.get("/r/%s?sub1=%s" % (setup["flow"]["key"], sub1), headers={"User-Agent": IPHONE})
    first, other = sorted(clicks(), key=lambda click: click.sub1)
    for click, event in ((first, "lead"), (other, "lead"), (first, "sale")):
        assert (
            client.get("/postback?click_id=%s&event=%s&payout=2" % (click.click_id, event)).status_code == 200
        )

    def by_offer():
        status, body = api.get("/api/v1/stats", query_string={"group_by": "offer", "basis": "click"})
        assert status == 200, body
        return {row["key"]: (row["clicks"], row["conversions"]) for row in body["items"]}

    assert by_offer() == {setup["first"]["id"]: (2, 3)}  # no events defined: each counts
    assert client.get("/click/2?click_id=" + first.click_id).status_code == 302
    assert by_offer() == {setup["second"]["id"]: (1, 2), setup["first"]["id"]: (1, 1)}
    with db.connection_context():
        copies = {(c.click_id, c.click_offer_id) for c in Conversion.select()}
    assert copies == {(first.click_id, setup["second"]["id"]), (other.click_id, setup["first"]["id"])}


def test_other_routes_and_the_default(client, setup):
    desktop = client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": DESKTOP})
    assert urlparse(desktop.headers["Location"]).netloc == "two.example"
    android = client.get(
        "/r/" + setup["flow"]["key"],
        headers={
            "User-Agent": "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/125.0 Mobile"
        },
    )
    assert urlparse(android.headers["Location"]).netloc == "default.example"
    routed, default = clicks()
    assert (routed.route_id, routed.lander_id, routed.offer_id) == (
        setup["routes"]["Desktop"],
        None,
        setup["second"]["id"],
    )
    assert (default.route_id, default.lander_id, default.offer_id) == (None, None, None)


@pytest.mark.parametrize("user_agent", [GOOGLEBOT, ""])
def test_bots_are_recorded_and_routed_away_with_a_404(client, setup, user_agent):
    response = client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": user_agent})
    assert (response.status_code, response.get_json()) == (404, {"error": "no offer for this click"})
    assert "Set-Cookie" not in response.headers
    [click] = clicks()
    assert (click.is_bot, click.route_id, click.offer_id) == (True, setup["routes"]["Bots"], None)


def test_the_bot_lists_mark_clicks_as_bots(client, api, setup):
    assert api.call("PUT", "/api/v1/bot-rules", json={"ips": ["127.0.0.0/8"], "user_agents": []})[0] == 200
    assert client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": IPHONE}).status_code == 404
    assert api.call("PUT", "/api/v1/bot-rules", json={"ips": [], "user_agents": ["iphone os 17"]})[0] == 200
    assert client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": IPHONE}).status_code == 404
    assert api.call("PUT", "/api/v1/bot-rules", json={"ips": [], "user_agents": []})[0] == 200
    assert client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": IPHONE}).status_code == 302
    assert [c.is_bot for c in clicks()] == [True, True, False]


def test_head_answers_the_routed_way_without_recording(client, setup):
    response = client.head("/r/" + setup["flow"]["key"], headers={"User-Agent": IPHONE})
    assert response.status_code == 302 and response.headers["Location"].startswith("https://lp.example/")
    assert "Set-Cookie" not in response.headers and clicks() == []


def orphans():
    with db.connection_context():
        return [(o.key, o.reason) for o in OrphanVisit.select().order_by(OrphanVisit.id)]


def test_an_unknown_click_answers_404_and_is_an_orphan_visit(client):
    for path in (
        "/click?click_id=0mnosuchclick",
        "/click",
        "/click/2?click_id=%00bad",
        "/click?click_id=" + "z" * 40,
    ):
        response = client.get(path)
        assert (response.status_code, response.get_json()) == (
            404,
            {"error": "no click with this click_id"},
        ), path
    assert orphans() == [
        ("0mnosuchclick", "unknown click"),
        ("", "unknown click"),
        ("bad", "unknown click"),
        ("z" * 40, "unknown click"),
    ]


def test_an_unknown_click_goes_to_the_fallback_url(make_app):
    client = make_app(TRACKER_FALLBACK_URL="https://fallback.example/").test_client()
    response = client.get("/click?click_id=0mnosuchclick")
    assert (response.status_code, response.headers["Location"]) == (302, "https://fallback.example/")
    assert orphans() == [("0mnosuchclick", "unknown click")]


def test_a_click_on_a_flow_without_routes_goes_on_to_its_offer_url(client, make_flow):
    flow = make_flow(offer_url="https://plain.example/?c={clickid}")
    first = client.get("/r/" + flow["key"], headers={"User-Agent": DESKTOP})
    [click] = clicks()
    assert first.headers["Set-Cookie"].startswith("tid=%s;" % click.click_id)
    onward = client.get("/click")
    assert onward.headers["Location"] == "https://plain.example/?c=" + click.click_id
    assert clicks()[0].lp_clicked_at is not None


def test_a_conversion_defaults_to_the_payout_of_the_clicks_offer(client, setup):
    by_agent = {}
    for agent in (IPHONE, DESKTOP, ANDROID):
        client.get("/r/" + setup["flow"]["key"], headers={"User-Agent": agent})
        by_agent[agent] = next(c for c in clicks() if c.user_agent == agent).click_id
    for agent in (IPHONE, DESKTOP, ANDROID):
        assert client.get("/postback?click_id=" + by_agent[agent]).get_json()["status"] == "ok"
    assert client.get("/postback?click_id=%s&event=sale&payout=3" % by_agent[IPHONE]).status_code == 200
    with db.connection_context():
        got = [
            (c.click_id, c.event, c.payout, c.currency) for c in Conversion.select().order_by(Conversion.id)
        ]
    assert got == [
        (by_agent[IPHONE], "conversion", Decimal("4"), "EUR"),  # the first offer's payout and currency
        (by_agent[DESKTOP], "conversion", Decimal("9"), "USD"),
        (by_agent[ANDROID], "conversion", Decimal("1"), "USD"),  # no offer: the flow's
        (by_agent[IPHONE], "sale", Decimal("3"), "EUR"),  # a payout sent wins; the offer's currency stays
    ]


def test_bound_visitors_keep_their_lander_and_offer(api, client, setup):
    flow, first, second = setup["flow"], setup["first"], setup["second"]
    even = [{"offer_id": first["id"], "weight": 1}, {"offer_id": second["id"], "weight": 1}]
    routes = [dict(flow["routes"][1], rules=[], offers=even)]
    assert (
        api.patch("/api/v1/flows/%d" % flow["id"], json={"routes": routes, "bind_visitors": True})[0] == 200
    )
    client.get("/r/" + flow["key"], headers={"User-Agent": IPHONE})
    taken = clicks()[0].offer_id
    other = second["id"] if taken == first["id"] else first["id"]
    # Now the other offer takes nearly every draw; the bound visitor still gets the first one's.
    skewed = [{"offer_id": taken, "weight": 1}, {"offer_id": other, "weight": 1000000}]
    assert (
        api.patch("/api/v1/flows/%d" % flow["id"], json={"routes": [dict(routes[0], offers=skewed)]})[0]
        == 200
    )
    for _ in range(3):
        client.get("/r/" + flow["key"], headers={"User-Agent": IPHONE})
    client.get("/r/" + flow["key"], headers={"User-Agent": IPHONE + " other"})  # another visitor
    assert [c.offer_id for c in clicks()] == [taken, taken, taken, taken, other]
    assert [c.is_unique for c in clicks()] == [True, False, False, False, True]


def test_the_flows_unique_window_decides_is_unique(app, make_flow):
    flow = make_flow(unique_window_hours=2)
    visitor = make_visitor("198.51.100.7", DESKTOP, "", "", [], {})
    start = datetime.datetime(2024, 5, 1, 12, 0)
    with db.connection_context():
        loaded = load_flow(flow["key"])
        unique = [
            record_click(loaded, visitor, now=start + datetime.timedelta(minutes=minutes))[0].is_unique
            for minutes in (0, 90, 250)
        ]
    assert unique == [True, False, True]
