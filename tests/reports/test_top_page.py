"""A page of a report read raw by many values (``country,os,sub1`` ordered by a figure) is
the same rows, with the same figures, as that slice of the whole report: for every order, with
and without bots, on every page. The database picks such a page (GROUP BY … ORDER BY … LIMIT);
the whole report is added up row by row: two paths that must agree."""

import dataclasses
import datetime
from decimal import Decimal

import pytest

from tracker.api.shapes import stats_row
from tracker.reports.queries import CLICK_ORDERS, parse_query, run_report, run_stats

from factories import add_click, add_conversion, add_flow

COMBOS = [(country, os, sub1) for country in ("US", "DE") for os in ("Android", "iOS") for sub1 in ("a", "b")]
ARGS = {"group_by": "country,os,sub1", "from": "2024-05-01", "to": "2024-05-02"}
# Per combination: clicks of people, of them unique, landed, landed and clicked through, their
# cost, and bot clicks. Each figure ranks the combinations in another order, so a page picked by
# the wrong figure (or counting bots where it should not) is another page.
PEOPLE = [9, 2, 7, 4, 8, 3, 6, 5]
UNIQUE = [1, 2, 6, 3, 7, 0, 5, 4]
LANDED = [8, 2, 7, 4, 1, 3, 6, 5]
THROUGH = [2, 0, 7, 4, 1, 3, 6, 5]
COST = ["0.50", "3.00", "1.00", "2.50", "0.25", "4.00", "1.50", "2.00"]
BOTS = [4, 0, 1, 6, 2, 7, 3, 5]


@pytest.fixture
def clicks(app):
    """The combinations above over two flows, a conversion on some, and two clicks at the
    period's edges: the first instant (in) and the instant after it (out)."""
    flows = add_flow("F"), add_flow("G")
    moment = datetime.datetime(2024, 5, 1, 9)
    for k, (country, os, sub1) in enumerate(COMBOS):
        dims = {"country": country, "os": os, "sub1": sub1}
        for n in range(PEOPLE[k]):
            moment += datetime.timedelta(minutes=3)
            click = add_click(
                flows[n % 2],
                moment.strftime("%Y-%m-%d %H:%M"),
                is_unique=n < UNIQUE[k],
                cost=Decimal(COST[k]) if n == 0 else Decimal(0),
                lander_id=1 if n < LANDED[k] else None,
                lp_clicked_at=moment if n < THROUGH[k] else None,
                **dims,
            )
            if n < k % 3:
                add_conversion(click, "2.50")
        for _ in range(BOTS[k]):
            add_click(flows[0], moment.strftime("%Y-%m-%d %H:%M"), is_bot=True, cost=Decimal("0.01"), **dims)
    edge = {"country": "US", "os": "Android", "sub1": "a"}
    add_click(flows[1], "2024-05-01 00:00", **edge)  # in the period: US/Android/a has 10
    add_click(flows[1], "2024-05-03 00:00", **dict(edge, sub1="z"))  # after it
    return flows


def pages(args, limit):
    out, cursor = [], None
    while True:
        report = run_stats(
            parse_query(dict(args, limit=str(limit), **({"cursor": cursor} if cursor else {})))
        )
        out.append([stats_row(row) for row in report.items])
        cursor = report.next
        if cursor is None:
            return out, report


@pytest.mark.parametrize("order", CLICK_ORDERS)
@pytest.mark.parametrize("include_bots", ["0", "1"])
def test_each_page_is_that_slice_of_the_whole_report(clicks, order, include_bots):
    args = dict(ARGS, order=order, include_bots=include_bots)
    whole_query = dataclasses.replace(parse_query(args), limit=None, offset=0)
    whole = [stats_row(row) for row in run_report(whole_query)]
    assert len(whole) == len(COMBOS)
    for limit, sizes in ((3, [3, 3, 2]), (4, [4, 4])):  # the last page full: no next after it
        got, last = pages(args, limit)
        assert [len(page) for page in got] == sizes
        assert [row for page in got for row in page] == whole
        assert stats_row(last.totals)["clicks"] == sum(row["clicks"] for row in whole)


def test_the_orders_differ_so_each_is_checked(clicks):
    firsts = {
        order: [
            row.keys
            for row in run_report(dataclasses.replace(parse_query(dict(ARGS, order=order)), limit=None))
        ][:3]
        for order in CLICK_ORDERS
    }
    assert len({tuple(first) for order, first in firsts.items() if order}) == len(CLICK_ORDERS) - 1


def test_a_page_picked_by_the_database_is_in_the_report_currency(clicks):
    report = run_stats(parse_query(dict(ARGS, limit="3"), currency="EUR"))
    assert {row.currency for row in report.items} == {"EUR"} and report.totals.currency == "EUR"
