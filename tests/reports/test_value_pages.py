"""Reports by ``external_id`` or ``ip`` (about a value per click): in the order of the values
(``order=key``, the dashboard's default for them; the API's default stays clicks, DESIGN §4.5),
a page at a time along the click index, each page's rows exactly the whole report's rows,
the totals those of every row, the cursor naming the last value."""

import dataclasses
import datetime
import html
import re

import pytest

from tracker.db import db
from tracker.migrations import copy_clicks_onto_conversions
from tracker.models import CLICK_COPIED, Click
from tracker.reports import queries, rollups
from tracker.reports.queries import ReportQuery, run_report, run_stats, total

from dashboard_helpers import sign_in
from factories import add_click, add_flow
from test_rollups import NOW, dataset_flows, figures
from test_rollups import write_dataset as write_rollups_dataset

LOW, HIGH = datetime.date(2024, 5, 2), datetime.date(2024, 5, 6)


def write_dataset():
    """The rollup tests' dataset with IPs, rolled up to NOW."""
    write_rollups_dataset()
    for number, click in enumerate(Click.select().order_by(Click.click_id)):
        ip = "10.0.%d.%d" % (number % 3, number % 37) if number % 11 else "2001:db8::%x" % (number % 5)
        Click.update(ip=ip).where(Click.click_id == click.click_id).execute()
    copy_clicks_onto_conversions(CLICK_COPIED)  # as if the clicks had come with these IPs
    rollups.advance(now=NOW)


@pytest.fixture
def data(dataset_copy):
    dataset_copy("value-pages", write_dataset)
    return dataset_flows()


def in_database_order(values):
    """``values`` sorted as the database sorts text (its collation; the pages follow it)."""
    values = list(values)
    if not values:
        return []
    marks = ", ".join(["(%s)" % db.param] * len(values))
    sql = "SELECT column1 FROM (VALUES %s) AS given ORDER BY column1" % marks
    return [value for (value,) in db.execute_sql(sql, values).fetchall()]


def walk(query, limit):
    """Every page of ``query`` from the first: ``(rows in order, pages)``; checks each page's totals."""
    whole = total(run_report(query), query.currency)
    rows, pages, after = [], 0, None
    while True:
        page = run_stats(dataclasses.replace(query, limit=limit, after=after))
        assert len(page.items) <= limit
        assert figures([page.totals]) == figures([whole])
        rows.extend(page.items)
        pages += 1
        if page.next is None:
            return rows, pages
        assert page.next.startswith("v") and len(page.items) == limit
        after = page.items[-1].key


@pytest.mark.parametrize("dimension", ["external_id", "ip"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"include_bots": True},
        {"filters": (("country", "US"),)},
        {"filters": (("country", "DE"), ("os", "iOS"))},
        {"flow_id": "first"},
        {"tz": "Asia/Kolkata"},
    ],
)
def test_pages_in_value_order_are_the_whole_report(data, dimension, options):
    if options.get("flow_id") == "first":
        options = dict(options, flow_id=data[0].id)
    query = ReportQuery(dimension, LOW, HIGH, order="key", **options)
    whole = run_report(query)  # every row, read whole
    rows, pages = walk(query, limit=7)
    assert [row.key for row in rows] == in_database_order(row.key for row in whole)
    assert {row.keys: figures([row])[row.key] for row in rows} == {
        row.keys: figures([row])[row.key] for row in whole
    }
    assert pages == max(1, -(-len(whole) // 7))


def test_a_value_page_compares_each_row_with_the_period_before(data):
    query = ReportQuery(
        "external_id", datetime.date(2024, 5, 5), datetime.date(2024, 5, 7), compare="previous", order="key"
    )
    page = run_stats(dataclasses.replace(query, limit=10))
    before = {row.keys: figures([row])[row.key] for row in run_report(query.previous())}
    assert page.items
    for row in page.items:
        expected = before.get(row.keys)
        if expected is None:
            assert row.previous.clicks == row.previous.conversions == 0
        else:
            assert figures([row.previous])[row.key] == expected
    assert figures([page.totals.previous])[None] == figures([total(run_report(query.previous()))])[None]


def test_the_stats_api_pages_by_cursor_and_refuses_a_made_up_one(data, api):
    args = {"group_by": "ip", "from": "2024-05-02", "to": "2024-05-06", "limit": "4", "order": "key"}
    status, first = api.get("/api/v1/stats", query_string=args)
    assert status == 200 and first["next"].startswith("v")
    status, second = api.get("/api/v1/stats", query_string=dict(args, cursor=first["next"]))
    assert status == 200
    keys = [row["key"] for row in first["items"] + second["items"]]
    assert keys == in_database_order(keys) and len(set(keys)) == 8
    assert second["totals"] == first["totals"]
    for cursor in ("v!!", "v" + "A" * 2000, "vAA", "v_w"):
        status, body = api.get("/api/v1/stats", query_string=dict(args, cursor=cursor))
        assert (status, body) == (400, {"error": "cursor must be the next of a previous answer"}), cursor


def shown_ids(page):
    return re.findall(r"\bid-\d\b", page[page.index("<tbody>") : page.index("</tbody>")])


def test_the_reports_page_pages_external_ids_by_value(app, client):
    sign_in(client)
    flow = add_flow("Ids")
    for n in range(7):
        add_click(flow, "2024-05-01 10:%02d" % n, external_id="id-%d" % (6 - n))
    args = "group_by=external_id&from=2024-05-01&to=2024-05-01&limit=5"
    first = client.get("/reports?" + args).get_data(as_text=True)
    assert shown_ids(first) == ["id-%d" % n for n in range(5)]
    assert "First page" not in first and "(every row, not only this page)" in first
    link = re.search(r'id="next-page" href="([^"]+)"', first).group(1)
    second = client.get(html.unescape(link)).get_data(as_text=True)
    assert shown_ids(second) == ["id-5", "id-6"]
    assert "First page" in second and 'id="next-page"' not in second


def test_many_flows_are_picked_in_groups_of_compound_selects(data, monkeypatch):
    """SQLite refuses a compound SELECT of more than 500 terms: past a few hundred flows the
    per-flow picks are grouped, with the same pages."""
    query = ReportQuery("external_id", LOW, HIGH, order="key")
    expected = [row.key for row in walk(query, limit=7)[0]]
    monkeypatch.setattr(queries, "COMPOUND_TERMS", 2)
    assert [row.key for row in walk(query, limit=7)[0]] == expected


def test_the_apis_default_order_stays_clicks_first(app, api):
    """DESIGN §4.5: ``order`` defaults to clicks, descending, for every dimension; value order is
    asked for with ``order=key``."""
    flow = add_flow("Order")
    for n, external_id in enumerate(["a", "b", "b", "c", "c", "c"]):
        add_click(flow, "2024-05-01 10:%02d" % n, external_id=external_id)
    args = {"group_by": "external_id", "from": "2024-05-01", "to": "2024-05-01", "limit": "2"}
    status, page = api.get("/api/v1/stats", query_string=args)
    assert status == 200 and [(r["key"], r["clicks"]) for r in page["items"]] == [("c", 3), ("b", 2)]
    assert page["next"] == "2"
    status, page = api.get("/api/v1/stats", query_string=dict(args, order="key"))
    assert status == 200 and [(r["key"], r["clicks"]) for r in page["items"]] == [("a", 1), ("b", 2)]
    assert page["next"].startswith("v")
