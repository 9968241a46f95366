"""The combination rows read by the index that suits the report (``models.COMBO_ORDER``).

On SQLite (a file of its own on the PostgreSQL pass too: the planner is SQLite's): a report over
most of the days rolled up reads them from the index in drill-down order, grouped as they come,
where it read the day index and sorted every row (30-day country,os,sub1 at 1 M clicks: 1.7 s
before, 0.7 s after), one flow's too; a report of one day of a long history reads the day
index; and a page's figures are read from the picked groups' rows only. The reports equal the
raw rows each way."""

import datetime

import pytest

from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report, run_stats

from factories import add_click, add_flow
from sql_helpers import combo_plans
from test_combo_rollup import raw

NOW = datetime.datetime(2024, 6, 10, 6, 30)
FIRST = datetime.date(2024, 4, 1)  # 70 days rolled up before NOW
COUNTRIES, SYSTEMS, ZONES = ["US", "DE", "BR"], ["iOS", "Android"], ["z1", "z2", "z3", "z4", "z5"]


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    return make_app(TRACKER_DATABASE_URL="sqlite:///" + str(tmp_path / "combos.db"))


@pytest.fixture
def history(sqlite_app):
    """Two flows, a click every 7 hours for 70 days, rolled up."""
    flows = [add_flow("A"), add_flow("B")]
    moment = datetime.datetime.combine(FIRST, datetime.time(1))
    number = 0
    while moment < NOW - datetime.timedelta(days=1):
        add_click(
            flows[number % 2],
            moment.strftime("%Y-%m-%d %H:%M"),
            country=COUNTRIES[number % 3],
            os=SYSTEMS[number % 2 if number % 5 else 0],
            sub1=ZONES[number % 5 if number % 7 else 0],
            is_bot=number % 11 == 0,
        )
        moment += datetime.timedelta(hours=7)
        number += 1
    rollups.advance(now=NOW, budget=datetime.timedelta(days=80))
    return flows


def figures(rows):
    return [(row.keys, row.clicks, row.bot_clicks, row.unique_clicks) for row in rows]


def raw_page(query):
    return raw(query, lambda query: figures(run_stats(query).items))


def uses(plan, index):
    return any("INDEX %s " % index in step for step in plan)


def test_most_of_the_days_are_read_in_drill_down_order_without_a_sort(history):
    query = ReportQuery("country,os,sub1", datetime.date(2024, 4, 1), datetime.date(2024, 6, 8), limit=4)
    report = []
    pick, figures_of_page = combo_plans(lambda: report.append(run_stats(query)))
    assert uses(pick, "rollup_combo_order") and not any("FOR GROUP BY" in step for step in pick), pick
    # the page's figures: each picked (country, os) seeks its own sub1 values, not every
    # sub1 of the page under every country and OS of it
    prefixes = {row.keys[:2] for row in report[0].items}
    seeks = [step for step in figures_of_page if "SEARCH" in step]
    assert len(seeks) == len(prefixes) > 1, figures_of_page
    assert all("(kind=? AND country=? AND os=? AND sub1=?)" in step for step in seeks), seeks
    assert figures(report[0].items) == raw_page(query)
    assert len(report[0].items) == 4 and report[0].next


def test_one_day_of_a_long_history_is_read_by_the_day_index(history):
    query = ReportQuery("country,os,sub1", datetime.date(2024, 6, 1), datetime.date(2024, 6, 1), limit=4)
    report = []
    pick, *_ = combo_plans(lambda: report.append(run_stats(query)))
    assert uses(pick, "rollup_combo_kind_day_flow_id"), pick
    assert figures(report[0].items) == raw_page(query)


@pytest.mark.parametrize(
    "group_by, filters",
    [("sub1", (("country", "US"),)), ("sub1", (("country", "US"), ("os", "iOS"))), ("country,os", ())],
)
def test_drill_down_reports_over_most_days_read_the_drill_down_index(history, group_by, filters):
    query = ReportQuery(group_by, datetime.date(2024, 4, 1), datetime.date(2024, 6, 8), filters=filters)
    rows = []
    plans = combo_plans(lambda: rows.extend(run_report(query)))
    assert plans and all(uses(plan, "rollup_combo_order") for plan in plans), plans
    assert figures(rows) == raw(query, lambda query: figures(run_report(query)))


@pytest.mark.parametrize("group_by, limit", [("country,os,sub1", 4), ("country,os", None)])
def test_one_flows_report_over_most_days_reads_the_drill_down_index(history, group_by, limit):
    """Not a flow index (PostgreSQL's, models.POSTGRES_INDEXES): SQLite read one flow's rows by it
    more slowly than the whole kind by the covering drill-down index, and a page's second pass
    then read the flow's rows once per picked prefix instead of seeking its groups."""
    for number in range(18):  # twenty flows: the flow's share of them as in the bench
        add_flow("idle %d" % number)
    query = ReportQuery(
        group_by, datetime.date(2024, 4, 1), datetime.date(2024, 6, 8), flow_id=history[0].id, limit=limit
    )
    rows = []
    plans = combo_plans(lambda: rows.extend(run_stats(query).items))
    assert plans and all(uses(plan, "rollup_combo_order") for plan in plans), plans
    assert figures(rows) == raw_page(query)
