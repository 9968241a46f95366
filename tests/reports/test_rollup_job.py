"""The worker keeps the rollups current: its scheduler runs the rollup job on its own thread."""

import datetime
import threading
import time

import pytest

from tracker.db import db, is_postgres
from tracker.delivery.worker import run_worker
from tracker.models import RollupClick, RollupCombo, utcnow
from tracker.reports import rollups

from factories import add_click, add_flow
from sql_helpers import combo_index_only_plan, table_rows


def test_the_worker_rolls_up_whole_hours_within_its_interval(make_app):
    app = make_app(TRACKER_ROLLUP_INTERVAL=0.2, TRACKER_WORKER_INTERVAL=0.2)
    now = utcnow()
    with db.connection_context():
        flow = add_flow()
        add_click(flow, (now - datetime.timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"), country="US")
        add_click(flow, now.strftime("%Y-%m-%d %H:%M:%S"), country="DE")
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            with db.connection_context():
                until = rollups.rolled_until()
                rows = list(RollupClick.select().where(RollupClick.dimension == "country").tuples())
            if until is not None and until >= rollups.rollable_until(now) and rows:
                break
            assert time.monotonic() < deadline, "the worker did not roll up"
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(10)
    assert until in (rollups.rollable_until(now), rollups.rollable_until(utcnow()))
    with db.connection_context():
        countries = [r.value for r in RollupClick.select().where(RollupClick.dimension == "country")]
    assert countries == ["US"]  # the current hour stays raw until it has ended


def analyzed_rows():
    """What the database's statistics hold of ``rollup_click``: PostgreSQL's row estimate; on
    SQLite the rows of ``sqlite_stat1`` about it (none unless ANALYZE ran)."""
    if is_postgres():
        return db.execute_sql("SELECT reltuples FROM pg_class WHERE relname = 'rollup_click'").fetchone()[0]
    if not db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        return None
    rows = db.execute_sql("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'rollup_click'").fetchone()[0]
    return rows or None


def test_a_pass_over_a_day_or_more_refreshes_postgresqls_statistics_of_the_rollups(app):
    """After rolling up a day or more at once, PostgreSQL plans reports by the rollups as they
    are (ANALYZE); a pass of a few hours leaves that to autovacuum; SQLite is never analyzed."""
    if is_postgres():
        db.execute_sql("ANALYZE rollup_click")
    before = analyzed_rows()
    flow = add_flow()
    for hour in range(0, 48, 3):
        when = datetime.datetime(2024, 5, 1) + datetime.timedelta(hours=hour)
        add_click(flow, when.strftime("%Y-%m-%d %H:%M"), country=["US", "DE"][hour % 2], sub1="s%d" % hour)
    rollups.advance(now=datetime.datetime(2024, 5, 3, 0, 30))
    rows = RollupClick.select().count()
    assert rows > 0
    if not is_postgres():
        assert before is None and analyzed_rows() is None
        return
    assert before == 0 and analyzed_rows() == rows
    add_click(flow, "2024-05-03 01:10", country="FR")
    rollups.advance(now=datetime.datetime(2024, 5, 3, 2, 30))  # two hours: not analyzed again
    assert RollupClick.select().count() > rows and analyzed_rows() == rows
    assert rollups.rebuild(datetime.datetime(2024, 5, 1), datetime.datetime(2024, 5, 3)) >= 24
    assert analyzed_rows() == RollupClick.select().count()


def vacuums():
    """How many times rollup_combo was VACUUMed by hand (each of its weekly partitions is, with
    the table: the most of theirs)."""
    db.execute_sql("SELECT pg_stat_clear_snapshot()")
    return db.execute_sql(
        "SELECT max(s.vacuum_count) FROM pg_stat_user_tables s "
        "LEFT JOIN pg_inherits i ON i.inhrelid = s.relid "
        "WHERE s.relname = 'rollup_combo' OR i.inhparent = 'rollup_combo'::regclass"
    ).fetchone()[0]


@pytest.mark.postgres_only
def test_a_pass_over_a_day_or_more_leaves_the_rollup_read_from_its_index_alone(app):
    """rollups.refresh_statistics: the rows a pass of a day or more wrote (the first roll-up of a
    database, a rebuild) are VACUUMed with it, so the reports' index-only scans read the index
    alone at once; autovacuum (or the worker's check) would wait for a fifth of the table to be
    new. A pass of a few hours leaves it to them; a caller's transaction gets the ANALYZE only."""
    flow = add_flow()
    for minute in range(0, 48 * 60, 5):
        when = datetime.datetime(2024, 5, 1) + datetime.timedelta(minutes=minute)
        add_click(flow, when.strftime("%Y-%m-%d %H:%M"), country="US", os="iOS", sub1="s%d" % minute)
    before = vacuums()
    rollups.advance(now=datetime.datetime(2024, 5, 3, 0, 30))
    rows = RollupCombo.select().where(RollupCombo.kind == "sub1").count()
    assert rows == 48 * 12
    assert table_rows(combo_index_only_plan()) == 0
    assert vacuums() == before + 1
    add_click(flow, "2024-05-03 01:10", country="FR", sub1="late")
    rollups.advance(now=datetime.datetime(2024, 5, 4, 0, 30))  # one day: the late click's
    assert vacuums() == before + 2
    add_click(flow, "2024-05-04 01:10", country="DE", sub1="later")
    rollups.advance(now=datetime.datetime(2024, 5, 4, 2, 30))  # two hours
    assert vacuums() == before + 2
    assert rollups.rebuild(datetime.datetime(2024, 5, 1), datetime.datetime(2024, 5, 3)) >= 24
    assert vacuums() == before + 3
    assert table_rows(combo_index_only_plan()) == 0
    with db.atomic():
        assert rollups.rebuild(datetime.datetime(2024, 5, 1), datetime.datetime(2024, 5, 3)) >= 24
    assert vacuums() == before + 3
    assert table_rows(combo_index_only_plan()) >= rows  # the ANALYZE only: each row read from the table
