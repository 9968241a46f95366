"""PostgreSQL: the block-range index of the clicks' times (``partitions.TIME_INDEX``). The
rollups read a period over every flow (``reports.rollups.compute``: an hour each hour, a day each
day), and a period named by ``created_at`` prunes no partition (their key is the click id): each
such read went through a whole index or the whole month. With the index it reads that period's
block ranges; the worker summarizes the ranges written since (on a server without autovacuum)."""

import datetime
import json

import pytest
from partition_helpers import click_at, copies_of, flush_statistics

from tracker.db import db
from tracker.migrations import LATEST, SchemaVersion, current_version, upgrade
from tracker.models import Click
from tracker.operations import partitions, statistics
from tracker.reports import rollups

from factories import add_flow

pytestmark = pytest.mark.postgres_only  # deselected on SQLite (tests/conftest.py)

MONTH = datetime.datetime(2025, 3, 1)  # a month of its own: the shared database's others stay as they are
DAYS = 10
PER_DAY = 3000


def day_of_clicks(seed, day, flows, count=PER_DAY, first=0):
    """``count`` copies of ``seed`` made one after the other from ``day`` on (one every 20 s), on
    each of ``flows`` in turn, written in the order of their time as clicks are."""
    copies_of(seed, count, day, every=datetime.timedelta(seconds=20), flows=flows, first=first)


def tend():
    """The worker's minute job on a server without autovacuum, once this connection's counts of
    rows written are in the server's statistics."""
    flush_statistics()
    return statistics.tend(autovacuum=False)


def fresh_month():
    """``MONTH``'s partition, empty (the shared database may hold an earlier run's)."""
    name = partitions.partition_name(MONTH)
    db.execute_sql("DROP TABLE IF EXISTS %s" % name)
    partitions.create_month(MONTH)
    return name


def plan_of_a_day(day):
    """The JSON plan of the rollups' read of ``day`` over every flow (EXPLAIN ANALYZE)."""
    bucket = rollups.truncated(Click.created_at, rollups.DAY)
    select = (
        Click.select(bucket, Click.country, Click.is_bot, *rollups.click_figures())
        .where(*rollups.clicks_between(day, day + rollups.DAY, None))
        .group_by(bucket, Click.country, Click.is_bot)
    )
    sql, params = select.sql()
    return db.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def test_a_day_over_every_flow_reads_that_day_s_block_ranges_of_its_month(app):
    with db.connection_context():
        name = fresh_month()
        flows = [add_flow(), add_flow()]
        seed = click_at(flows[0], MONTH, country="US")
        for number in range(DAYS):
            day = MONTH + datetime.timedelta(days=number + 1)
            day_of_clicks(seed, day, flows)
        tended = tend()
        assert "VACUUM " + name in tended and "ANALYZE " + name in tended, tended
        day = MONTH + datetime.timedelta(days=4)
        plan = plan_of_a_day(day)
        scans = [node for node in nodes(plan) if node.get("Relation Name") == name]
        assert [node["Node Type"] for node in scans] == ["Bitmap Heap Scan"], json.dumps(plan)
        index = [node for node in nodes(scans[0]) if node["Node Type"] == "Bitmap Index Scan"]
        assert [node["Index Name"] for node in index] == [name + "_created_at_idx"]
        read = scans[0]["Actual Rows"] + scans[0].get("Rows Removed by Index Recheck", 0)
        assert scans[0]["Actual Rows"] == PER_DAY
        # of the month's 30,001: the block ranges of its day (one or two of 128 pages, 43 clicks
        # a page) and the ranges it shares with the day before and after
        assert read <= 3 * PER_DAY


def test_the_worker_summarizes_the_ranges_written_since_the_month_s_vacuum(app):
    with db.connection_context():
        name = fresh_month()
        flows = [add_flow()]
        seed = click_at(flows[0], MONTH)
        day = MONTH + datetime.timedelta(days=1)
        day_of_clicks(seed, day, flows, count=40_000)
        assert "VACUUM " + name in tend()
        assert partitions.summarize_new_ranges() == 0  # the VACUUM summarized them
        # less than a fifth more: no VACUUM of the month yet, its new ranges summarized apart
        day_of_clicks(seed, day, flows, count=8000, first=40_000)  # 186 pages: a range and more
        tended = tend()
        assert "VACUUM " + name not in tended
        summarized = [entry for entry in tended if entry.startswith("SUMMARIZE ")]
        assert summarized and summarized[0].startswith("SUMMARIZE click_created_at_brin ("), tended
        assert partitions.summarize_new_ranges() == 0
        # with autovacuum on, its autosummarize does it
        day_of_clicks(seed, day, flows, count=8000, first=48_000)
        assert statistics.summarize_stale(autovacuum=True) == 0
        assert partitions.summarize_new_ranges() > 0


def time_indexed_partitions():
    """The click partitions that hold the time index."""
    rows = db.execute_sql(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(%s)",
        ('"%s"' % partitions.TIME_INDEX,),
    )
    return {name.rsplit("_created_at_idx", 1)[0] for (name,) in rows}


def test_a_version_15_database_gets_the_time_index_on_every_month_and_its_new_months_too(app):
    with db.connection_context():
        db.execute_sql('DROP INDEX IF EXISTS "%s"' % partitions.TIME_INDEX)
        SchemaVersion.update(version=15).execute()
    assert upgrade() == (15, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        months = {partitions.DEFAULT, *partitions.month_partitions().values()}
        assert time_indexed_partitions() == months
        name = fresh_month()
        assert name in time_indexed_partitions()
