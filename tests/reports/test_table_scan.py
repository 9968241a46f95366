"""A raw read over most of the clicks of several flows scans the click table on SQLite (its rows
in their own order, not one flow after the other by the index), and reads the same figures; a
read of one flow, or of a small share of the clicks, keeps the index. PostgreSQL's planner
chooses for itself. (``sub1,offer`` is read raw: no combination rollup holds both.)"""

import datetime

import pytest

from tracker.db import db, is_postgres
from tracker.models import Click, Conversion
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from test_rollups import NOW, check, dataset_flows, write_dataset


@pytest.fixture
def data(dataset_copy):
    dataset_copy("rollups", write_dataset)
    rollups.advance(now=NOW)
    return dataset_flows()


def click_reads(query):
    """The report's figures and the SQL texts it sent that read the click table (SQLite)."""
    texts = []
    if not is_postgres():
        db.connection().set_trace_callback(texts.append)
    try:
        rows = run_report(query)
    finally:
        if not is_postgres():
            db.connection().set_trace_callback(None)
    return rows, [text for text in texts if 'FROM "click"' in text]


def direct_count(low, high, flow_ids=None):
    """``{(sub1, offer): (clicks, bot clicks, conversions)}`` counted straight from the raw rows,
    the conversions by their click's time (bots' left out)."""
    start = datetime.datetime.combine(low, datetime.time())
    end = datetime.datetime.combine(high + datetime.timedelta(days=1), datetime.time())
    out = {}
    for click in Click.select():
        if start <= click.created_at < end and (flow_ids is None or click.flow_id in flow_ids):
            figures = out.setdefault((click.sub1, click.offer_id), [0, 0, 0])
            figures[1 if click.is_bot else 0] += 1
            approved = Conversion.select().where(
                Conversion.click == click.click_id, Conversion.status == "approved", Conversion.is_conversion
            )
            figures[2] += 0 if click.is_bot else approved.count()
    return {keys: tuple(figures) for keys, figures in out.items()}


def counted(rows):
    return {row.keys: (row.clicks, row.bot_clicks, row.conversions) for row in rows}


@pytest.mark.parametrize("flows", [3, 2])
def test_a_read_of_most_clicks_of_several_flows_scans_the_table(data, flows):
    low, high = datetime.date(2024, 5, 1), datetime.date(2024, 5, 8)
    chosen = tuple(("flow", flow.id) for flow in data[:flows])
    rows, reads = click_reads(ReportQuery("sub1,offer", low, high, filters=chosen))
    assert counted(rows) == direct_count(low, high, [flow.id for flow in data[:flows]])
    if not is_postgres():  # PostgreSQL's planner chooses there: nothing is hinted
        assert reads and all("NOT INDEXED" in text for text in reads)


@pytest.mark.parametrize(
    "low, high, flow",
    [
        (datetime.date(2024, 5, 1), datetime.date(2024, 5, 8), 0),  # one flow
        (datetime.date(2024, 5, 3), datetime.date(2024, 5, 3), None),  # a day of seven
    ],
)
def test_one_flow_or_a_small_share_keeps_the_index(data, low, high, flow):
    flow_id = data[flow].id if flow is not None else None
    rows, reads = click_reads(ReportQuery("sub1,offer", low, high, flow_id=flow_id))
    assert counted(rows) == direct_count(low, high, None if flow_id is None else [flow_id])
    assert all("NOT INDEXED" not in text for text in reads)
    if not is_postgres():
        assert reads


@pytest.mark.parametrize("dimension", ["sub1", "external_id", "hour"])
def test_scanned_reads_equal_the_raw_rows(data, dimension):
    """Reports whose edges or whole period are read raw, over the whole dataset."""
    check(dimension, date_from="2024-04-30", date_to="2024-05-09")
    check(dimension, tz="Asia/Kolkata", include_bots=True, date_from="2024-04-30", date_to="2024-05-09")
