"""Routes, rules and the weighted choice (DESIGN §4.7) as plain functions: rules cleaned and
compiled from tables of cases, a click routed through compiled routes without a database."""

import datetime
import itertools
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from tracker.clickin.routing import (
    RuleError,
    Target,
    Weighted,
    choose_lander_offer,
    clean_rule,
    compile_router,
    compile_rule,
    destination_url,
    fact_readers,
    local_clock,
    read_facts,
    route_click,
)
from tracker.models import Click, Flow, Route

CLICK = {
    "click_id": "0mabc",
    "country": "US",
    "region": "California",
    "language": "en-US",
    "device_type": "mobile",
    "os": "iOS",
    "browser": "Mobile Safari",
    "isp": "Comcast Cable",
    "asn": 7922,
    "ip": "203.0.113.9",
    "referrer": "https://m.facebook.com/story",
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)",
    "sub1": "banner7",
    "sub2": "",
    "utm_source": "FB",
    "var1": "zone 42",
    "is_bot": False,
    "is_unique": True,
    "params": {"zoneid": "4411", "Camp": "Spring"},
}
# 2024-05-06 is a Monday: 22:30 UTC is 00:30 on Tuesday in Berlin (summer time, +2).
MONDAY_LATE = (22, 1)
TUESDAY_EARLY = local_clock(datetime.datetime(2024, 5, 6, 22, 30), ZoneInfo("Europe/Berlin"))


def holds(rule, clock=MONDAY_LATE, **changes):
    """Whether ``rule`` holds for CLICK (with ``changes``) at ``clock``."""
    key, test = compile_rule(clean_rule(rule))
    return test(read_facts(fact_readers([key]), {**CLICK, **changes}, clock))


def rule(field, op, *values):
    return {"field": field, "op": op, "values": list(values)}


@pytest.mark.parametrize(
    "case, expected",
    [
        (rule("country", "in", "us", "CA"), True),
        (rule("country", "not_in", "US"), False),
        (rule("Country", "IN", " us "), True),  # field, op and values are trimmed, case does not matter
        (rule("os", "in", "android"), False),
        (rule("device_type", "not_in", "desktop", "tablet"), True),
        (rule("referrer", "contains", "FACEBOOK.com"), True),
        (rule("referrer", "not_contains", "facebook"), False),
        (rule("user_agent", "contains", "iphone os 17"), True),
        (rule("sub1", "contains", "nner"), True),
        (rule("sub2", "empty"), True),
        (rule("sub1", "empty"), False),
        (rule("sub2", "not_empty"), False),
        (rule("utm_source", "in", "fb"), True),
        (rule("var1", "in", "zone 42"), True),
        (rule("isp", "contains", "comcast"), True),
        (rule("language", "in", "en-us"), True),
        (rule("region", "not_in", "texas"), True),
        (rule("asn", "in", "AS7922"), True),
        (rule("asn", "in", "7922", "15169"), True),
        (rule("asn", "not_in", "7922"), False),
        (rule("ip", "in", "203.0.113.0/24"), True),
        (rule("ip", "in", "203.0.113.9"), True),
        (rule("ip", "in", "10.0.0.0/8", "2001:db8::/32"), False),
        (rule("ip", "not_in", "10.0.0.0/8"), True),
        (rule("ip", "contains", "203.0."), True),
        (rule("is_bot", "in", "true"), False),
        (rule("is_bot", "in", "false"), True),
        (rule("is_bot", "not_in", "TRUE"), True),
        (rule("is_unique", "in", "true"), True),
        (rule("is_unique", "in", True), True),  # a JSON boolean is read as its word
        (rule("param:zoneid", "in", "4411"), True),
        (rule("param:zoneid", "contains", "44"), True),
        (rule("param:camp", "not_empty"), False),  # parameter names are case-sensitive
        (rule("param:Camp", "in", "spring"), True),
        (rule("param:missing", "empty"), True),
        (rule("hour", "in", "22"), True),
        (rule("hour", "in", "9-17"), False),
        (rule("hour", "in", "20-23"), True),
        (rule("hour", "in", "22-3"), True),  # a range across midnight
        (rule("hour", "not_in", 22), False),
        (rule("weekday", "in", "mon"), True),
        (rule("weekday", "in", "Monday"), True),
        (rule("weekday", "in", "1"), True),
        (rule("weekday", "in", "sat", "sun"), False),
        (rule("weekday", "not_in", "tue"), True),
    ],
)
def test_rule_holds(case, expected):
    assert holds(case) is expected


@pytest.mark.parametrize(
    "changes, case, expected",
    [
        ({"asn": None}, rule("asn", "empty"), True),
        ({"ip": "::ffff:203.0.113.9"}, rule("ip", "in", "203.0.113.0/24"), True),
        ({"ip": "2001:db8::7"}, rule("ip", "in", "2001:db8::/32"), True),
        ({"ip": ""}, rule("ip", "in", "0.0.0.0/0"), False),
        ({"ip": ""}, rule("ip", "not_in", "10.0.0.0/8"), True),
        ({"is_bot": True}, rule("is_bot", "in", "true"), True),
        ({"country": ""}, rule("country", "in", "us"), False),
        ({"country": ""}, rule("country", "empty"), True),
        ({"params": {}}, rule("param:zoneid", "empty"), True),
        ({"referrer": "   "}, rule("referrer", "empty"), True),
    ],
)
def test_rule_on_other_clicks(changes, case, expected):
    assert holds(case, **changes) is expected


def test_hour_and_weekday_are_read_in_the_flows_zone():
    assert TUESDAY_EARLY == (0, 2)
    assert holds(rule("weekday", "in", "tue"), clock=TUESDAY_EARLY)
    assert holds(rule("hour", "in", "0"), clock=TUESDAY_EARLY)


@pytest.mark.parametrize(
    "case, reason",
    [
        ("country", "a rule must be an object {field, op, values}"),
        ({"field": "country", "op": "in"}, "values must be a non-empty list"),
        ({"field": "country", "op": "in", "values": []}, "values must be a non-empty list"),
        ({"field": "country", "op": "in", "values": "US"}, "values must be a non-empty list"),
        ({"field": "country", "op": "in", "values": [None]}, "values must be texts"),
        ({"field": "country", "op": "in", "values": [""]}, "each value must be a non-empty text"),
        ({"field": "country", "op": "equals", "values": ["US"]}, "op must be one of in, not_in, contains"),
        ({"field": "contry", "op": "in", "values": ["US"]}, "unknown field 'contry'"),
        ({"field": "", "op": "in", "values": ["US"]}, "field is required"),
        ({"field": 3, "op": "in", "values": ["US"]}, "field is required"),
        ({"field": "param:", "op": "in", "values": ["x"]}, "param: needs a query parameter name"),
        ({"field": "country", "op": "in", "values": ["US"], "value": "x"}, "unknown key 'value'"),
        ({"field": "hour", "op": "in", "values": ["24"]}, "hour takes hours 0 to 23"),
        ({"field": "hour", "op": "in", "values": ["nine"]}, "hour takes hours 0 to 23"),
        ({"field": "hour", "op": "contains", "values": ["9"]}, "hour takes the ops in and not_in"),
        ({"field": "weekday", "op": "in", "values": ["funday"]}, "weekday takes mon…sun"),
        ({"field": "weekday", "op": "empty"}, "weekday takes the ops in and not_in"),
        ({"field": "is_bot", "op": "in", "values": ["yes"]}, 'is_bot takes the values "true" and "false"'),
        ({"field": "is_unique", "op": "contains", "values": ["t"]}, "is_unique takes the ops in and not_in"),
        ({"field": "ip", "op": "in", "values": ["10.0.0.0/33"]}, "'10.0.0.0/33' is not an IP address"),
        ({"field": "ip", "op": "not_in", "values": ["banana"]}, "'banana' is not an IP address"),
        ({"field": "country", "op": "in", "values": ["x" * 501]}, "at most 500 characters"),
        ({"field": "country", "op": "in", "values": ["a\x00b"]}, "non-empty text"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(case, reason):
    with pytest.raises(RuleError) as refused:
        clean_rule(case)
    assert reason in str(refused.value)


def test_a_cleaned_rule_is_what_is_stored():
    assert clean_rule({"field": " Param:zoneid ", "op": "NOT_IN", "values": [" a ", "b", "a", 7]}) == {
        "field": "param:zoneid",
        "op": "not_in",
        "values": ["a", "b", "7"],
    }
    assert clean_rule({"field": "sub1", "op": "empty", "values": ["ignored"]}) == {
        "field": "sub1",
        "op": "empty",
        "values": [],
    }


def test_weighted_choice_follows_the_weights_and_zero_pauses():
    a, b, c = Target(1, "a"), Target(2, "b"), Target(3, "c")
    choice = Weighted([(a, 1), (b, 0), (c, 3)])
    draws = [i / 100 for i in range(100)]  # an even spread of rand() values
    picked = [choice.pick(iter([r]).__next__).id for r in draws]
    assert (picked.count(1), picked.count(2), picked.count(3)) == (25, 0, 75)
    assert choice.pick(lambda: 0.0, keep=3) is c  # a bound visitor keeps an active item
    assert choice.pick(lambda: 0.0, keep=2) is a  # but not a paused one
    assert Weighted([(a, 0)]).pick(lambda: 0.5) is None


# ---- a router compiled from Route rows (unsaved), a click routed through it --------------


def make_router(routes, timezone="", bind=False, window=24):
    flow = Flow(id=1, name="F", offer_url="https://default.example/?c={clickid}")
    flow.timezone, flow.bind_visitors, flow.unique_window_hours = timezone, bind, window
    rows = [
        Route(
            id=n,
            name=spec.get("name", "r%d" % n),
            enabled=spec.get("enabled", True),
            is_default=spec.get("default", False),
            action=spec.get("action", "redirect"),
            rules=[clean_rule(r) for r in spec.get("rules", [])],
            landers=spec.get("landers", []),
            offers=spec.get("offers", [{"offer_id": 1, "weight": 1}]),
        )
        for n, spec in enumerate(routes, 1)
    ]
    landers = {n: Target(n, "https://lander-%d.example/?go={click_url}" % n) for n in (1, 2)}
    offers = {
        n: Target(n, "https://offer-%d.example/?c={clickid}&o={offer.id}" % n, Decimal(n), "USD")
        for n in (1, 2, 3)
    }
    flow.router = compile_router(flow, rows, landers, offers, "UTC")
    return flow


def new_click(when=datetime.datetime(2024, 5, 6, 22, 30), **fields):
    click = Click(__no_default__=True)
    click.__data__ = {
        **CLICK,
        "flow": 1,
        "created_at": when,
        "route_id": None,
        "lander_id": None,
        "offer_id": None,
    }
    click.__data__.update(fields)
    return click


US = rule("country", "in", "US")
BOTS = rule("is_bot", "in", "true")


@pytest.mark.parametrize(
    "routes, fields, route_id",
    [
        ([{"rules": [US]}, {"rules": []}], {}, 1),  # first that holds wins
        ([{"rules": [rule("country", "in", "DE")]}, {"rules": [US]}], {}, 2),
        ([{"rules": [US], "enabled": False}, {"rules": []}], {}, 2),  # a disabled route is skipped
        ([{"rules": [US, rule("os", "in", "android")]}, {"rules": []}], {}, 2),  # every rule must hold
        ([{"default": True}, {"rules": [US]}], {}, 2),  # the default only when no other holds
        ([{"default": True}, {"rules": [US]}], {"country": "FR"}, 1),
        ([{"rules": [US]}], {"country": "FR"}, None),  # none holds, no default: the offer URL
        ([{"default": True, "enabled": False}], {}, None),
    ],
)
def test_the_first_enabled_route_whose_rules_all_hold_takes_the_click(routes, fields, route_id):
    flow, click = make_router(routes), new_click(**fields)
    decision = route_click(flow, click, rand=lambda: 0.0)
    assert click.route_id == route_id
    assert (decision.route.id if decision.route else None) == route_id


def test_the_url_is_the_landers_then_the_offers_then_the_flows():
    flow = make_router(
        [
            {"rules": [rule("sub1", "in", "lp")], "landers": [{"lander_id": 2, "weight": 1}]},
            {"rules": [rule("sub1", "in", "direct")], "offers": [{"offer_id": 3, "weight": 1}]},
            {"rules": [BOTS], "action": "not_found", "offers": []},
        ]
    )
    urls = {}
    for sub1 in ("lp", "direct", "none"):
        click = new_click(sub1=sub1)
        decision = route_click(flow, click)
        urls[sub1] = (
            destination_url(flow, click, decision, "https://t.example"),
            click.lander_id,
            click.offer_id,
        )
    assert urls == {
        "lp": ("https://lander-2.example/?go=https%3A%2F%2Ft.example%2Fclick%3Fclick_id%3D0mabc", 2, 1),
        "direct": ("https://offer-3.example/?c=0mabc&o=3", None, 3),
        "none": ("https://default.example/?c=0mabc", None, None),
    }
    bot = new_click(is_bot=True, sub1="x")
    assert destination_url(flow, bot, route_click(flow, bot)) is None  # not_found: a 404
    assert (bot.route_id, bot.lander_id, bot.offer_id) == (3, None, None)


def test_hour_rules_use_the_flows_time_zone():
    routes = [{"rules": [rule("weekday", "in", "tue"), rule("hour", "in", "0")]}]
    in_berlin, in_utc = new_click(), new_click()  # 2024-05-06 22:30 UTC, a Monday
    route_click(make_router(routes, timezone="Europe/Berlin"), in_berlin)
    route_click(make_router(routes), in_utc)  # the server's zone (UTC here): still Monday
    assert (in_berlin.route_id, in_utc.route_id) == (1, None)


def test_weights_split_clicks_between_landers_and_offers():
    flow = make_router(
        [
            {
                "landers": [{"lander_id": 1, "weight": 1}, {"lander_id": 2, "weight": 3}],
                "offers": [
                    {"offer_id": 1, "weight": 0},
                    {"offer_id": 2, "weight": 1},
                    {"offer_id": 3, "weight": 1},
                ],
            }
        ]
    )
    draws = itertools.cycle([i / 8 for i in range(8)])
    seen = []
    for _ in range(8):
        click = new_click()
        route_click(flow, click, rand=draws.__next__)
        seen.append((click.lander_id, click.offer_id))
    landers = [lander for lander, _ in seen]
    offers = [offer for _, offer in seen]
    assert (landers.count(1), landers.count(2)) == (2, 6)
    assert (offers.count(1), offers.count(2), offers.count(3)) == (0, 4, 4)


def test_bound_visitors_get_their_previous_lander_and_offer():
    spec = [
        {
            "landers": [{"lander_id": 1, "weight": 1}, {"lander_id": 2, "weight": 1}],
            "offers": [{"offer_id": 1, "weight": 1}, {"offer_id": 2, "weight": 1}],
        }
    ]
    asked = []

    def recall(click, window):
        asked.append(window)
        return (2, 2)

    bound = new_click()
    route_click(make_router(spec, bind=True, window=6), bound, recall, rand=lambda: 0.0)
    assert (bound.lander_id, bound.offer_id, bound.is_unique) == (2, 2, False)
    assert asked == [datetime.timedelta(hours=6)]
    free = new_click()
    route_click(make_router(spec), free, recall, rand=lambda: 0.0)  # no binding, no is_unique rule: no lookup
    assert (free.lander_id, free.offer_id, len(asked)) == (1, 1, 1)


def test_an_is_unique_rule_asks_for_the_visitors_previous_click():
    flow = make_router([{"rules": [rule("is_unique", "in", "false")], "action": "not_found", "offers": []}])
    repeat, first = new_click(), new_click()
    route_click(flow, repeat, lambda click, window: (None, None))
    route_click(flow, first, lambda click, window: None)
    assert (repeat.route_id, repeat.is_unique, first.route_id, first.is_unique) == (1, False, None, True)


def test_a_route_that_no_longer_compiles_is_skipped():
    flow = make_router([])
    broken = Route(id=9, name="gone", rules=[], landers=[], offers=[{"offer_id": 99, "weight": 1}])
    router = compile_router(flow, [broken], {}, {}, "UTC")
    assert router.routes == () and router.by_id == {} and router.default is None


def test_the_lander_click_goes_to_the_nth_offer_of_the_route_or_the_clicks_own():
    flow = make_router(
        [
            {
                "offers": [
                    {"offer_id": 1, "weight": 1},
                    {"offer_id": 2, "weight": 0},
                    {"offer_id": 3, "weight": 1},
                ]
            }
        ]
    )
    click = new_click()
    route_click(flow, click, rand=lambda: 0.9)
    assert click.offer_id == 3
    chosen = []
    for position in (None, 1, 4, 2, 0, 3):
        chosen.append((choose_lander_offer(flow, click, position).id, click.offer_id))
    assert chosen == [(3, 3), (1, 1), (1, 1), (2, 2), (2, 2), (3, 3)]  # no 4th, no 0th: the click's own
    unrouted = SimpleNamespace(route_id=None, offer_id=None)
    assert choose_lander_offer(flow, unrouted, 1) is None and unrouted.offer_id is None
