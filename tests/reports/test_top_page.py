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


@pytest.fixture
def clicks(app):
    """Combination k: k+1 clicks of people (k unique, k landed, k//2 of them clicked through,
    a cost that falls with k), 2k bot clicks, k//3 conversions. Every figure but lp_clicks differs
    between combinations; lp_clicks ties (2 and 3, 4 and 5, 6 and 7), broken by clicks, then
    key, on both paths (the page's was by key alone). A second flow has a share of them."""
    flows = add_flow("F"), add_flow("G")
    moment = datetime.datetime(2024, 5, 1, 9)
    for k, (country, os, sub1) in enumerate(COMBOS):
        dims = {"country": country, "os": os, "sub1": sub1}
        for n in range(k + 1):
            moment += datetime.timedelta(minutes=7)
            click = add_click(
                flows[n % 2],
                moment.strftime("%Y-%m-%d %H:%M"),
                is_unique=n < k,
                cost=Decimal(8 - k) / (k + 1),
                lander_id=1 if n < k else None,
                lp_clicked_at=moment if n < k // 2 else None,
                **dims,
            )
            if n < k // 3:
                add_conversion(click, "2.50")
        for _ in range(2 * k):
            add_click(flows[0], moment.strftime("%Y-%m-%d %H:%M"), is_bot=True, cost=Decimal("0.01"), **dims)
    return flows


def page_rows(report):
    return [stats_row(row) for row in report.items]


@pytest.mark.parametrize("order", CLICK_ORDERS)
@pytest.mark.parametrize("include_bots", ["0", "1"])
def test_each_page_is_that_slice_of_the_whole_report(clicks, order, include_bots):
    args = dict(ARGS, order=order, include_bots=include_bots)
    whole_query = dataclasses.replace(parse_query(args), limit=None, offset=0)
    whole = [stats_row(row) for row in run_report(whole_query)]
    assert len(whole) == len(COMBOS)
    assert len({row["clicks"] for row in whole}) == len(COMBOS)  # no ties to break
    pages, cursor = [], None
    while True:
        query = parse_query(dict(args, limit="3", **({"cursor": cursor} if cursor else {})))
        report = run_stats(query)
        pages.append(page_rows(report))
        assert stats_row(report.totals)["clicks"] == sum(row["clicks"] for row in whole)
        cursor = report.next
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [row for page in pages for row in page] == whole
