"""Report numbers against a known set of clicks and conversions, and the stats API agreeing."""

import datetime
from decimal import Decimal

import pytest

from tracker.api.shapes import stats_row as row_to_dict
from tracker.dashboard.reports import rows_to_csv
from tracker.db import db
from tracker.errors import ValidationError
from tracker.reports.queries import ReportQuery, chart_series, parse_query, run_report, total

from factories import HOSTILE, add_click, add_conversion, add_flow, report_dataset

MAY_1_TO_3 = {"from": "2024-05-01", "to": "2024-05-03"}
FIELDS = ("key", "clicks", "unique_clicks", "conversions", "revenue", "cost", "profit", "cr", "epc", "roi")


NO_LANDERS_NO_BOTS = {"lp_views": 0, "lp_clicks": 0, "lp_ctr": None, "bot_clicks": 0}


def expect(*rows):
    return [dict(zip(FIELDS, row, strict=True), **NO_LANDERS_NO_BOTS) for row in rows]


OLD_FIELDS = FIELDS + tuple(NO_LANDERS_NO_BOTS)


def first_figures(item):
    """The figures these tests were written for (the newer ones: tests/reports/test_stats.py)."""
    return {name: item[name] for name in OLD_FIELDS if name in item}


def report(args):
    return [first_figures(row_to_dict(row)) for row in run_report(parse_query(args))]


def stats_api(api, args):
    status, body = api.get("/api/v1/stats", query_string=args)
    assert status == 200, body
    return [first_figures(item) for item in body["items"]]


@pytest.fixture
def data(app):
    return report_dataset()


def test_by_day_counts_conversions_on_their_clicks_day(data, api):
    args = dict(MAY_1_TO_3, group_by="day")
    expected = expect(
        ("2024-05-01", 2, 1, 3, "3.00", "0.20", "2.80", "150.00", "1.50", "1400.00"),
        ("2024-05-02", 2, 2, 1, "3.00", "0.50", "2.50", "50.00", "1.50", "500.00"),
        ("2024-05-03", 1, 1, 0, "0.00", "0.05", "-0.05", "0.00", "0.00", "-100.00"),
    )
    assert report(args) == expected
    assert stats_api(api, args) == expected


def test_by_country(data, api):
    args = dict(MAY_1_TO_3, group_by="country")
    expected = expect(
        ("US", 3, 2, 4, "6.00", "0.50", "5.50", "133.33", "2.00", "1100.00"),
        ("DE", 1, 1, 0, "0.00", "0.20", "-0.20", "0.00", "0.00", "-100.00"),
        ("FR", 1, 1, 0, "0.00", "0.05", "-0.05", "0.00", "0.00", "-100.00"),
    )
    assert report(args) == expected
    assert stats_api(api, args) == expected


def test_by_sub1(data, api):
    args = dict(MAY_1_TO_3, group_by="sub1")
    expected = expect(
        ("s1", 2, 1, 3, "3.00", "0.20", "2.80", "150.00", "1.50", "1400.00"),
        ("", 1, 1, 1, "3.00", "0.30", "2.70", "100.00", "3.00", "900.00"),
        (HOSTILE, 1, 1, 0, "0.00", "0.05", "-0.05", "0.00", "0.00", "-100.00"),
        ("s2", 1, 1, 0, "0.00", "0.20", "-0.20", "0.00", "0.00", "-100.00"),
    )
    assert report(args) == expected
    assert stats_api(api, args) == expected


def test_by_flow_over_all_time(data, api):
    a, b = data["a"].id, data["b"].id
    expected = expect(
        (a, 4, 3, 3, "3.00", "1.40", "1.60", "75.00", "0.75", "114.29"),
        (b, 2, 2, 1, "3.00", "0.35", "2.65", "50.00", "1.50", "757.14"),
    )
    assert report({"group_by": "flow"}) == expected
    status, body = api.get("/api/v1/stats", query_string={"group_by": "flow"})
    assert [first_figures(item) for item in body["items"]] == expected
    assert first_figures(body["totals"]) == {
        "clicks": 6,
        "unique_clicks": 5,
        "conversions": 4,
        "revenue": "6.00",
        "cost": "1.75",
        "profit": "4.25",
        "cr": "66.67",
        "epc": "1.00",
        "roi": "242.86",
        **NO_LANDERS_NO_BOTS,
    }


def test_filters_by_flow_and_country(data, api):
    args = {"group_by": "day", "flow_id": str(data["a"].id), "country": "us"}
    expected = expect(
        ("2024-04-30", 1, 1, 0, "0.00", "1.00", "-1.00", "0.00", "0.00", "-100.00"),
        ("2024-05-01", 2, 1, 3, "3.00", "0.20", "2.80", "150.00", "1.50", "1400.00"),
    )
    assert report(args) == expected
    assert stats_api(api, args) == expected


def test_by_hour(data, api):
    args = {"group_by": "hour", "from": "2024-05-02", "to": "2024-05-02"}
    expected = expect(
        ("2024-05-02 09:00", 1, 1, 0, "0.00", "0.20", "-0.20", "0.00", "0.00", "-100.00"),
        ("2024-05-02 23:00", 1, 1, 1, "3.00", "0.30", "2.70", "100.00", "3.00", "900.00"),
    )
    assert report(args) == expected
    assert stats_api(api, args) == expected


def test_no_cost_means_no_roi(app, api):
    flow = add_flow()
    add_click(flow, "2024-05-01 10:00")
    assert stats_api(api, {"group_by": "flow"}) == expect(
        (flow.id, 1, 1, 0, "0.00", "0.00", "0.00", "0.00", "0.00", None)
    )
    assert stats_api(api, {"group_by": "flow", "from": "2024-06-01"}) == []


def test_chart_fills_missing_days(data):
    query = ReportQuery("sub1", datetime.date(2024, 4, 29), datetime.date(2024, 5, 3))
    assert chart_series(query, today=datetime.date(2024, 5, 3)) == [
        ("2024-04-29", 0, 0),
        ("2024-04-30", 1, 0),
        ("2024-05-01", 2, 3),
        ("2024-05-02", 2, 1),
        ("2024-05-03", 1, 0),
    ]


def test_chart_of_one_day_is_hourly(data):
    series = chart_series(
        ReportQuery("day", datetime.date(2024, 5, 2), datetime.date(2024, 5, 2)),
        today=datetime.date(2024, 5, 3),
    )
    assert len(series) == 24
    assert series[9] == ("2024-05-02 09:00", 1, 0)
    assert series[23] == ("2024-05-02 23:00", 1, 1)
    assert sum(point[1] for point in series) == 2


def test_chart_of_all_time_runs_from_the_first_click_to_today(data):
    series = chart_series(ReportQuery("day"), today=datetime.date(2024, 5, 5))
    assert [point[0] for point in series] == [
        "2024-04-30",  # the first click
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
        "2024-05-04",
        "2024-05-05",  # today
    ]
    assert sum(point[1] for point in series) == 6


@pytest.mark.parametrize(
    "days, step",
    [
        (93, "day"),  # up to 92 days after the first: a point a day
        (94, "week"),
        (732, "week"),  # up to 731 days after the first: a point a week, from its Monday
        (733, "month"),
    ],
)
def test_a_long_chart_has_a_point_per_day_week_or_month_and_adds_up_every_click(app, days, step):
    flow = add_flow()
    first = datetime.date(2024, 1, 3)  # a Wednesday
    last = first + datetime.timedelta(days=days - 1)
    for day in (first, first + datetime.timedelta(days=1), last):
        add_click(flow, day.isoformat() + " 10:00")
    series = chart_series(ReportQuery("day", first, last), today=last)
    labels = [point[0] for point in series]
    if step == "day":
        assert len(labels) == days and labels[0] == "2024-01-03" and labels[-1] == last.isoformat()
    elif step == "week":
        assert labels[0] == "2024-01-01" and all(
            datetime.date.fromisoformat(label).weekday() == 0 for label in labels
        )
        assert len(labels) == (last - datetime.date(2024, 1, 1)).days // 7 + 1
    else:
        assert labels[:2] == ["2024-01", "2024-02"] and labels[-1] == last.strftime("%Y-%m")
    assert series[0][1] == (1 if step == "day" else 2)  # a week's or month's days added up
    assert sum(point[1] for point in series) == 3


def test_csv_has_header_rows_total_and_defused_formulas(app):
    flow = add_flow()
    add_click(flow, "2024-05-01 10:00", sub1="=HYPERLINK(1)")
    text = rows_to_csv(run_report(parse_query({"group_by": "sub1"})))
    assert text.splitlines() == [
        "key,clicks,unique_clicks,conversions,revenue,cost,profit,cr,epc,roi,events,pending,declined,"
        "lp_views,lp_clicks,lp_ctr,cpa,cpc,bot_clicks,currency",
        "'=HYPERLINK(1),1,1,0,0.00,0.00,0.00,0.00,0.00,,0,0,0,0,0,,,0.00,0,USD",
        "total,1,1,0,0.00,0.00,0.00,0.00,0.00,,0,0,0,0,0,,,0.00,0,USD",
    ]


@pytest.mark.parametrize(
    "args, reason",
    [
        ({"group_by": "colour"}, "group_by must be one of day, hour, flow"),
        ({"from": "2024-13-01"}, "from must be a date like 2024-05-31"),
        ({"to": "yesterday"}, "to must be a date like 2024-05-31"),
        ({"from": "2024-05-02", "to": "2024-05-01"}, "from must not be after to"),
        ({"flow_id": "abc"}, "flow_id must be a whole number"),
        ({"country": "USA"}, "country must be a two-letter ISO code such as US"),
    ],
)
def test_stats_api_refuses_bad_parameters_with_the_reason(api, args, reason):
    with pytest.raises(ValidationError):
        parse_query(args)
    status, body = api.get("/api/v1/stats", query_string=args)
    assert status == 400
    assert body["error"].startswith(reason)


def test_stats_api_needs_a_token(client):
    assert client.get("/api/v1/stats").status_code == 401


def test_device_is_an_alias_of_device_type(app, api):
    flow = add_flow()
    add_click(flow, "2024-05-01 10:00", device_type="mobile")
    assert [row["key"] for row in stats_api(api, {"group_by": "device"})] == ["mobile"]


def test_events_that_are_not_conversions_count_nowhere_in_conversions(app):
    with db.connection_context():
        flow = add_flow("Events")
        click = add_click(flow, "2024-05-01 10:00")
        add_conversion(click, "0", event="lead", is_conversion=False)
        add_conversion(click, "40.00", event="sale")
        rows = run_report(ReportQuery("flow", flow_id=flow.id))
    assert [(row.clicks, row.conversions, row.revenue, row.cr) for row in rows] == [
        (1, 1, Decimal("40.00"), Decimal("100.00"))
    ]


def test_a_report_in_another_currency_shows_its_rows_and_totals_in_that_currency(app):
    with db.connection_context():
        flow = add_flow()
        add_click(flow, "2024-05-01 12:00")
        query = parse_query(
            {"group_by": "flow", "date_from": "2024-05-01", "date_to": "2024-05-01"}, currency="EUR"
        )
        rows = run_report(query)
        assert [row.currency for row in rows] == ["EUR"]
        assert total(rows, query.currency).currency == "EUR"
