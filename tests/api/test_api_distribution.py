"""The traffic-distribution API (DESIGN §4.5, §4.7): offers, landers, a flow's routes, bot
rules and cloning, with exact status codes and JSON."""

import pytest

from tracker.db import db
from tracker.models import Route

OFFER = {"name": "Acme VPN", "url": "https://acme.example/?s={clickid}", "payout": "12.5", "currency": "eur"}
LANDER = {"name": "Quiz", "url": "https://lander.example/quiz?go={click_url}"}


def without_times(item):
    return {k: v for k, v in item.items() if k not in ("created_at", "updated_at")}


@pytest.fixture
def offer(api):
    status, body = api.post("/api/v1/offers", json=OFFER)
    assert status == 201, body
    return body


@pytest.fixture
def lander(api):
    status, body = api.post("/api/v1/landers", json=LANDER)
    assert status == 201, body
    return body


def test_offers_are_created_listed_read_changed_and_deleted(api, offer):
    assert without_times(offer) == {
        "id": offer["id"],
        "name": "Acme VPN",
        "url": "https://acme.example/?s={clickid}",
        "payout": "12.50",
        "currency": "EUR",
    }
    assert offer["created_at"].endswith("Z")
    second = api.post("/api/v1/offers", json={"name": "Plain", "url": "https://plain.example/"})[1]
    assert (second["payout"], second["currency"]) == ("0.00", "USD")
    assert api.get("/api/v1/offers") == (200, {"items": [second, offer], "next": None})
    assert api.get("/api/v1/offers?limit=1")[1] == {"items": [second], "next": second["id"]}
    assert api.get("/api/v1/offers/%d" % offer["id"]) == (200, offer)
    status, changed = api.patch("/api/v1/offers/%d" % offer["id"], json={"payout": 20, "name": "Acme VPN 2"})
    assert (status, changed["payout"], changed["name"], changed["url"]) == (
        200,
        "20.00",
        "Acme VPN 2",
        OFFER["url"],
    )
    assert api.delete("/api/v1/offers/%d" % offer["id"]) == (204, None)
    assert api.get("/api/v1/offers/%d" % offer["id"]) == (404, {"error": "offer %d not found" % offer["id"]})
    assert api.get("/api/v1/offers")[1]["items"] == [second]


def test_landers_are_created_listed_read_changed_and_deleted(api, lander):
    assert without_times(lander) == {"id": lander["id"], **LANDER}
    assert api.get("/api/v1/landers") == (200, {"items": [lander], "next": None})
    status, changed = api.patch("/api/v1/landers/%d" % lander["id"], json={"url": "https://l2.example/"})
    assert (status, changed["url"], changed["name"]) == (200, "https://l2.example/", "Quiz")
    assert api.delete("/api/v1/landers/%d" % lander["id"]) == (204, None)
    assert api.get("/api/v1/landers/%d" % lander["id"])[0] == 404


@pytest.mark.parametrize(
    "path, body, status, error",
    [
        (
            "/api/v1/offers",
            {"name": " ", "url": "ftp://x", "payout": "lots", "currency": "euros"},
            422,
            "name is required; url must be an http:// or https:// URL; payout must be a number; "
            "currency is longer than 3 characters",
        ),
        ("/api/v1/offers", {"name": "x", "url": "https://o.example/", "currency": "E1R"}, 422, None),
        ("/api/v1/offers", {"name": "x", "url": "https://o.example/", "payout": "NaN"}, 422, None),
        ("/api/v1/offers", {"name": "x"}, 422, "url is required"),
        (
            "/api/v1/offers",
            {"name": "x", "url": "https://o.example/", "weight": 3},
            422,
            "unknown field 'weight' (known: currency, name, payout, url)",
        ),
        ("/api/v1/offers", [1], 400, "the body must be a JSON object"),
        (
            "/api/v1/landers",
            {"name": "x", "url": "javascript:alert(1)"},
            422,
            "url must be an http:// or https:// URL",
        ),
        ("/api/v1/landers", {"name": "x", "url": "https://l.example/", "payout": 1}, 422, None),
        ("/api/v1/landers", {}, 422, "name is required; url is required"),
    ],
)
def test_bad_offers_and_landers_are_refused_naming_every_field(api, path, body, status, error):
    answer_status, answer = api.post(path, json=body)
    assert answer_status == status
    assert set(answer) == {"error"}
    if error is not None:
        assert answer["error"] == error


def test_unknown_ids_are_404(api):
    for path in ("/api/v1/offers/7", "/api/v1/landers/7", "/api/v1/offers/99999999999999999999"):
        assert api.get(path)[0] == 404
        assert api.patch(path, json={"name": "x"})[0] == 404
        assert api.delete(path)[0] == 404
    assert api.post("/api/v1/flows/99999999999999999999/clone")[0] == 404


def routed_flow(api, offer, lander, **extra):
    body = {
        "name": "Routed",
        "offer_url": "https://default.example/?c={clickid}",
        "routes": [
            {
                "name": "Bots",
                "rules": [{"field": "is_bot", "op": "in", "values": ["true"]}],
                "action": "not_found",
            },
            {
                "name": "US mobile",
                "rules": [
                    {"field": "country", "op": "in", "values": ["US", "CA"]},
                    {"field": "device_type", "op": "in", "values": ["mobile"]},
                ],
                "landers": [{"lander_id": lander["id"], "weight": 1}],
                "offers": [{"offer_id": offer["id"], "weight": 3}],
            },
            {"name": "Everyone else", "default": True, "offers": [{"offer_id": offer["id"]}]},
        ],
        **extra,
    }
    status, flow = api.post("/api/v1/flows", json=body)
    assert status == 201, flow
    return flow


def test_a_flow_keeps_its_routes_in_order(api, offer, lander):
    flow = routed_flow(api, offer, lander)
    ids = [route["id"] for route in flow["routes"]]
    assert flow["routes"] == [
        {
            "id": ids[0],
            "name": "Bots",
            "enabled": True,
            "default": False,
            "action": "not_found",
            "rules": [{"field": "is_bot", "op": "in", "values": ["true"]}],
            "landers": [],
            "offers": [],
        },
        {
            "id": ids[1],
            "name": "US mobile",
            "enabled": True,
            "default": False,
            "action": "redirect",
            "rules": [
                {"field": "country", "op": "in", "values": ["US", "CA"]},
                {"field": "device_type", "op": "in", "values": ["mobile"]},
            ],
            "landers": [{"lander_id": lander["id"], "weight": 1}],
            "offers": [{"offer_id": offer["id"], "weight": 3}],
        },
        {
            "id": ids[2],
            "name": "Everyone else",
            "enabled": True,
            "default": True,
            "action": "redirect",
            "rules": [],
            "landers": [],
            "offers": [{"offer_id": offer["id"], "weight": 1}],
        },
    ]
    assert (flow["unique_window_hours"], flow["timezone"], flow["bind_visitors"]) == (24, None, False)
    assert api.get("/api/v1/flows/%d" % flow["id"]) == (200, flow)


def test_routes_sent_back_with_their_ids_keep_them(api, offer, lander):
    flow = routed_flow(api, offer, lander)
    bots, us, rest = flow["routes"]
    us["enabled"] = False
    status, changed = api.patch("/api/v1/flows/%d" % flow["id"], json={"routes": [us, bots]})
    assert status == 200
    assert [(r["id"], r["name"], r["enabled"]) for r in changed["routes"]] == [
        (us["id"], "US mobile", False),
        (bots["id"], "Bots", True),
    ]
    with db.connection_context():
        assert Route.get_by_id(rest["id"]).deleted is True  # kept, for the reports' names
    status, cleared = api.patch("/api/v1/flows/%d" % flow["id"], json={"routes": []})
    assert (status, cleared["routes"]) == (200, [])


def test_offer_url_may_be_empty_only_with_a_default_route(api, offer):
    default = {"name": "All", "default": True, "offers": [{"offer_id": offer["id"], "weight": 1}]}
    status, flow = api.post("/api/v1/flows", json={"name": "No URL", "routes": [default]})
    assert (status, flow["offer_url"]) == (201, "")
    assert api.patch("/api/v1/flows/%d" % flow["id"], json={"routes": []}) == (
        422,
        {"error": "offer_url is required unless a route is the default"},
    )
    assert api.post("/api/v1/flows", json={"name": "x", "routes": []}) == (
        422,
        {"error": "offer_url is required unless a route is the default"},
    )


@pytest.mark.parametrize(
    "routes, error",
    [
        (
            [
                {
                    "name": "Geo",
                    "rules": [{"field": "contry", "op": "in", "values": ["US"]}],
                    "offers": "OFFERS",
                }
            ],
            "route 1 'Geo', rule 1: unknown field 'contry' (a click field such as country, device_type, os, "
            "isp, ip, sub1, utm_source, param:NAME, hour)",
        ),
        (
            [
                {"name": "A", "offers": "OFFERS"},
                {
                    "name": "Night",
                    "rules": [
                        {"field": "hour", "op": "in", "values": ["22-23"]},
                        {"field": "hour", "op": "in", "values": ["25"]},
                    ],
                    "offers": "OFFERS",
                },
            ],
            "route 2 'Night', rule 2: hour takes hours 0 to 23 or ranges like \"9-17\", not '25'",
        ),
        (
            [{"name": "Empty", "offers": []}],
            "route 1 'Empty': needs at least one offer with a weight above 0 (or the action not_found)",
        ),
        (
            [{"name": "Paused", "offers": [{"offer_id": "OFFER", "weight": 0}]}],
            "route 1 'Paused': needs at least one offer with a weight above 0 (or the action not_found)",
        ),
        (
            [{"name": "Ghost", "offers": [{"offer_id": 999, "weight": 1}]}],
            "route 1 'Ghost': offer 999 does not exist",
        ),
        (
            [{"name": "W", "offers": [{"offer_id": "OFFER", "weight": -1}]}],
            "route 1 'W': the weight of offer OFFER must be a whole number from 0 (paused) to 1000000",
        ),
        (
            [{"name": "W", "offers": [{"offer_id": "OFFER", "weight": 1.5}]}],
            "route 1 'W': the weight of offer OFFER must be a whole number from 0 (paused) to 1000000",
        ),
        (
            [
                {
                    "name": "Twice",
                    "offers": [{"offer_id": "OFFER", "weight": 1}, {"offer_id": "OFFER", "weight": 2}],
                }
            ],
            "route 1 'Twice': offer OFFER is listed twice",
        ),
        (
            [{"name": "X", "action": "block", "offers": "OFFERS"}],
            "route 1 'X': action must be one of redirect, not_found",
        ),
        (
            [{"name": "D", "default": True, "rules": [{"field": "os", "op": "empty"}], "offers": "OFFERS"}],
            "route 1 'D': the default route takes the clicks no other route takes, so it has no rules",
        ),
        (
            [
                {"name": "A", "default": True, "offers": "OFFERS"},
                {"name": "B", "default": True, "offers": "OFFERS"},
            ],
            "only one route can be the default (routes 1, 2 are)",
        ),
        ([{"offers": "OFFERS"}], "route 1: name is required"),
        (["US"], "route 1 must be an object {name, rules, offers, …}"),
        (
            [{"name": "K", "filters": [], "offers": "OFFERS"}],
            "route 1 'K': unknown key 'filters' (a route has id, "
            "name, enabled, rules, landers, offers, action, default)",
        ),
        ("all", "routes must be a list"),
    ],
)
def test_invalid_routes_are_refused_naming_the_route_and_rule(api, offer, routes, error):
    def fill(value):
        if value == "OFFERS":
            return [{"offer_id": offer["id"], "weight": 1}]
        if value == "OFFER":
            return offer["id"]
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    body = {"name": "F", "offer_url": "https://o.example/", "routes": fill(routes)}
    assert api.post("/api/v1/flows", json=body) == (422, {"error": error.replace("OFFER", str(offer["id"]))})


def test_every_mistake_is_named_at_once(api, offer):
    body = {
        "name": "",
        "offer_url": "https://o.example/",
        "timezone": "Mars/Olympus",
        "unique_window_hours": 0,
        "bind_visitors": "yes",
        "routes": [
            {
                "name": "R",
                "rules": [
                    {"field": "country", "op": "in", "values": []},
                    {"field": "os", "op": "in", "values": ["iOS"]},
                    {"field": "weekday", "op": "in", "values": ["someday"]},
                ],
                "offers": [{"offer_id": offer["id"], "weight": 1}],
            }
        ],
    }
    status, answer = api.post("/api/v1/flows", json=body)
    assert (status, answer["error"].split("; ")) == (
        422,
        [
            "name is required",
            "timezone 'Mars/Olympus' is not an IANA time zone such as Europe/Berlin",
            "unique_window_hours must be a whole number of hours from 1 to 8760",
            "bind_visitors must be true or false",
            "route 1 'R', rule 1: values must be a non-empty list",
            "route 1 'R', rule 3: weekday takes mon…sun (or 1 = Monday … 7 = Sunday), not 'someday'",
        ],
    )


def test_flow_settings_of_distribution(api, make_flow):
    flow = make_flow(timezone="America/New_York", unique_window_hours=6, bind_visitors=True)
    assert (flow["timezone"], flow["unique_window_hours"], flow["bind_visitors"]) == (
        "America/New_York",
        6,
        True,
    )
    status, flow = api.patch(
        "/api/v1/flows/%d" % flow["id"], json={"timezone": None, "unique_window_hours": None}
    )
    assert (status, flow["timezone"], flow["unique_window_hours"]) == (200, None, 24)


def test_an_offer_or_lander_in_use_cannot_be_deleted(api, offer, lander):
    flow = routed_flow(api, offer, lander)
    assert api.delete("/api/v1/offers/%d" % offer["id"]) == (
        409,
        {
            "error": "offer %d is used by route 'US mobile' of flow 'Routed': take it out of the route first"
            % offer["id"]
        },
    )
    assert api.delete("/api/v1/landers/%d" % lander["id"])[0] == 409
    assert api.delete("/api/v1/flows/%d" % flow["id"])[0] == 204  # a deleted flow's routes no longer count
    assert api.delete("/api/v1/offers/%d" % offer["id"]) == (204, None)
    assert api.delete("/api/v1/landers/%d" % lander["id"]) == (204, None)


def test_bot_rules_are_replaced_as_a_whole(api):
    assert api.get("/api/v1/bot-rules") == (200, {"ips": [], "user_agents": []})
    rules = {
        "ips": ["66.249.64.0/19", "203.0.113.7/32", "2001:db8::/32"],
        "user_agents": ["HeadlessChrome", "curl/"],
    }
    expected = {
        "ips": ["66.249.64.0/19", "203.0.113.7", "2001:db8::/32"],
        "user_agents": ["HeadlessChrome", "curl/"],
    }
    assert api.call("PUT", "/api/v1/bot-rules", json=rules) == (200, expected)
    assert api.get("/api/v1/bot-rules") == (200, expected)
    assert api.call("PUT", "/api/v1/bot-rules", json={"ips": ["10.0.0.0/8"]}) == (
        200,
        {"ips": ["10.0.0.0/8"], "user_agents": []},
    )
    assert api.call("PUT", "/api/v1/bot-rules", json={"ips": ["10.0.0.300"]}) == (
        422,
        {"error": "ips: '10.0.0.300' is not an IP address or CIDR block"},
    )
    assert api.call("PUT", "/api/v1/bot-rules", json=["10.0.0.0/8"]) == (
        400,
        {"error": "the body must be a JSON object"},
    )
    assert api.get("/api/v1/bot-rules")[1] == {"ips": ["10.0.0.0/8"], "user_agents": []}


def test_clone_copies_settings_routes_events_and_postbacks(api, offer, lander):
    flow = routed_flow(
        api,
        offer,
        lander,
        payout="2.50",
        timezone="Europe/Berlin",
        bind_visitors=True,
        events=[{"name": "lead", "conversion": True}],
        postbacks=[{"trigger": "conversion", "url": "https://ts.example/pb?c={externalid}"}],
    )
    status, copy = api.post("/api/v1/flows/%d/clone" % flow["id"])
    assert status == 201
    assert copy["id"] != flow["id"] and copy["key"] != flow["key"]
    assert copy["link"] == "http://localhost/r/" + copy["key"]
    assert copy["name"] == "Routed (copy)"
    assert {r["id"] for r in copy["routes"]}.isdisjoint(r["id"] for r in flow["routes"])
    assert [p["id"] for p in copy["postbacks"]] != [p["id"] for p in flow["postbacks"]]

    def same(f):
        out = {
            k: v for k, v in f.items() if k not in ("id", "key", "link", "name", "created_at", "updated_at")
        }
        out["routes"] = [{k: v for k, v in r.items() if k != "id"} for r in f["routes"]]
        out["postbacks"] = [{k: v for k, v in p.items() if k != "id"} for p in f["postbacks"]]
        return out

    assert same(copy) == same(flow)
    assert api.get("/api/v1/flows/%d" % flow["id"]) == (200, flow)  # the original is untouched
