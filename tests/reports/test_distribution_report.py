"""Reports by route, lander and offer with lp_views, lp_clicks, lp_ctr; bots left out of the
figures (but not of cost) unless asked, and counted in bot_clicks (DESIGN §4.5, §4.7)."""

from decimal import Decimal

import pytest

from tracker.models import Lander, Offer, Route

from factories import add_click, add_conversion, add_flow, at

FIELDS = (
    "key",
    "clicks",
    "unique_clicks",
    "conversions",
    "revenue",
    "cost",
    "lp_views",
    "lp_clicks",
    "lp_ctr",
    "bot_clicks",
)


def figures(rows):
    return [tuple(row[name] for name in FIELDS) for row in rows]


@pytest.fixture
def data(app):
    """A flow with two routes: clicks through two landers to two offers, a bot, a direct click."""
    flow = add_flow("Routed")
    lp_a = Lander.create(name="A", url="https://a.example/")
    lp_b = Lander.create(name="B", url="https://b.example/")
    o1 = Offer.create(name="O1", url="https://o1.example/")
    o2 = Offer.create(name="O2", url="https://o2.example/")
    r1 = Route.create(flow=flow, name="R1", position=0)
    r2 = Route.create(flow=flow, name="R2", position=1)
    clicked = at("2024-05-01 10:05")

    def click(route, lander, offer, when="2024-05-01 10:00", **fields):
        return add_click(
            flow,
            when,
            route_id=route.id if route else None,
            lander_id=lander.id if lander else None,
            offer_id=offer.id if offer else None,
            **fields,
        )

    c1 = click(r1, lp_a, o1, lp_clicked_at=clicked, cost=Decimal("0.10"))
    click(r1, lp_a, o1, cost=Decimal("0.10"))
    c3 = click(r1, lp_b, o2, lp_clicked_at=clicked, cost=Decimal("0.10"))
    click(r1, lp_b, o2, lp_clicked_at=clicked, cost=Decimal("0.10"), is_unique=False)
    bot = click(r1, lp_a, o1, lp_clicked_at=clicked, cost=Decimal("0.10"), is_bot=True, device_type="bot")
    c6 = click(r2, None, o2, cost=Decimal("0.20"))
    click(None, None, None, cost=Decimal("0.05"))  # no route held: the flow's offer URL
    add_conversion(c1, "4.00")
    add_conversion(c3, "6.00")
    add_conversion(c6, "2.00")
    add_conversion(bot, "1.00")  # a converting bot: left out with its click
    return {"flow": flow, "routes": (r1, r2), "landers": (lp_a, lp_b), "offers": (o1, o2)}


def stats(api, **args):
    status, body = api.get("/api/v1/stats", query_string=args)
    assert status == 200, body
    return body


def test_by_lander(api, data):
    lp_a, lp_b = data["landers"]
    body = stats(api, group_by="lander")
    assert figures(body["items"]) == [
        (lp_a.id, 2, 2, 1, "4.00", "0.30", 2, 1, "50.00", 1),
        (lp_b.id, 2, 1, 1, "6.00", "0.20", 2, 2, "100.00", 0),
        (None, 2, 2, 1, "2.00", "0.25", 0, 0, None, 0),
    ]
    assert figures([dict(body["totals"], key=None)]) == [(None, 6, 5, 3, "12.00", "0.75", 4, 3, "75.00", 1)]


def test_by_offer_and_by_route(api, data):
    (o1, o2), (r1, r2) = data["offers"], data["routes"]
    assert figures(stats(api, group_by="offer")["items"]) == [
        (o2.id, 3, 2, 2, "8.00", "0.40", 2, 2, "100.00", 0),
        (o1.id, 2, 2, 1, "4.00", "0.30", 2, 1, "50.00", 1),
        (None, 1, 1, 0, "0.00", "0.05", 0, 0, None, 0),
    ]
    assert figures(stats(api, group_by="route")["items"]) == [
        (r1.id, 4, 3, 2, "10.00", "0.50", 4, 3, "75.00", 1),
        (r2.id, 1, 1, 1, "2.00", "0.20", 0, 0, None, 0),
        (None, 1, 1, 0, "0.00", "0.05", 0, 0, None, 0),
    ]


def test_include_bots_counts_them_and_their_conversions(api, data):
    lp_a = data["landers"][0]
    with_bots = stats(api, group_by="lander", include_bots="1")["items"]
    assert figures(with_bots)[0] == (lp_a.id, 3, 3, 2, "5.00", "0.30", 3, 2, "66.67", 1)
    assert stats(api, group_by="lander", include_bots="0")["items"][0]["clicks"] == 2


def test_filters_by_route_lander_and_offer(api, data):
    (r1, _), (lp_a, _), (o1, o2) = data["routes"], data["landers"], data["offers"]
    assert figures(stats(api, group_by="offer", route_id=r1.id)["items"]) == [
        (o1.id, 2, 2, 1, "4.00", "0.30", 2, 1, "50.00", 1),
        (o2.id, 2, 1, 1, "6.00", "0.20", 2, 2, "100.00", 0),
    ]
    assert [row["key"] for row in stats(api, group_by="offer", lander_id=lp_a.id)["items"]] == [o1.id]
    assert stats(api, group_by="day", offer_id=o2.id)["totals"]["clicks"] == 3


@pytest.mark.parametrize(
    "args, error",
    [
        ({"include_bots": "maybe"}, "include_bots must be 1 or 0"),
        ({"route_id": "x"}, "route_id must be a whole number"),
        ({"offer_id": "9" * 30}, "offer_id must be a whole number"),
        ({"group_by": "landing"}, None),
    ],
)
def test_bad_report_arguments_are_400(api, args, error):
    status, body = api.get("/api/v1/stats", query_string=args)
    assert status == 400 and set(body) == {"error"}
    if error:
        assert body["error"] == error
