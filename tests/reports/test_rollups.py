"""Rollups: reports read hourly aggregates plus the raw rows they do not hold, and every figure
equals a direct count of the raw rows, before and after the worker rolls up, after late
conversions, status changes, lander clicks and cost changes, and after a rebuild."""

import dataclasses
import datetime
import random
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from tracker.currency import replace_rates
from tracker.models import Click, Conversion, Flow, RollupClick, RollupDirty
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report, run_stats, total

from factories import add_click, add_conversion, add_flow

NOW = datetime.datetime(2024, 5, 8, 12, 30)
DIMENSIONS = ["day", "hour", "flow", "country", "os", "sub1", "route", "lander", "offer", "external_id"]


def dataset(seed=7):
    """Three flows, ~400 clicks over six days at random minutes, with bots, landers, routes,
    offers, costs, and conversions of every status, events, and three currencies."""
    rng = random.Random(seed)
    flows = [add_flow("Flow %d" % n) for n in range(3)]
    start = datetime.datetime(2024, 5, 1, 0, 0)
    clicks = []
    for n in range(400):
        when = start + datetime.timedelta(minutes=rng.randrange(7 * 24 * 60))
        lander = rng.choice([None, 1, 2])
        click = add_click(
            rng.choice(flows),
            when.strftime("%Y-%m-%d %H:%M:%S"),
            click_id="r%07d" % n,
            country=rng.choice(["US", "DE", "FR", ""]),
            os=rng.choice(["Android", "iOS", "Windows"]),
            sub1=rng.choice(["a", "b", "c", "d", ""]),
            external_id="x%d" % rng.randrange(50),
            is_bot=rng.random() < 0.1,
            is_unique=rng.random() < 0.8,
            cost=Decimal(rng.choice(["0", "0.05", "0.10", "0.333333"])),
            route_id=rng.choice([None, 1, 2]),
            lander_id=lander,
            offer_id=rng.choice([None, 5, 6]),
            lp_clicked_at=when + datetime.timedelta(minutes=2) if lander and rng.random() < 0.5 else None,
        )
        clicks.append(click)
    for click in rng.sample(clicks, 120):
        status = rng.choice(["approved", "approved", "pending", "declined"])
        when = click.created_at + datetime.timedelta(minutes=rng.randrange(3 * 24 * 60))
        currency = rng.choice(["USD", "USD", "EUR", "GBP"])
        rated = currency == "USD" or rng.random() < 0.5
        payout = Decimal(rng.choice(["1.00", "2.50", "10.00", "-0.50"]))
        add_conversion(
            click,
            str(payout),
            status=status,
            event=rng.choice(["conversion", "conversion", "lead"]),
            when=when.strftime("%Y-%m-%d %H:%M:%S"),
            currency=currency,
            is_conversion=rng.random() < 0.8,
            rate=("1" if currency == "USD" else "1.10") if rated else None,
            report_payout=payout * (1 if currency == "USD" else Decimal("1.10")) if rated else None,
        )
    return flows


def oracle(dimension, date_from, date_to, tz="UTC", include_bots=False, basis="click", flow_id=None):
    """The report worked out in Python from every raw row: ``{key: figures}``."""
    zone = ZoneInfo(tz)
    rates = {"EUR": Decimal("1.20")}  # the current stored rate, for conversions without one

    def local(moment):
        return moment.replace(tzinfo=datetime.timezone.utc).astimezone(zone)

    def key(click, moment):
        if dimension == "day":
            return local(moment).date().isoformat()
        if dimension == "hour":
            return local(moment).strftime("%Y-%m-%d %H:00")
        if dimension == "flow":
            return click.flow_id
        if dimension in ("route", "lander", "offer"):
            return getattr(click, dimension + "_id")
        return getattr(click, dimension)

    def within(moment):
        day = local(moment).date()
        return date_from <= day <= date_to and (flow_id is None or True)

    out = {}

    def row(k):
        return out.setdefault(
            k,
            {
                "clicks": 0,
                "unique_clicks": 0,
                "cost": Decimal(0),
                "bot_clicks": 0,
                "lp_views": 0,
                "lp_clicks": 0,
                "conversions": 0,
                "revenue": Decimal(0),
                "pending": 0,
                "declined": 0,
                "events": 0,
                "unconverted": {},
            },
        )

    # the columns it reads as plain rows: a model per click was most of these tests' time
    columns = [Click.flow.alias("flow_id"), Click.created_at, Click.cost, Click.is_bot, Click.is_unique]
    columns += [getattr(Click, name) for name in ("click_id", "route_id", "lander_id", "offer_id")]
    columns += [getattr(Click, name) for name in ("lp_clicked_at", "country", "os", "sub1", "external_id")]
    clicks = {c["click_id"]: SimpleNamespace(**c) for c in Click.select(*columns).dicts()}
    for click in clicks.values():
        if not within(click.created_at) or (flow_id and click.flow_id != flow_id):
            continue
        r = row(key(click, click.created_at))
        r["cost"] += click.cost
        if click.is_bot:
            r["bot_clicks"] += 1
            if not include_bots:
                continue
        r["clicks"] += 1
        r["unique_clicks"] += click.is_unique
        r["lp_views"] += click.lander_id is not None
        r["lp_clicks"] += click.lander_id is not None and click.lp_clicked_at is not None
    for conversion in Conversion.select():
        click = clicks[conversion.click_id]
        moment = click.created_at if basis == "click" else conversion.created_at
        if not within(moment) or (flow_id and click.flow_id != flow_id):
            continue
        if click.is_bot and not include_bots:
            continue
        r = row(key(click, moment))
        if not conversion.is_conversion:
            r["events"] += conversion.status == "approved"
            continue
        if conversion.status != "approved":
            r[conversion.status] += 1
            continue
        r["conversions"] += 1
        if conversion.report_payout is not None:
            r["revenue"] += conversion.report_payout
        elif conversion.currency == "USD":
            r["revenue"] += conversion.payout
        elif conversion.currency in rates:
            r["revenue"] += conversion.payout * rates[conversion.currency]
        else:
            r["unconverted"][conversion.currency] = (
                r["unconverted"].get(conversion.currency, Decimal(0)) + conversion.payout
            )
    return {k: v for k, v in out.items()}


def figures(rows):
    return {
        row.key: {
            "clicks": row.clicks,
            "unique_clicks": row.unique_clicks,
            "cost": row.cost,
            "bot_clicks": row.bot_clicks,
            "lp_views": row.lp_views,
            "lp_clicks": row.lp_clicks,
            "conversions": row.conversions,
            "revenue": row.revenue,
            "pending": row.pending,
            "declined": row.declined,
            "events": row.events,
            "unconverted": {k: v for k, v in row.unconverted.items() if v},
        }
        for row in rows
    }


def clean(expected):
    for value in expected.values():
        value["unconverted"] = {k: v for k, v in value["unconverted"].items() if v}
    return expected


def check(
    dimension, tz="UTC", include_bots=False, basis="click", date_from="2024-05-02", date_to="2024-05-06"
):
    low, high = datetime.date.fromisoformat(date_from), datetime.date.fromisoformat(date_to)
    query = ReportQuery(dimension, low, high, tz=tz, include_bots=include_bots, basis=basis)
    assert figures(run_report(query)) == clean(oracle(dimension, low, high, tz, include_bots, basis))


def write_dataset():
    replace_rates({"EUR": Decimal("1.20")})
    dataset()


def dataset_flows():
    """The dataset's three flows, as ``dataset`` made them."""
    return list(Flow.select().order_by(Flow.id))


@pytest.fixture
def data(dataset_copy):
    dataset_copy("rollups", write_dataset)
    return dataset_flows()


def test_reports_equal_the_raw_rows_before_and_after_rolling_up(data):
    for dimension in DIMENSIONS:
        check(dimension)
    until, hours = rollups.advance(now=NOW)
    assert until == datetime.datetime(2024, 5, 8, 12, 0) and hours > 0
    assert RollupClick.select().count() > 0
    for dimension in DIMENSIONS:
        check(dimension)
        check(dimension, include_bots=True)
        check(dimension, basis="conversion")


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata", "Pacific/Chatham"])
def test_time_zones_whole_and_fractional(data, tz):
    rollups.advance(now=NOW)
    for dimension in ("day", "hour", "country", "flow"):
        check(dimension, tz=tz)
        check(dimension, tz=tz, basis="conversion")


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("group_by", ["hour", "day"])
def test_zones_of_whole_hours_read_the_hourly_rollup_rows(data, tz, group_by):
    """In a zone whose offset is whole hours, the hour and day reports read the flows' hourly
    rollup rows, not every raw click (which would give the same figures, slowly): a rollup row
    changed by hand shows in them, in the local hour or day it belongs to."""
    rollups.advance(now=NOW)
    row = (
        RollupClick.select()
        .where(
            RollupClick.dimension == "",
            RollupClick.is_bot == False,  # noqa: E712
            RollupClick.hour >= datetime.datetime(2024, 5, 3, 22),
        )
        .order_by(RollupClick.hour, RollupClick.flow_id)
        .first()
    )
    RollupClick.update(clicks=RollupClick.clicks + 1000).where(RollupClick.id == row.id).execute()
    local = row.hour.replace(tzinfo=datetime.timezone.utc).astimezone(ZoneInfo(tz))
    key = local.strftime("%Y-%m-%d %H:00") if group_by == "hour" else local.date().isoformat()
    low, high = datetime.date(2024, 5, 2), datetime.date(2024, 5, 6)
    expected = clean(oracle(group_by, low, high, tz))
    expected[key]["clicks"] += 1000
    assert figures(run_report(ReportQuery(group_by, low, high, tz=tz))) == expected


def test_the_period_reaching_past_the_rolled_up_point_counts_new_clicks_at_once(data):
    rollups.advance(now=NOW)
    flow = data[0]
    add_click(flow, "2024-05-08 12:05", click_id="late1", country="US")  # after the rolled-up point
    add_click(flow, "2024-05-08 12:10", click_id="late2", country="US")
    for dimension in ("day", "country", "flow"):
        check(dimension, date_from="2024-05-01", date_to="2024-05-08")


def test_a_change_to_a_rolled_up_hour_counts_at_once_and_after_the_next_run(data):
    rollups.advance(now=NOW)
    click = Click.get_by_id("r0000003")
    # a late conversion and a status change (conversions are read raw: no mark needed), a
    # lander click and a cost (each marking its hour)
    add_conversion(click, "7.00", when="2024-05-08 12:00:00", dedup_key="late")
    other = Conversion.select().where(Conversion.status == "pending").first()
    Conversion.update(status="approved").where(Conversion.id == other.id).execute()
    landed = Click.select().where(Click.lander_id.is_null(False), Click.lp_clicked_at.is_null()).first()
    Click.update(lp_clicked_at=NOW).where(Click.click_id == landed.click_id).execute()
    rollups.mark([(landed.created_at, landed.flow_id)], now=NOW)
    Click.update(cost=Decimal("9.99")).where(Click.click_id == "r0000010").execute()
    rollups.mark([(Click.get_by_id("r0000010").created_at, Click.get_by_id("r0000010").flow_id)], now=NOW)
    assert RollupDirty.select().count() == 2
    for dimension in DIMENSIONS:
        check(dimension, date_from="2024-05-01", date_to="2024-05-08")
        check(dimension, date_from="2024-05-01", date_to="2024-05-08", basis="conversion")
    rollups.advance(now=NOW)
    assert RollupDirty.select().count() == 0
    for dimension in DIMENSIONS:
        check(dimension, date_from="2024-05-01", date_to="2024-05-08")
        check(dimension, date_from="2024-05-01", date_to="2024-05-08", basis="conversion")


def test_an_unmarked_change_is_corrected_by_a_rebuild(data):
    rollups.advance(now=NOW)
    # a click written late into a rolled-up hour without a mark (as a restore would)
    add_click(data[1], "2024-05-03 10:10", click_id="unmarked", country="DE")
    low, high = datetime.date(2024, 5, 3), datetime.date(2024, 5, 3)
    assert figures(run_report(ReportQuery("country", low, high)))["DE"]["clicks"] == (
        oracle("country", low, high)["DE"]["clicks"] - 1
    )
    hours = rollups.rebuild(datetime.datetime(2024, 5, 3), datetime.datetime(2024, 5, 4))
    assert hours == 24
    check("country", date_from="2024-05-03", date_to="2024-05-03")
    for dimension in DIMENSIONS:
        check(dimension)


def test_rebuild_after_the_rollups_are_damaged_gives_them_back_exactly(data):
    rollups.advance(now=NOW)
    before = {
        d: figures(run_report(ReportQuery(d, datetime.date(2024, 5, 1), datetime.date(2024, 5, 8))))
        for d in DIMENSIONS
    }
    RollupClick.delete().where(RollupClick.hour < datetime.datetime(2024, 5, 4)).execute()
    RollupClick.update(clicks=99).where(RollupClick.dimension == "sub1").execute()
    rollups.rebuild(datetime.datetime(2024, 4, 30), datetime.datetime(2024, 5, 10))
    after = {
        d: figures(run_report(ReportQuery(d, datetime.date(2024, 5, 1), datetime.date(2024, 5, 8))))
        for d in DIMENSIONS
    }
    assert after == before


def test_marks_are_only_written_for_hours_that_may_be_rolled_up(app):
    flow = add_flow()
    rollups.mark([(datetime.datetime(2024, 5, 8, 11, 59), flow.id)], now=NOW)  # an hour rolled up by now
    rollups.mark([(datetime.datetime(2024, 5, 8, 12, 5), flow.id)], now=NOW)  # the current hour
    assert [(m.hour, m.flow_id) for m in RollupDirty.select()] == [
        (datetime.datetime(2024, 5, 8, 11), flow.id)
    ]
    rollups.mark(
        [(datetime.datetime(2024, 5, 8, 11, 59), flow.id)], now=datetime.datetime(2024, 5, 8, 12, 0, 30)
    )
    assert RollupDirty.select().count() == 1  # 11:00-12:00 ended 30 s before: not rolled up yet


def test_the_first_run_starts_at_the_oldest_click_and_works_in_budgets(data):
    first = min(click.created_at for click in Click.select())
    until, _ = rollups.advance(now=NOW, budget=datetime.timedelta(hours=30))
    assert until == rollups.floor_hour(first) + datetime.timedelta(hours=30)
    check("country")  # half rolled up, half raw
    until, _ = rollups.advance(now=NOW)
    assert until == datetime.datetime(2024, 5, 8, 12, 0)
    check("country")


@pytest.mark.parametrize("group_by", ["external_id", "country,os", "sub1,offer,country"])
def test_pages_picked_by_the_database_add_up_to_the_whole_report(data, group_by):
    rollups.advance(now=NOW)
    low, high = datetime.date(2024, 5, 2), datetime.date(2024, 5, 6)
    whole = ReportQuery(group_by, low, high)
    expected = {row.keys: figures([row])[row.key] for row in run_report(whole)}
    seen, offset = {}, 0
    while True:
        page = run_stats(dataclasses.replace(whole, limit=7, offset=offset, order="clicks"))
        clicks = [row.clicks for row in page.items]
        assert clicks == sorted(clicks, reverse=True)
        for row in page.items:
            seen[row.keys] = figures([row])[row.key]
        if page.next is None:
            break
        offset = int(page.next)
    assert seen == {keys: value for keys, value in expected.items() if value["clicks"] or value["bot_clicks"]}
    assert figures([page.totals])[None] == figures([total(run_report(whole))])[None]
