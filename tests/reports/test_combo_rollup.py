"""The combination rollups (``rollup_combo``): a report by several dimensions of few values, or by
one filtered on another (the dashboard's drill-down), reads it for the whole UTC days rolled up
and equals the same report read from the raw rows only, before and after rolling up, across
time zones, with dirty days, after late clicks, and after a rebuild."""

import dataclasses
import datetime
from decimal import Decimal

import pytest

from tracker.models import Click, RollupCombo, RollupDirty, Setting
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report, run_stats

from factories import add_click
from test_rollups import NOW, dataset_flows, figures
from test_rollups import write_dataset as write_rollups_dataset

LOW, HIGH = datetime.date(2024, 5, 2), datetime.date(2024, 5, 6)
# (group_by, filters): each is held by the combination rollup
QUERIES = [
    ("country,os", ()),
    ("flow,country", ()),
    ("day,country", ()),
    ("os,country,browser", ()),
    ("device_type,browser,connection_type", ()),
    ("os", (("country", "US"),)),
    ("day", (("country", "DE"),)),
    ("flow", (("os", "iOS"),)),
    ("country", (("os", "iOS"), ("os", "Android"))),
    ("os", (("country", ""),)),
    ("flow,os", (("country", "US"), ("browser", ""))),
    ("route,lander,offer", ()),
    ("offer,country", ()),
    ("flow,offer", ()),
    ("offer", (("country", "US"),)),
    ("day", (("offer", 5),)),
    ("country", (("lander", None), ("lander", 2))),
    ("lander", (("route", 1), ("country", ""))),
    ("country,os,sub1", ()),
    ("sub1", (("country", "US"),)),
    ("sub1", (("country", "US"), ("os", "iOS"))),
    ("country,device_type", (("sub1", "a"), ("sub1", ""))),
    ("flow,sub1", (("device_type", "mobile"),)),
    ("day,sub1", (("os", "Android"),)),
]


def by_keys(rows):
    return {row.keys: figures([row])[row.key] for row in rows}


def raw(query, read=lambda query: by_keys(run_report(query))):
    """The report read from the raw rows only (``read(query)``): with no rolled-up point nothing
    is read rolled up."""
    until = Setting.get_or_none(Setting.key == rollups.UNTIL_KEY)
    Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
    try:
        return read(query)
    finally:
        if until is not None:
            Setting.create(key=rollups.UNTIL_KEY, value=until.value)


def check_all(low=LOW, high=HIGH, **options):
    for group_by, filters in QUERIES:
        query = ReportQuery(group_by, low, high, filters=filters, **options)
        got = by_keys(run_report(query))
        assert got == raw(query), (group_by, filters, options)


def write_dataset():
    """The rollup tests' dataset with devices, browsers and connection types."""
    write_rollups_dataset()
    for number, click in enumerate(Click.select().order_by(Click.click_id)):
        Click.update(
            device_type=["mobile", "desktop", "tablet", ""][number % 4],
            browser=["Chrome", "Safari", ""][number % 3],
            connection_type=["Cellular", "Cable/DSL"][number % 5 // 4],
        ).where(Click.click_id == click.click_id).execute()


@pytest.fixture
def data(dataset_copy):
    dataset_copy("combinations", write_dataset)
    return dataset_flows()


def test_reports_by_combinations_equal_the_raw_rows_before_and_after_rolling_up(data):
    check_all()
    rollups.advance(now=NOW)
    # of each kind, one row per flow, UTC day, bot flag and combination: fewer than the clicks
    for kind in rollups.COMBO_KINDS:
        assert 0 < RollupCombo.select().where(RollupCombo.kind == kind).count() < Click.select().count()
    check_all()
    check_all(include_bots=True)
    check_all(basis="conversion")
    check_all(low=datetime.date(2024, 4, 1), high=datetime.date(2024, 6, 1))


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata", "Pacific/Chatham"])
def test_time_zones_read_the_edges_raw(data, tz):
    rollups.advance(now=NOW)
    check_all(tz=tz)
    check_all(tz=tz, basis="conversion")


def test_the_combination_rows_are_what_the_report_reads(data):
    rollups.advance(now=NOW)
    query = ReportQuery("country,os", LOW, HIGH)
    before = by_keys(run_report(query))
    days = RollupCombo.select().where(
        RollupCombo.kind == "device",
        RollupCombo.day >= datetime.datetime(2024, 5, 2),
        RollupCombo.day < datetime.datetime(2024, 5, 7),
    )
    damaged = days.where(RollupCombo.is_bot == False).count()  # noqa: E712
    RollupCombo.update(clicks=RollupCombo.clicks + 1000).execute()
    after = by_keys(run_report(query))
    assert sum(row["clicks"] for row in after.values()) == sum(row["clicks"] for row in before.values()) + (
        1000 * damaged
    )
    # the single-dimension report reads its own rollup, untouched
    assert by_keys(run_report(ReportQuery("country", LOW, HIGH))) == raw(ReportQuery("country", LOW, HIGH))
    rollups.rebuild(datetime.datetime(2024, 4, 30), datetime.datetime(2024, 5, 10))
    assert by_keys(run_report(query)) == before == raw(query)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_marks_and_clicks_at_the_edges_of_what_is_rolled_up(data, tz):
    """Clicks and dirty marks on the instants where the combination rows end and the raw rows
    begin: the first hour of the first whole day, the hour the rolled-up days end (the day
    rolled up by the hour only), a later hour of that day, a day before the period, the
    period's last instant and the next; and a mark in another flow than the one reported.
    Each report, whole and a page at a time, equals the raw rows."""
    rollups.advance(now=NOW)  # rolled up to 2024-05-08 12:00; the combination rows to 05-08
    flow, other = data[0], data[1]
    moments = [
        ("2024-05-01 10:00:00", flow),  # before the period
        ("2024-05-02 00:00:00", flow),  # the first instant of the first whole day
        ("2024-05-05 09:00:00", other),  # another flow's day
        ("2024-05-08 00:00:00", flow),  # where the rolled-up days end
        ("2024-05-08 03:20:00", flow),  # rolled up by the hour, not in the combinations
        ("2024-05-08 23:59:59", flow),  # the period's last second
        ("2024-05-09 00:00:00", flow),  # the first instant after it
    ]
    for number, (moment, owner) in enumerate(moments):
        late = add_click(owner, moment, click_id="edge%d" % number, country="US", os="iOS", sub1="b")
        if late.created_at < datetime.datetime(2024, 5, 8, 12):
            rollups.mark([(late.created_at, late.flow_id)], now=NOW)
    assert RollupDirty.select().count() == 5
    for flow_id in (flow.id, None):
        whole = ReportQuery("country,os,sub1", LOW, datetime.date(2024, 5, 8), tz=tz, flow_id=flow_id)
        expected = raw(whole)
        assert by_keys(run_report(whole)) == expected, flow_id
        seen, _ = pages(dataclasses.replace(whole, order="clicks"), 4)
        assert dict(seen) == expected and len(seen) == len(expected), flow_id


def test_the_drill_down_to_sub1_reads_the_sub1_rows(data):
    """``sub1`` of the US clicks, whole and a page at a time, reads the sub1 kind: a row of it
    changed by hand shows in both, and a rebuild puts it right."""
    rollups.advance(now=NOW)
    query = ReportQuery("sub1", LOW, HIGH, filters=(("country", "US"),), order="clicks")
    before = by_keys(run_report(query))
    damaged = (
        RollupCombo.select()
        .where(RollupCombo.kind == "sub1", RollupCombo.country == "US", RollupCombo.is_bot == False)  # noqa: E712
        .where(RollupCombo.day == datetime.datetime(2024, 5, 3))
        .first()
    )
    RollupCombo.update(clicks=RollupCombo.clicks + 1000).where(RollupCombo.id == damaged.id).execute()
    expected = {keys: dict(row) for keys, row in before.items()}
    expected[(damaged.sub1,)]["clicks"] += 1000
    assert by_keys(run_report(query)) == expected
    assert dict(pages(query, 2)[0]) == expected
    rollups.rebuild(datetime.datetime(2024, 4, 30), datetime.datetime(2024, 5, 10))
    assert by_keys(run_report(query)) == before == raw(query)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_days_read_the_combination_rows_only_where_they_are_utc_days(data, tz):
    """A report by day and country reads the combination rows of whole UTC days when its days
    are UTC days; in a zone off UTC their days are not the zone's, and it reads the raw rows."""
    rollups.advance(now=NOW)
    day = datetime.datetime(2024, 5, 4)
    query = ReportQuery("day,country", LOW, HIGH, tz=tz)
    before = raw(query)
    us = RollupCombo.select().where(
        RollupCombo.day == day,
        RollupCombo.is_bot == False,  # noqa: E712
        RollupCombo.country == "US",
    )
    # one row of each kind (both hold the country), whichever the report reads
    damaged = [us.where(RollupCombo.kind == kind).first().id for kind in rollups.COMBO_KINDS]
    RollupCombo.update(clicks=RollupCombo.clicks + 1000).where(RollupCombo.id.in_(damaged)).execute()
    if tz == "UTC":
        before[("2024-05-04", "US")]["clicks"] += 1000
    assert by_keys(run_report(query)) == before


@pytest.mark.parametrize("low, high", [(LOW, None), (None, HIGH), (None, None)])
def test_open_periods_in_a_zone_off_utc_equal_the_raw_rows(data, low, high):
    rollups.advance(now=NOW)
    check_all(low, high, tz="America/New_York")
    check_all(low, high, tz="UTC")


def test_a_change_to_a_rolled_up_day_counts_at_once_and_after_the_next_run(data):
    rollups.advance(now=NOW)
    landed = Click.select().where(Click.lander_id.is_null(False), Click.lp_clicked_at.is_null()).first()
    Click.update(lp_clicked_at=NOW).where(Click.click_id == landed.click_id).execute()
    rollups.mark([(landed.created_at, landed.flow_id)], now=NOW)
    costly = Click.get_by_id("r0000010")
    Click.update(cost=Decimal("9.99"), country="FR").where(Click.click_id == costly.click_id).execute()
    rollups.mark([(costly.created_at, costly.flow_id)], now=NOW)
    late = add_click(data[2], "2024-05-03 04:10", click_id="latewrite", country="US", os="iOS", offer_id=5)
    rollups.mark([(late.created_at, late.flow_id)], now=NOW)
    assert RollupDirty.select().count() == 3
    check_all(low=datetime.date(2024, 5, 1), high=datetime.date(2024, 5, 8))
    rollups.advance(now=NOW)
    assert RollupDirty.select().count() == 0
    check_all(low=datetime.date(2024, 5, 1), high=datetime.date(2024, 5, 8))


def test_an_unmarked_change_is_corrected_by_a_rebuild(data):
    rollups.advance(now=NOW)
    add_click(data[1], "2024-05-03 10:10", click_id="unmarked", country="DE", os="iOS")
    query = ReportQuery("country,os", datetime.date(2024, 5, 3), datetime.date(2024, 5, 3))
    assert by_keys(run_report(query))[("DE", "iOS")]["clicks"] == raw(query)[("DE", "iOS")]["clicks"] - 1
    rollups.rebuild(datetime.datetime(2024, 5, 3), datetime.datetime(2024, 5, 4))
    assert by_keys(run_report(query)) == raw(query)
    check_all()


def test_the_day_not_yet_rolled_up_and_new_clicks_count_at_once(data):
    rollups.advance(now=NOW)
    add_click(data[0], "2024-05-08 12:05", click_id="new1", country="US", os="Android")
    add_click(data[0], "2024-05-08 12:10", click_id="new2", country="US", os="Android", is_bot=True)
    check_all(low=datetime.date(2024, 5, 1), high=datetime.date(2024, 5, 8))
    check_all(low=datetime.date(2024, 5, 1), high=datetime.date(2024, 5, 8), include_bots=True)


def pages(whole, size):
    """Every row of ``whole`` read a page of ``size`` at a time, in the order the pages give them."""
    seen, offset = [], 0
    while True:
        page = run_stats(dataclasses.replace(whole, limit=size, offset=offset))
        seen.extend((row.keys, figures([row])[row.key]) for row in page.items)
        if page.next is None:
            return seen, page.totals
        offset = int(page.next)


@pytest.mark.parametrize(
    "group_by",
    [
        "country,os",
        "country,os,sub1",
        "sub1,country",
        "route,lander,offer",
        "offer,country",
        "flow,sub1",
        "flow,os",
    ],
)
def test_a_page_of_a_combination_report_is_the_whole_reports_rows(data, group_by):
    """Every kind, keys that may be NULL (no route, lander or offer), and the flow with another
    dimension (SQLite reads a page's figures narrowed by its keys, the flow among them)."""
    rollups.advance(now=NOW)
    whole = ReportQuery(group_by, LOW, HIGH, order="clicks")
    everything = by_keys(run_report(whole))
    seen, totals = pages(whole, 5)
    assert figures([totals])[None]["clicks"] == sum(row["clicks"] for row in everything.values())
    assert dict(seen) == everything == raw(whole)
    assert len(seen) == len(everything)


@pytest.mark.parametrize(
    "order, options",
    [
        ("clicks", {}),
        ("clicks", {"include_bots": True}),
        ("bot_clicks", {}),
        ("unique_clicks", {"tz": "America/New_York"}),
        ("cost", {"include_bots": True}),
        ("lp_views", {"tz": "Asia/Kolkata"}),
        ("lp_clicks", {}),
    ],
)
def test_pages_picked_from_the_combination_rows_and_the_raw_edges_are_the_raw_reports(data, order, options):
    """The page is picked from the combination rows of the whole UTC days and the raw clicks of
    the rest (a zone's edges, a dirty day, the day not yet rolled up) in one ordered list: the
    pages read in turn give the raw report's rows in its order, figure by figure."""
    rollups.advance(now=NOW)
    late = add_click(data[1], "2024-05-03 04:10", click_id="latewrite", country="US", os="iOS", sub1="b")
    rollups.mark([(late.created_at, late.flow_id)], now=NOW)
    add_click(data[0], "2024-05-08 12:05", click_id="new1", country="US", os="iOS", sub1="b", cost="0.75")
    whole = ReportQuery("country,os,sub1", LOW, datetime.date(2024, 5, 8), order=order, **options)
    seen, _ = pages(whole, 3)
    expected = raw(whole)
    assert dict(seen) == expected and len(seen) == len(expected)
    Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
    assert [keys for keys, _ in seen] == [row.keys for row in run_report(whole)]


@pytest.mark.parametrize("group_by", ["country,os", "country,os,sub1", "sub1,offer"])
def test_a_report_of_several_dimensions_without_a_limit_is_every_row(data, group_by):
    """No ``limit`` (the API's default where no dimension has many values): every row, no cursor."""
    rollups.advance(now=NOW)
    query = ReportQuery(group_by, LOW, HIGH)
    report = run_stats(query)
    expected = raw(query)
    assert report.next is None and len(report.items) == len(expected)
    assert by_keys(report.items) == expected
