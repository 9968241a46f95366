"""``tracker worker``: the delivery worker process.

An APScheduler ``BackgroundScheduler`` runs one sweep (``queue.deliver_due``) every
``TRACKER_WORKER_INTERVAL`` seconds (never two at once; missed runs coalesce). SIGTERM or
SIGINT stops it cleanly: no new rows are claimed, in-flight sends finish and are recorded.
With ``TRACKER_RETENTION_DAYS`` set, the daily purge of old clicks runs here too, on a
thread of its own; so does the rollup of reports (``reports.rollups``), every minute.
A sweep that fails (the database is away, a bug) is logged and the next one runs as usual.
"""

import datetime
import logging
import signal
import threading

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ..db import db
from ..operations.retention import schedule_purge
from ..reports import rollups
from .queue import Settings, deliver_due
from .sender import SendPool

logger = logging.getLogger(__name__)


class _SkippedRunFilter(logging.Filter):
    """A long sweep makes APScheduler skip ticks; that is expected, not worth a warning a second."""

    def filter(self, record):
        return "maximum number of running instances reached" not in record.getMessage()


def make_sweep(config, stop, pool):
    """The scheduled job: one sweep on this thread's own database connection, never raising."""

    def sweep():
        try:
            db.connect(reuse_if_open=True)
            deliver_due(config=config, stop=stop, pool=pool)
        except Exception:
            logger.exception("delivery sweep failed; the next one will try again")
            try:
                db.close()
            except Exception:
                logger.exception("could not close the database connection")

    return sweep


def run_worker(app=None, stop=None):
    """Run the delivery worker until SIGTERM/SIGINT (or ``stop`` is set); returns an exit code."""
    if app is None:
        from .. import create_app

        app = create_app()
    stop = stop or threading.Event()
    settings = Settings.from_config(app.config)
    pool = SendPool(settings.concurrency, settings.per_host)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_SkippedRunFilter())
    scheduler = BackgroundScheduler(
        executors={
            "default": ThreadPoolExecutor(1),
            "retention": ThreadPoolExecutor(1),
            "rollups": ThreadPoolExecutor(1),
        },
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=datetime.timezone.utc,
    )
    scheduler.add_job(
        make_sweep(app.config, stop, pool),
        "interval",
        seconds=settings.interval,
        next_run_time=datetime.datetime.now(datetime.timezone.utc),
        id="deliver_due",
    )
    schedule_purge(scheduler, app.config, stop)
    rollups.schedule(scheduler, stop, interval=app.config.get("TRACKER_ROLLUP_INTERVAL", 60))
    previous = _stop_on_signals(stop)
    scheduler.start()
    logger.info(
        "delivery worker started: a sweep every %ss, %d concurrent sends, %d per host",
        settings.interval,
        settings.concurrency,
        settings.per_host,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        logger.info("delivery worker stopping: finishing in-flight sends")
        scheduler.shutdown(wait=True)
        pool.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not db.is_closed():
            db.close()
    logger.info("delivery worker stopped")
    return 0


def _stop_on_signals(stop):
    """Set ``stop`` on SIGTERM and SIGINT (main thread only); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
