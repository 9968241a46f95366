"""The sub1 combinations of every flow (``rollups.EVERY_FLOW_DAY`` and ``EVERY_FLOW_WEEK``): the
sub1 rows summed over the flows per UTC day and per week from Monday, kept with them by the
worker, a rebuild and the dirty days' roll-up. A report of every flow by country, OS and sub1
reads them for the whole weeks and days of its period where no flow's day is dirty, and equals
the same report read from the raw rows only: whole, a page at a time, filtered, in a zone off
UTC, with dirty days, before and after they are rolled up again."""

import dataclasses
import datetime

import pytest
from peewee import fn

from tracker.models import Flow, RollupCombo
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from factories import add_click, add_flow
from test_combo_rollup import by_keys, pages, raw

FIRST = datetime.datetime(2024, 4, 1)  # a Monday
NOW = datetime.datetime(2024, 4, 24, 6, 30)  # rolled up to 04-24 06:00: three whole weeks, then two days
LOW, HIGH = datetime.date(2024, 4, 1), datetime.date(2024, 4, 23)
COUNTRIES, SYSTEMS, DEVICES = ["US", "DE", ""], ["iOS", "Android"], ["mobile", "desktop"]
ZONES = ["z1", "z2", "z3", ""]
QUERIES = [
    ("country,os,sub1", ()),
    ("sub1", (("country", "US"),)),
    ("sub1", (("country", "US"), ("os", "iOS"))),
    ("os,sub1", (("sub1", "z1"), ("sub1", ""))),
    ("country,sub1", ()),
]


@pytest.fixture
def flows(dataset_copy):
    def write():
        both = [add_flow("A"), add_flow("B"), add_flow("C")]
        moment, number = FIRST + datetime.timedelta(hours=1), 0
        while moment < NOW:
            add_click(
                both[number % 3],
                moment.strftime("%Y-%m-%d %H:%M"),
                country=COUNTRIES[number % 3],
                os=SYSTEMS[number % 2 if number % 5 else 0],
                device_type=DEVICES[number % 7 % 2],
                sub1=ZONES[number % 4 if number % 3 else 1],
                is_bot=number % 11 == 0,
                is_unique=number % 3 == 0,
            )
            moment += datetime.timedelta(hours=5, minutes=number % 50)
            number += 1

    dataset_copy("every_flow", write)
    rollups.advance(now=NOW)
    return list(Flow.select().order_by(Flow.id))


def check_all(low=LOW, high=HIGH, **options):
    for group_by, filters in QUERIES:
        query = ReportQuery(group_by, low, high, filters=filters, **options)
        expected = raw(query)
        assert by_keys(run_report(query)) == expected, (group_by, filters, options)
        seen, _ = pages(dataclasses.replace(query, order="clicks"), 3)
        assert dict(seen) == expected and len(seen) == len(expected), (group_by, filters, options)


def summed(kind, bucket, where):
    """The rows of ``kind`` (or the sum of them per ``bucket`` of their day), as a mapping."""
    model = RollupCombo
    select = (
        model.select(
            *bucket,
            model.is_bot,
            model.country,
            model.os,
            model.sub1,
            *[fn.SUM(model.clicks), fn.SUM(model.lp_views)],
        )
        .where(model.kind == kind, *where)
        .group_by(*bucket, model.is_bot, model.country, model.os, model.sub1)
    )
    return {tuple(row[:-2]): tuple(row[-2:]) for row in select.tuples()}


def week_rows():
    return [
        row.day
        for row in RollupCombo.select(RollupCombo.day)
        .where(RollupCombo.kind == rollups.EVERY_FLOW_WEEK)
        .distinct()
    ]


def test_every_flow_rows_are_the_sub1_rows_summed(flows):
    model = RollupCombo
    for kind in (rollups.EVERY_FLOW_DAY, rollups.EVERY_FLOW_WEEK):
        stray = model.select().where(model.kind == kind, (model.flow_id != 0) | (model.device_type != ""))
        assert not stray.exists()
    days = summed(rollups.EVERY_FLOW_DAY, [model.day], [])
    assert days == summed("sub1", [model.day], []) and len(days) > 50
    # the whole weeks only (the one of 04-22 has two days rolled up), on PostgreSQL only
    weeks = [FIRST + datetime.timedelta(days=7 * n) for n in range(3)]
    assert sorted(week_rows()) == (weeks if rollups.weeks_kept() else [])
    for monday in week_rows():
        week = [model.day >= monday, model.day < monday + rollups.WEEK]
        assert summed(rollups.EVERY_FLOW_WEEK, [], [model.day == monday]) == summed(
            rollups.EVERY_FLOW_DAY, [], week
        )


def test_a_report_of_every_flow_reads_the_weeks_and_the_days(flows):
    check_all()
    check_all(include_bots=True)
    check_all(tz="America/New_York")
    check_all(low=datetime.date(2024, 4, 3), high=datetime.date(2024, 4, 30))
    query = ReportQuery("country,os,sub1", LOW, HIGH)
    before = by_keys(run_report(query))
    model = RollupCombo
    humans = [model.is_bot == False, model.country == "US", model.os == "iOS", model.sub1 == "z2"]  # noqa: E712
    # rows changed by hand show where the report reads them: the week of 04-08 on PostgreSQL, a
    # day of it on SQLite (which keeps no weeks), the day 04-22 (after the whole weeks) on both
    weeks = rollups.weeks_kept()
    week = [
        model.kind == rollups.EVERY_FLOW_DAY,
        model.day >= FIRST + rollups.WEEK,
        model.day < FIRST + 2 * rollups.WEEK,
    ]
    in_week = model.select(model.day).where(*week, *humans).first().day
    added = 0
    for kind, day, read in (
        (rollups.EVERY_FLOW_WEEK, FIRST + rollups.WEEK, weeks),
        (rollups.EVERY_FLOW_DAY, in_week, not weeks),
        (rollups.EVERY_FLOW_DAY, datetime.datetime(2024, 4, 22), True),
    ):
        changed = (
            model.update(clicks=model.clicks + 1000)
            .where(model.kind == kind, model.day == day, *humans)
            .execute()
        )
        added += 1000 * changed if read else 0
    assert added >= 2000
    assert (
        by_keys(run_report(query))[("US", "iOS", "z2")]["clicks"]
        == before[("US", "iOS", "z2")]["clicks"] + added
    )
    # one flow's report reads its own rows, untouched
    one = ReportQuery("country,os,sub1", LOW, HIGH, flow_id=flows[0].id)
    assert by_keys(run_report(one)) == raw(one)
    # by device type too: the flows' rows, which hold it
    device = ReportQuery("device_type,sub1", LOW, HIGH)
    assert by_keys(run_report(device)) == raw(device)
    rollups.rebuild(datetime.datetime(2024, 4, 8), datetime.datetime(2024, 4, 23))
    assert by_keys(run_report(query)) == before == raw(query)


def test_a_dirty_day_reads_its_flows_rows_until_rolled_up_again(flows):
    """A late click on a day of the second week: the report reads that week's other days from
    their every-flow rows and the dirty day from the flows' own rows (the late one's flow raw);
    the next run rolls the day up again, and its week with it."""
    model = RollupCombo
    day, week = datetime.datetime(2024, 4, 10), FIRST + rollups.WEEK
    stale = [
        (model.kind == rollups.EVERY_FLOW_WEEK) & (model.day == week)
        | (model.kind == rollups.EVERY_FLOW_DAY) & (model.day == day)
    ]
    late = add_click(flows[1], "2024-04-10 13:20", click_id="late0001", country="US", os="iOS", sub1="z1")
    rollups.mark([(late.created_at, late.flow_id)], now=NOW)
    assert model.update(clicks=model.clicks + 1000).where(*stale).execute() > 0  # not read while dirty
    check_all()
    check_all(tz="Asia/Kolkata")
    rollups.advance(now=NOW)
    assert not model.select().where(*stale, model.clicks >= 1000).exists()
    check_all()
    assert summed(rollups.EVERY_FLOW_DAY, [], [model.day == day]) == summed("sub1", [], [model.day == day])
    in_week = [model.day >= week, model.day < week + rollups.WEEK]
    if rollups.weeks_kept():
        assert summed(rollups.EVERY_FLOW_WEEK, [], [model.day == week]) == summed("sub1", [], in_week)
