"""The worker keeps the rollups current: its scheduler runs the rollup job on its own thread."""

import datetime
import threading
import time

from tracker.db import db
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
