"""SQLite: the worker's reads of a period over every flow go by the ``(flow_id, created_at)``
index, a flow after the other, not through the whole click table (which has no index of the time
alone): each hour's read is inside the write transaction clicks wait for. PostgreSQL reads the
period's block ranges instead (``tests/operations/test_time_index.py``)."""

import datetime

import pytest

from tracker.db import db
from tracker.reports import rollups

from factories import add_click, add_flow
from sql_helpers import sqlite_plan, statements_of

NOW = datetime.datetime(2024, 5, 4, 0, 30)


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    return make_app(TRACKER_DATABASE_URL="sqlite:///" + str(tmp_path / "reads.db"))


@pytest.mark.parametrize("analyzed", [False, True])
def test_the_roll_up_reads_each_flow_s_clicks_of_the_period_by_their_index(sqlite_app, analyzed):
    flows = [add_flow("A"), add_flow("B"), add_flow("C")]
    for number in range(3 * 24 * 4):  # three days, a click every quarter hour
        moment = datetime.datetime(2024, 5, 1) + datetime.timedelta(minutes=15 * number)
        add_click(flows[number % 3], moment.strftime("%Y-%m-%d %H:%M"), country=["US", "DE"][number % 2])
    if analyzed:
        db.execute_sql("ANALYZE")
    sent = statements_of(lambda: rollups.advance(now=NOW))
    reads = [(sql, params) for sql, params in sent if 'FROM "click"' in sql and "GROUP BY" in sql]
    assert len(reads) > 10  # the hours' and the days' dimensions and combinations
    for sql, params in reads:
        plan = sqlite_plan(sql, params)
        assert any("SEARCH t1 USING INDEX click_flow_id_created_at" in step for step in plan), (sql, plan)
        assert not any(step.startswith("SCAN") and " t1" in step for step in plan), plan
    assert rollups.rolled_until() == datetime.datetime(2024, 5, 4)
