"""``GET /api/v1/stats`` of DESIGN §4.5: several dimensions, time zones, basis, filters,
comparison, paging with totals, currencies, and its 400s; ``POST /api/v1/costs`` and the
currency rates; ISO 4217 wherever a currency comes in."""

import base64
import datetime
import re
from decimal import Decimal

import pytest

from tracker.api.shapes import stats_row
from tracker.currency import replace_rates
from tracker.models import Click, Conversion, Flow, InboundRequest, TrafficSource
from tracker.reports import rollups
from tracker.reports.queries import parse_query, run_stats

from conversion_helpers import click_on
from factories import add_click, add_conversion, add_flow


def stats(api, **args):
    status, body = api.get("/api/v1/stats", query_string=args)
    assert status == 200, body
    return body


def pick(rows, *names):
    return [tuple(row[name] for name in names) for row in rows]


def raw_then_rolled_up(now=datetime.datetime(2024, 6, 1)):
    """Yields "raw", then "rolled up" once the worker has rolled up until ``now``: a loop body
    asserts the same report read from the raw rows and from the rollups."""
    yield "raw"
    rollups.advance(now=now)
    yield "rolled up"


@pytest.fixture
def two_days(app):
    """Flow A: US/Android ×2 (one converts 10.00), US/iOS, DE/Android; flow B: FR/iOS, a bot.
    May 1 and 2, 2024, plus the same again a week before (for compare)."""
    a, b = add_flow("A"), add_flow("B")
    for offset in (0, 7):
        day = datetime.date(2024, 5, 1) - datetime.timedelta(days=offset)

        def at(hour, minute=0, day=day):
            return "%s %02d:%02d" % (day.isoformat(), hour, minute)

        c1 = add_click(a, at(10), country="US", os="Android", sub1="s1", cost=Decimal("0.50"))
        add_click(a, at(11), country="US", os="Android", sub1="s2", cost=Decimal("0.50"))
        add_click(a, at(23, 30), country="US", os="iOS", sub1="s1", cost=Decimal("0.50"))
        c4 = add_click(b, at(12), country="FR", os="iOS", sub1="s3", cost=Decimal("1.00"))
        add_click(b, at(13), country="FR", os="iOS", is_bot=True, cost=Decimal("0.25"))
        add_conversion(c1, "10.00")
        add_conversion(c4, "4.00", status="pending")
        add_conversion(c4, "0", event="lead", is_conversion=False, dedup_key="lead")
        if offset == 0:
            add_click(a, "2024-05-02 09:00", country="DE", os="Android", sub1="s2", cost=Decimal("0.20"))
    return a, b


def test_three_dimensions_give_keys_in_order_and_totals(two_days, api):
    body = stats(api, group_by="country,os,sub1", **{"from": "2024-05-01", "to": "2024-05-02"})
    # most clicks first; ties by key (not by conversions: a page the database picks by clicks
    # could not break them so, and a page must be that slice of the whole report)
    assert pick(body["items"], "keys", "key", "clicks", "conversions", "revenue") == [
        (["DE", "Android", "s2"], "s2", 1, 0, "0.00"),
        (["FR", "iOS", "s3"], "s3", 1, 0, "0.00"),
        (["US", "Android", "s1"], "s1", 1, 1, "10.00"),
        (["US", "Android", "s2"], "s2", 1, 0, "0.00"),
        (["US", "iOS", "s1"], "s1", 1, 0, "0.00"),
        (["FR", "iOS", ""], "", 0, 0, "0.00"),  # the bot: no clicks, but its cost and bot_clicks
    ]
    totals = body["totals"]
    assert (totals["clicks"], totals["bot_clicks"], totals["cost"], totals["pending"], totals["events"]) == (
        5,
        1,
        "2.95",
        1,
        1,
    )
    assert (totals["cpa"], totals["cpc"], totals["currency"], totals["unconverted"]) == (
        "2.95",
        "0.59",
        "USD",
        {},
    )


def test_bots_are_out_unless_asked_and_their_cost_stays(two_days, api):
    args = {"group_by": "flow", "from": "2024-05-01", "to": "2024-05-01"}
    a, b = two_days
    assert pick(stats(api, **args)["items"], "key", "clicks", "bot_clicks", "cost") == [
        (a.id, 3, 0, "1.50"),
        (b.id, 1, 1, "1.25"),
    ]
    assert pick(stats(api, include_bots="1", **args)["items"], "key", "clicks", "bot_clicks") == [
        (a.id, 3, 0),
        (b.id, 2, 1),
    ]


def test_time_zone_moves_a_late_click_to_the_next_local_day(two_days, api):
    args = {"group_by": "day", "from": "2024-05-01", "to": "2024-05-02"}
    assert pick(stats(api, **args)["items"], "key", "clicks") == [("2024-05-01", 4), ("2024-05-02", 1)]
    tokyo = stats(api, tz="Asia/Tokyo", **args)["items"]  # 23:30 UTC on May 1 is May 2 in Tokyo
    assert pick(tokyo, "key", "clicks") == [("2024-05-01", 3), ("2024-05-02", 2)]
    # the period itself is in the zone: New York's May 1 starts at 04:00 UTC
    ny = stats(api, tz="America/New_York", group_by="hour", **{"from": "2024-05-01", "to": "2024-05-01"})
    assert pick(ny["items"], "key", "clicks") == [
        ("2024-05-01 06:00", 1),
        ("2024-05-01 07:00", 1),
        ("2024-05-01 08:00", 1),
        ("2024-05-01 09:00", 0),  # the bot
        ("2024-05-01 19:00", 1),
    ]


def test_basis_conversion_counts_it_on_its_own_day(app, api):
    flow = add_flow()
    click = add_click(flow, "2024-05-01 10:00")
    add_conversion(click, "5.00", when="2024-05-03 08:00")
    args = {"group_by": "day", "from": "2024-05-01", "to": "2024-05-03"}
    assert pick(stats(api, **args)["items"], "key", "clicks", "conversions") == [("2024-05-01", 1, 1)]
    assert pick(stats(api, basis="conversion", **args)["items"], "key", "clicks", "conversions") == [
        ("2024-05-01", 1, 0),
        ("2024-05-03", 0, 1),
    ]


def test_dimension_filters_repeat_and_narrow(two_days, api):
    args = {"group_by": "sub1", "from": "2024-05-01", "to": "2024-05-02"}
    body = stats(api, **args, **{"f.country": ["US", "DE"], "f.os": "Android"})
    assert pick(body["items"], "key", "clicks") == [("s2", 2), ("s1", 1)]
    assert body["totals"]["clicks"] == 3
    by_day = stats(
        api, group_by="country", **{"f.day": "2024-05-02", "from": "2024-04-01", "to": "2024-05-31"}
    )
    assert pick(by_day["items"], "key", "clicks") == [("DE", 1)]


def test_compare_previous_adds_the_period_before(two_days, api):
    body = stats(api, group_by="country", compare="previous", **{"from": "2024-05-01", "to": "2024-05-01"})
    assert [(row["key"], row["clicks"], row["previous"]["clicks"]) for row in body["items"]] == [
        ("US", 3, 0),
        ("FR", 1, 0),
    ]
    body = stats(api, group_by="country", compare="previous", **{"from": "2024-04-25", "to": "2024-05-01"})
    assert body["totals"]["previous"]["clicks"] == 4  # April 18–24: one day of clicks (April 24)
    assert body["totals"]["previous"]["revenue"] == "10.00"


def test_limit_order_and_cursor_page_with_totals_of_every_row(two_days, api):
    args = {"group_by": "sub1", "from": "2024-04-01", "to": "2024-05-31", "order": "revenue", "limit": "1"}
    first = stats(api, **args)
    assert pick(first["items"], "key", "revenue") == [("s1", "20.00")]
    assert first["next"] == "1" and first["totals"]["clicks"] == 9
    second = stats(api, cursor=first["next"], **args)
    assert [row["key"] for row in second["items"]] == ["s2"]
    assert second["next"] == "2"
    # a high-cardinality dimension is paged by default
    flow = add_flow("many")
    for n in range(120):
        add_click(flow, "2024-05-01 10:00", external_id="x%03d" % n)
    day = {"from": "2024-05-01", "to": "2024-05-01"}
    body = stats(api, group_by="external_id", **day)
    # in the order of the values (walked along an index), with the totals of every row
    assert [row["key"] for row in body["items"]] == [""] + ["x%03d" % n for n in range(99)]
    assert body["totals"]["clicks"] == 124
    rest = stats(api, group_by="external_id", cursor=body["next"], **day)
    assert [row["key"] for row in rest["items"]] == ["x%03d" % n for n in range(99, 120)]
    assert rest["next"] is None and rest["totals"]["clicks"] == 124
    # ordered by a figure: the offset cursor, as for every other dimension
    top = stats(api, group_by="external_id", order="clicks", limit="1", **day)
    assert pick(top["items"], "key", "clicks") == [("", 4)] and top["next"] == "1"


def test_revenue_in_other_currencies_uses_rates_or_stays_apart(app, api):
    flow = add_flow()
    status, _ = api.call("PUT", "/api/v1/currency-rates", json={"EUR": "1.10"})
    assert status == 200
    click = add_click(flow, "2024-05-01 10:00")
    add_conversion(click, "10.00", currency="EUR", dedup_key="a")  # no rate stored with it: today's
    add_conversion(click, "10.00", currency="EUR", dedup_key="b", rate="1.20", report_payout=Decimal("12"))
    add_conversion(click, "59.50", currency="USD", dedup_key="c")
    add_conversion(click, "437.00", currency="GBP", dedup_key="d")
    body = stats(api, group_by="flow")
    assert (body["items"][0]["revenue"], body["items"][0]["unconverted"]) == ("82.50", {"GBP": "437.00"})
    assert body["totals"]["unconverted"] == {"GBP": "437.00"}
    api.call("PUT", "/api/v1/currency-rates", json={"EUR": "1.00", "GBP": "1.25"})
    body = stats(api, group_by="flow")
    assert (body["items"][0]["revenue"], body["items"][0]["unconverted"]) == ("627.75", {})


def test_a_postback_keeps_the_rate_in_force_when_recorded(app, client, api, make_flow):
    api.call("PUT", "/api/v1/currency-rates", json={"EUR": "1.10"})
    flow = make_flow()
    click_id = click_on(client, flow)
    answer = client.get("/postback", query_string={"click_id": click_id, "payout": "10", "currency": "eur"})
    assert answer.status_code == 200, answer.get_json()
    conversion = Conversion.get()
    assert (conversion.currency, conversion.rate, conversion.report_payout) == ("EUR", "1.10", Decimal("11"))
    api.call("PUT", "/api/v1/currency-rates", json={"EUR": "2"})
    assert stats(api, group_by="flow")["items"][0]["revenue"] == "11.00"


def test_a_postback_in_a_made_up_currency_is_refused_and_logged(app, client, make_flow):
    flow = make_flow()
    click_id = click_on(client, flow)
    answer = client.get("/postback", query_string={"click_id": click_id, "payout": "1", "currency": "XYZ"})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "currency 'XYZ' is not an ISO 4217 code such as USD"
    assert Conversion.select().count() == 0
    assert InboundRequest.select().where(InboundRequest.http_status == 400).count() == 1


URL_FIELD = {"/api/v1/flows": "offer_url", "/api/v1/offers": "url"}


@pytest.mark.parametrize("path", ["/api/v1/flows", "/api/v1/offers"])
def test_flows_and_offers_refuse_a_made_up_currency(api, path):
    status, body = api.post(
        path, json={"name": "x", URL_FIELD[path]: "https://o.example/", "currency": "XYZ"}
    )
    assert status == 422 and "currency must be an ISO 4217 code such as USD" in body["error"]


ORDER_REASON = (
    "order must be key or one of clicks, unique_clicks, conversions, revenue, cost, profit, cr, "
    "epc, roi, events, pending, declined, lp_views, lp_clicks, lp_ctr, cpa, cpc, bot_clicks"
)
DIMENSION_NAMES = (
    "day hour flow country region city device_type os browser isp connection_type sub1 sub2 sub3 "
    "sub4 sub5 utm_source utm_medium utm_campaign utm_term utm_content external_id ip route lander "
    "offer hour_of_day weekday"
).split()


@pytest.mark.parametrize(
    "args, reason",
    [
        ({"tz": "Mars/Olympus"}, "tz must be an IANA time zone such as Europe/Berlin"),
        ({"basis": "sale"}, "basis must be click or conversion"),
        ({"compare": "previous"}, "compare=previous needs from and to"),
        ({"compare": "last_year", "from": "2024-01-01", "to": "2024-01-02"}, "compare must be previous"),
        ({"group_by": "country,os,sub1,sub2"}, "group_by takes at most 3 dimensions"),
        ({"group_by": "country,country"}, "group_by names a dimension twice"),
        ({"order": "bananas"}, ORDER_REASON),
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ({"cursor": "-1"}, "cursor must be the next of a previous answer"),
        ({"f.colour": "red"}, "f.colour must be one of " + ", ".join(DIMENSION_NAMES)),
        ({"f.flow": "x"}, "f.flow must be an id"),
        ({"traffic_source_id": "99999999999999999999"}, "traffic_source_id must be a whole number"),
        ({"f.hour_of_day": "10"}, "f.hour_of_day cannot be filtered on; report by it instead"),
        ({"f.weekday": "Monday"}, "f.weekday cannot be filtered on; report by it instead"),
        ({"compare": "previous", "from": "2024-05-01"}, "compare=previous needs from and to"),
        ({"compare": "previous", "to": "2024-05-01"}, "compare=previous needs from and to"),
        ({"limit": "\u0661"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "1001"}, "limit must be a whole number from 1 to 1000"),
        ({"cursor": "1234567890"}, "cursor must be the next of a previous answer"),
        ({"flow_id": "0"}, "flow_id must be an id from 1 to 9223372036854775807"),
        ({"flow_id": str(2**63)}, "flow_id must be an id from 1 to 9223372036854775807"),
        ({"offer_id": "0"}, "offer_id must be an id from 1 to 9223372036854775807"),
    ],
)
def test_bad_stats_arguments_are_400_with_the_reason(api, args, reason):
    status, body = api.get("/api/v1/stats", query_string=args)
    assert (status, body["error"]) == (400, reason)


def test_costs_spread_over_the_period_bots_included_exactly(app, api):
    flow, other = add_flow("costs"), add_flow("other")
    for n in range(3):
        add_click(flow, "2024-05-01 1%d:00" % n, country="US", cost=Decimal("0.01"))
    add_click(flow, "2024-05-01 15:00", country="US", is_bot=True)
    add_click(flow, "2024-05-01 16:00", country="DE", cost=Decimal("0.40"))
    add_click(flow, "2024-05-02 10:00", country="US", cost=Decimal("0.40"))  # outside
    add_click(other, "2024-05-01 10:00", country="US", cost=Decimal("0.40"))  # another flow
    rollups.advance(now=datetime.datetime(2024, 6, 1))
    body = {
        "flow_id": flow.id,
        "from": "2024-05-01",
        "to": "2024-05-01",
        "amount": "10",
        "filter": {"country": "US"},
    }
    status, answer = api.post("/api/v1/costs", json=body)
    assert (status, answer) == (200, {"clicks": 4, "amount": "10.00", "currency": "USD"})
    costs = sorted(c.cost for c in Click.select().where(Click.flow == flow, Click.country == "US"))
    assert costs == [Decimal("0.40"), Decimal("2.5"), Decimal("2.5"), Decimal("2.5"), Decimal("2.5")]
    report = stats(
        api, group_by="country", flow_id=str(flow.id), **{"from": "2024-05-01", "to": "2024-05-01"}
    )
    assert pick(report["items"], "key", "clicks", "bot_clicks", "cost") == [
        ("US", 3, 1, "10.00"),
        ("DE", 1, 0, "0.40"),
    ]
    status, answer = api.post("/api/v1/costs", json={**body, "amount": "1.000003", "filter": {}})
    assert answer == {"clicks": 5, "amount": "1.000003", "currency": "USD"}
    spread = [
        c.cost
        for c in Click.select().where(Click.flow == flow, Click.created_at < datetime.datetime(2024, 5, 2))
    ]
    assert sum(spread) == Decimal("1.000003") and max(spread) - min(spread) == Decimal("0.000001")
    rollups.advance(now=datetime.datetime(2024, 6, 1))
    assert (
        stats(api, group_by="flow", flow_id=str(flow.id), **{"from": "2024-05-01", "to": "2024-05-01"})[
            "totals"
        ]["cost"]
        == "1.000003"
    )


def test_costs_in_another_currency_need_its_rate(app, api):
    flow = add_flow()
    add_click(flow, "2024-05-01 10:00")
    body = {"flow_id": flow.id, "from": "2024-05-01", "to": "2024-05-01", "amount": "10", "currency": "EUR"}
    status, answer = api.post("/api/v1/costs", json=body)
    assert (status, answer["error"]) == (
        422,
        "no rate for EUR into USD: set it with PUT /api/v1/currency-rates",
    )
    api.call("PUT", "/api/v1/currency-rates", json={"EUR": "1.5"})
    assert api.post("/api/v1/costs", json=body) == (200, {"clicks": 1, "amount": "15.00", "currency": "USD"})


def test_costs_refusals(app, api):
    flow = add_flow()
    status, answer = api.post(
        "/api/v1/costs", json={"flow_id": flow.id, "from": "2024-05-01", "to": "2024-05-01", "amount": "5"}
    )
    assert (status, answer["error"]) == (422, "no click of flow %d matches in that period" % flow.id)
    status, answer = api.post(
        "/api/v1/costs", json={"flow_id": 999, "from": "2024-05-01", "to": "2024-05-01", "amount": "5"}
    )
    assert (status, answer["error"]) == (404, "flow 999 not found")
    status, answer = api.post(
        "/api/v1/costs", json={"flow_id": "x", "from": "May", "amount": "-1", "filter": {"colour": "red"}}
    )
    assert status == 422
    assert set(answer) >= {"error"}
    for words in (
        "flow_id must be",
        "from must be a date",
        "to must be a date",
        "amount must not be negative",
        "filter: 'colour'",
    ):
        assert words in answer["error"], answer["error"]
    assert api.post("/api/v1/costs", json=[1])[0] == 400


def test_currency_rates_put_replaces_and_refuses_bad_codes(app, api):
    assert api.call("PUT", "/api/v1/currency-rates", json={"eur": 1.08, "GBP": "1.27"})[1] == {
        "EUR": "1.08",
        "GBP": "1.27",
    }
    status, body = api.call("PUT", "/api/v1/currency-rates", json={"JPY": "0.0067"})
    assert (status, body) == (200, {"JPY": "0.0067"})
    assert api.get("/api/v1/currency-rates") == (200, {"JPY": "0.0067"})
    for bad, reason in (
        ({"XYZ": "1"}, "'XYZ' is not an ISO 4217 currency code such as EUR"),
        ({"EUR": "-1"}, "the rate of EUR must be a positive number below 10^12"),
        ({"EUR": "abc"}, "the rate of EUR must be a decimal number"),
        ({"EUR": True}, "the rate of EUR must be a decimal number"),
        ({"USD": "1"}, "USD is the report currency (TRACKER_CURRENCY): its rate is 1"),
    ):
        assert api.call("PUT", "/api/v1/currency-rates", json=bad) == (400, {"error": reason})
    assert api.get("/api/v1/currency-rates")[1] == {"JPY": "0.0067"}


def status_of(api, **args):
    status, body = api.get("/api/v1/stats", query_string=args)
    return status, body


@pytest.mark.parametrize(
    "value, ok",
    [
        ("0", False),  # ids start at 1
        ("\u0661", False),  # an Arabic-Indic digit one: isdigit() but no id
        (str(2**63), False),  # past the largest id a column holds
        (str(2**63 - 1), True),  # the largest: no such flow, no clicks
        ("-1", False),
        ("1.0", False),
    ],
)
def test_a_filter_on_an_id_takes_a_whole_number_a_column_can_hold(two_days, api, value, ok):
    status, body = status_of(api, group_by="country", **{"f.flow": value})
    if ok:
        assert status == 200 and body["items"] == [] and body["totals"]["clicks"] == 0
    else:
        assert (status, body["error"]) == (400, "f.flow must be an id")


def test_a_filter_on_an_id_reads_it_with_spaces_and_an_empty_one_means_none(two_days, api):
    a, _ = two_days
    day = {"from": "2024-05-01", "to": "2024-05-01"}
    assert stats(api, group_by="flow", **day, **{"f.flow": " %d " % a.id})["totals"]["clicks"] == 3
    # no click of the fixture went to an offer: "no offer" is every one of them
    assert stats(api, group_by="flow", **day, **{"f.offer": ""})["totals"]["clicks"] == 4
    assert stats(api, group_by="flow", **day)["totals"]["clicks"] == 4


def test_a_filter_value_may_be_as_long_as_a_stored_one(two_days, api):
    assert stats(api, group_by="country", **{"f.sub1": "s" * 255})["totals"]["clicks"] == 0
    status, body = status_of(api, group_by="country", **{"f.sub1": "s" * 256})
    assert (status, body["error"]) == (400, "f.sub1 is longer than 255 characters")


def test_a_filter_on_the_hour_takes_a_whole_hour(two_days, api):
    day = {"from": "2024-05-01", "to": "2024-05-02"}
    body = stats(api, group_by="os", **day, **{"f.hour": "2024-05-01 10:00"})
    assert pick(body["items"], "key", "clicks") == [("Android", 1)]
    for value in ("2024-05-01 10:30", "2024-05-01", "10:00"):
        status, body = status_of(api, group_by="os", **day, **{"f.hour": value})
        assert (status, body["error"]) == (400, "f.hour must be an hour like 2024-05-31 14:00")
    status, body = status_of(api, group_by="os", **day, **{"f.day": "2024-02-30"})
    assert status == 400 and body["error"].startswith("f.day must be"), body


def test_the_previous_period_is_as_long_as_the_period_and_ends_the_day_before(app, api):
    flow = add_flow("P")
    for day in ("2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"):
        add_click(flow, day + " 12:00", country="US")
    add_click(flow, "2024-03-04 13:00", country="DE")
    add_click(flow, "2024-03-01 13:00", country="DE")
    add_click(flow, "2024-03-02 13:00", country="DE")
    body = stats(api, group_by="country", compare="previous", **{"from": "2024-03-03", "to": "2024-03-04"})
    # March 1-2 before March 3-4: US 2 (not February 28/29), DE 2
    assert [(r["key"], r["clicks"], r["previous"]["clicks"]) for r in body["items"]] == [
        ("US", 2, 2),
        ("DE", 1, 2),
    ]
    assert (body["totals"]["clicks"], body["totals"]["previous"]["clicks"]) == (3, 4)
    assert "previous" not in body["totals"]["previous"]  # one period back, not two
    # the second page of one row: its own previous figures, whatever page it is on
    page = stats(
        api,
        group_by="country",
        compare="previous",
        limit="1",
        cursor="1",
        **{"from": "2024-03-03", "to": "2024-03-04"},
    )
    assert [(r["key"], r["clicks"], r["previous"]["clicks"]) for r in page["items"]] == [("DE", 1, 2)]
    assert page["totals"]["previous"]["clicks"] == 4


def test_pages_in_value_order_follow_any_value_and_their_cursor_is_a_plain_token(app, api):
    flow = add_flow("V")
    values = ["a", "ab", "abc", "abcd", "é", "x" * 255]
    for value in values:
        add_click(flow, "2024-05-01 10:00", external_id=value)
    add_click(flow, "2024-05-01 00:00", external_id="0 first instant")  # in the period
    add_click(flow, "2024-05-02 00:00", external_id="0 next day")  # the instant after it
    values.append("0 first instant")
    seen, cursor = [], None
    for _ in values:
        args = {"group_by": "external_id", "order": "key", "limit": "1"}
        args.update({"from": "2024-05-01", "to": "2024-05-01"})
        body = stats(api, **args, **({"cursor": cursor} if cursor else {}))
        seen += [row["key"] for row in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
        assert re.fullmatch(r"v[A-Za-z0-9_-]+", cursor), cursor  # no padding, nothing to encode
    assert seen == sorted(values)
    day = {"group_by": "external_id", "order": "key", "from": "2024-05-01", "to": "2024-05-01"}
    # a value longer than any stored one: 1,050 bytes is the longest a cursor may name
    longest = "v" + base64.urlsafe_b64encode(b"x" * 1050).decode().rstrip("=")
    assert len(longest) == 1401
    assert [row["key"] for row in stats(api, cursor=longest, **day)["items"]] == ["é"]  # after x…
    too_long = "v" + base64.urlsafe_b64encode(b"x" * 1053).decode().rstrip("=")
    status, body = status_of(api, cursor=too_long, **day)
    assert (status, body["error"]) == (400, "cursor must be the next of a previous answer")


def test_without_group_by_the_report_is_by_day(two_days, api):
    body = stats(api, **{"from": "2024-05-01", "to": "2024-05-02"})
    assert pick(body["items"], "key", "clicks") == [("2024-05-01", 4), ("2024-05-02", 1)]


@pytest.mark.parametrize(
    "value, bots",
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("0", False),
        ("false", False),
        ("False", False),
    ],
)
def test_include_bots_takes_the_usual_spellings_of_yes_and_no(two_days, api, value, bots):
    body = stats(api, group_by="flow", include_bots=value, **{"from": "2024-05-01", "to": "2024-05-01"})
    assert body["totals"]["clicks"] == (5 if bots else 4)


@pytest.mark.parametrize(
    "args",
    [
        {"limit": "1000"},
        {"cursor": "123456789"},  # nine digits: a page past the last, empty
        {"flow_id": str(2**63 - 1)},  # the largest id: no such flow
        {"offer_id": "1000000000000000000"},
    ],
)
def test_arguments_at_their_limits_are_taken(two_days, api, args):
    status, body = api.get("/api/v1/stats", query_string=dict(args, group_by="country"))
    assert status == 200, body


def test_the_next_cursor_is_given_while_rows_are_left_and_not_after_the_last(two_days, api):
    args = {"group_by": "country", "from": "2024-05-01", "to": "2024-05-02"}  # US, FR, DE
    assert stats(api, **args, limit="3")["next"] is None
    first = stats(api, **args, limit="2")
    assert (pick(first["items"], "key"), first["next"]) == ([("US",), ("DE",)], "2")
    last = stats(api, **args, limit="2", cursor="2")
    assert (pick(last["items"], "key"), last["next"]) == ([("FR",)], None)


def test_a_value_ordered_report_also_pages_by_an_offset_cursor(app, api):
    flow = add_flow("O")
    for value in ("e1", "e2", "e3", "e4", "e5"):
        add_click(flow, "2024-05-01 10:00", external_id=value)
    args = {"group_by": "external_id", "order": "key", "from": "2024-05-01", "to": "2024-05-01"}
    body = stats(api, **args, limit="2", cursor="2")
    assert pick(body["items"], "key") == [("e3",), ("e4",)]
    filtered = stats(api, **args, limit="1", **{"f.external_id": ["e4", "e2"]})
    assert (pick(filtered["items"], "key"), filtered["totals"]["clicks"]) == ([("e2",)], 2)


def test_every_figure_and_total_is_in_the_report_currency(app, api):
    # revenue recorded without a rate in the report's own currency is counted as it is; the
    # totals, the previous period's figures and its totals all say the report's currency
    replace_rates({"USD": Decimal("0.90")})
    flow = add_flow("EUR")
    for day in ("2024-05-01", "2024-05-02"):
        click = add_click(flow, day + " 10:00", country="DE", external_id="x-" + day)
        add_conversion(click, "5.00", currency="EUR")
    for args in (
        {"group_by": "country"},
        {"group_by": "external_id", "order": "key"},  # a page walked in value order
        {"group_by": "country,os,sub1"},  # a page picked by the database
    ):
        query = parse_query(
            dict(args, compare="previous", **{"from": "2024-05-02", "to": "2024-05-02"}), currency="EUR"
        )
        report = run_stats(query)
        (row,) = [stats_row(item) for item in report.items]
        totals = stats_row(report.totals)
        assert (row["revenue"], row["currency"], row["unconverted"]) == ("5.00", "EUR", {}), args
        assert (totals["revenue"], totals["currency"]) == ("5.00", "EUR"), args
        assert (row["previous"]["currency"], totals["previous"]["currency"]) == ("EUR", "EUR"), args
        assert totals["previous"]["revenue"] == "5.00", args


def test_empty_dates_mean_all_time(two_days, api):
    # a form sends its empty date fields: all time, as without them
    assert stats(api, group_by="flow", **{"from": "", "to": ""}) == stats(api, group_by="flow")
    assert stats(api, group_by="flow", **{"from": ""})["totals"]["clicks"] == 9


def test_a_report_filtered_on_its_own_dimension_reads_only_those_values_rolled_up_or_not(two_days, api):
    a, _ = two_days
    offer_click = add_click(a, "2024-05-02 15:00", country="US", os="Android", sub1="s1", offer_id=7)
    add_conversion(offer_click, "1.00")
    period = {"from": "2024-04-01", "to": "2024-05-31"}
    asked = [
        ({"group_by": "sub1", "f.sub1": ["s1", "s3"]}, [("s1", 5), ("s3", 2)]),
        ({"group_by": "sub1", "f.sub1": ""}, [("", 0)]),  # the bots: no sub1, no clicks of people
        ({"group_by": "offer", "f.offer": ""}, [(None, 9)]),  # "no offer"
        ({"group_by": "offer", "f.offer": "7"}, [(7, 1)]),
    ]
    for when in raw_then_rolled_up():
        for args, rows in asked:
            body = stats(api, **period, **args)
            assert pick(body["items"], "key", "clicks") == rows, (when, args)


def test_f_day_and_f_hour_are_the_local_day_and_hour_of_the_reports_zone(two_days, api):
    a, _ = two_days
    add_click(a, "2024-05-02 02:00", country="BR")  # May 1, 22:00 in New York
    period = {"from": "2024-04-30", "to": "2024-05-03", "group_by": "country"}
    in_utc = stats(api, **period, **{"f.day": "2024-05-01"})
    in_new_york = stats(api, **period, tz="America/New_York", **{"f.day": "2024-05-01"})
    assert pick(in_utc["items"], "key", "clicks") == [("US", 3), ("FR", 1)]
    assert pick(in_new_york["items"], "key", "clicks") == [("US", 3), ("BR", 1), ("FR", 1)]
    next_day = stats(api, **period, tz="America/New_York", **{"f.day": "2024-05-02"})
    assert pick(next_day["items"], "key", "clicks") == [("DE", 1)]  # 05:00 on May 2 there
    hour = stats(api, **period, tz="America/New_York", **{"f.hour": "2024-05-01 22:00"})
    assert pick(hour["items"], "key", "clicks") == [("BR", 1)]
    assert stats(api, **period, **{"f.hour": "2024-05-02 02:00"})["totals"]["clicks"] == 1
    # UTC+9: May 2 in Tokyo is 15:00 UTC on May 1 to 15:00 UTC on May 2
    in_tokyo = stats(api, **period, tz="Asia/Tokyo", **{"f.day": "2024-05-02"})
    assert pick(in_tokyo["items"], "key", "clicks") == [("BR", 1), ("DE", 1), ("US", 1)]


@pytest.mark.parametrize("narrowed", [{"f.day": "2024-05-02"}, {"f.hour": "2024-05-02 09:00"}])
def test_a_day_or_hour_filter_is_the_period_within_the_asked_one(two_days, api, narrowed):
    """f.day and f.hour narrow the period, whether from and to are given or not, and a day
    outside the asked period reports nothing."""
    within = ({}, {"from": "2024-04-01"}, {"to": "2024-05-31"}, {"from": "2024-05-02", "to": "2024-05-02"})
    for period in within:
        body = stats(api, group_by="country", **period, **narrowed)
        assert pick(body["items"], "key", "clicks") == [("DE", 1)], period
    for period in ({"from": "2024-05-01", "to": "2024-05-01"}, {"from": "2024-05-03"}, {"to": "2024-05-01"}):
        body = stats(api, group_by="country", **period, **narrowed)
        assert (body["items"], body["totals"]["clicks"]) == ([], 0), period


def test_a_period_after_the_rolled_up_point_reads_its_own_clicks_only(two_days, api):
    # rolled up until May 1, 12:00: May 2 is read raw, and May 1's afternoon is not in it
    rollups.advance(now=datetime.datetime(2024, 5, 1, 12, 30))
    body = stats(api, group_by="country", **{"from": "2024-05-02", "to": "2024-05-02"})
    assert pick(body["items"], "key", "clicks") == [("DE", 1)]
    both = stats(api, group_by="country", **{"from": "2024-05-01", "to": "2024-05-02"})
    assert pick(both["items"], "key", "clicks") == [("US", 3), ("DE", 1), ("FR", 1)]


def test_traffic_source_and_flow_filters_take_the_flows_in_all_of_them(two_days, api):
    a, b = two_days
    source = TrafficSource.create(name="Source")
    Flow.update(traffic_source=source).where(Flow.id == b.id).execute()
    period = {"group_by": "flow", "from": "2024-05-01", "to": "2024-05-02"}
    by_flow = [(a.id, 4), (b.id, 1)]  # the bot aside
    for when in raw_then_rolled_up():
        assert pick(stats(api, **period)["items"], "key", "clicks") == by_flow, when
        assert pick(stats(api, **period, traffic_source_id=source.id)["items"], "key", "clicks") == [
            (b.id, 1)
        ]
        assert stats(api, **period, traffic_source_id=source.id, flow_id=a.id)["items"] == [], when
        assert pick(stats(api, **period, flow_id=a.id, **{"f.flow": a.id})["items"], "key", "clicks") == [
            (a.id, 4)
        ]
        assert stats(api, **period, flow_id=a.id, **{"f.flow": b.id})["items"] == [], when
        both = stats(api, **period, **{"f.flow": [a.id, b.id]})
        assert pick(both["items"], "key", "clicks") == by_flow, when


def test_rows_tied_on_a_figure_go_by_conversions_then_clicks_and_empty_figures_last(app, api):
    """order=revenue: equal revenue, the row of more conversions first; a row of no revenue
    after every row of some (50 cents included), whatever its clicks; order=roi: a row with no
    cost has no ROI and comes last; order=key: by key."""
    flow = add_flow()
    for sub1, payouts in (
        ("a", ["10.00", None]),
        ("b", ["5.00", "5.00"]),
        ("c", [None, None, None]),
        ("d", ["0.50"]),
    ):
        for payout in payouts:
            click = add_click(flow, "2024-05-01 10:00", sub1=sub1, cost=Decimal("1.00") if sub1 != "a" else 0)
            if payout:
                add_conversion(click, payout)
    period = {"group_by": "sub1", "from": "2024-05-01", "to": "2024-05-01"}
    assert pick(stats(api, **period, order="revenue")["items"], "key") == [("b",), ("a",), ("d",), ("c",)]
    assert pick(stats(api, **period, order="roi")["items"], "key", "roi") == [
        ("b", "400.00"),
        ("d", "-50.00"),
        ("c", "-100.00"),
        ("a", None),
    ]
    assert pick(stats(api, **period, order="key")["items"], "key") == [("a",), ("b",), ("c",), ("d",)]
