"""Reports in time zones whose hours are not UTC's: a half-hour zone (India), a zone that was
half an hour off only for some years (Venezuela, 2007-2016), and the weekdays in week order."""

import datetime

import pytest
from test_stats import pick, stats

from tracker.reports import rollups

from factories import add_click, add_conversion, add_flow


def clicks_by_key(api, **args):
    return pick(stats(api, **args)["items"], "key", "clicks")


def test_weekdays_come_in_week_order_from_monday(app, api):
    flow = add_flow()
    for day in range(6, 13):  # May 6, 2024 was a Monday; two clicks on Sunday the 12th
        add_click(flow, "2024-05-%02d 12:00" % day)
    add_click(flow, "2024-05-12 13:00")
    rows = clicks_by_key(api, group_by="weekday", **{"from": "2024-05-06", "to": "2024-05-12"})
    assert rows == [
        ("Monday", 1),
        ("Tuesday", 1),
        ("Wednesday", 1),
        ("Thursday", 1),
        ("Friday", 1),
        ("Saturday", 1),
        ("Sunday", 2),
    ]


@pytest.mark.parametrize(
    "tz, clicks, hours",
    [
        # UTC+5:30: 09:45 and 10:15 UTC are 15:15 and 15:45 in Kolkata, one local hour
        ("Asia/Kolkata", ["2024-05-01 09:45", "2024-05-01 10:15"], [("2024-05-01 15:00", 2)]),
        # UTC-4:30 in 2010 (UTC-4 in 2000 and since 2016): 12:15 UTC was 07:45
        (
            "America/Caracas",
            ["2010-06-01 12:15", "2010-06-01 12:45"],
            [("2010-06-01 07:00", 1), ("2010-06-01 08:00", 1)],
        ),
        # UTC-4:30 from December 9, 2007: that year's January and July, and the period's first
        # day, were whole hours off; its last day not
        (
            "America/Caracas",
            ["2007-12-01 12:15", "2007-12-20 12:15", "2007-12-20 12:45"],
            [("2007-12-01 08:00", 1), ("2007-12-20 07:00", 1), ("2007-12-20 08:00", 1)],
        ),
        # UTC-4 again from May 1, 2016: a period from April 2016 into 2017 starts half an hour off
        (
            "America/Caracas",
            ["2016-04-30 12:45", "2017-01-05 12:15"],
            [("2016-04-30 08:00", 1), ("2017-01-05 08:00", 1)],
        ),
    ],
)
def test_hours_are_local_hours_in_a_zone_off_by_half_an_hour(app, api, tz, clicks, hours):
    flow = add_flow()
    for moment in clicks:
        add_click(flow, moment)
    period = {"from": clicks[0][:10], "to": clicks[-1][:10]}
    assert clicks_by_key(api, group_by="hour", tz=tz, **period) == hours


def test_hours_of_the_day_are_the_zones_hours_read_raw_or_rolled_up(app, api):
    flow = add_flow()
    # in Tokyo (UTC+9): 00:30 and 09:00 on May 1, 09:59 and 23:59 on May 2
    for moment in ("2024-04-30 15:30", "2024-05-01 00:00", "2024-05-02 00:59", "2024-05-02 14:59"):
        add_click(flow, moment)
    period = {"from": "2024-05-01", "to": "2024-05-02", "tz": "Asia/Tokyo"}
    expected = [("00", 1), ("09", 2), ("23", 1)]
    assert clicks_by_key(api, group_by="hour_of_day", **period) == expected
    rollups.advance(now=datetime.datetime(2024, 5, 3))
    assert clicks_by_key(api, group_by="hour_of_day", **period) == expected


@pytest.mark.parametrize("basis", ["click", "conversion"])
def test_a_day_holds_what_happened_at_its_first_instant_and_not_at_the_next_days(app, api, basis):
    """The period's edges, on both bases: a click and its conversion at 00:00:00 of the day are
    the day's; at 00:00:00 of the next day they are not."""
    flow = add_flow()
    for when in ("2024-05-02 00:00:00", "2024-05-03 00:00:00"):
        click = add_click(flow, when)
        add_conversion(click, "5.00", when=when)
    body = stats(api, group_by="day", basis=basis, **{"from": "2024-05-02", "to": "2024-05-02"})
    assert pick(body["items"], "key", "clicks", "conversions", "revenue") == [("2024-05-02", 1, 1, "5.00")]
