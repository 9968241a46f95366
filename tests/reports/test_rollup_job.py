"""The worker keeps the rollups current: its scheduler runs the rollup job on its own thread."""

import datetime
import threading
import time

from tracker.db import db, is_postgres
from tracker.delivery.worker import run_worker
from tracker.models import RollupClick, utcnow
from tracker.reports import rollups

from factories import add_click, add_flow


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
