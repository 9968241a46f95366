"""``TRACKER_RETENTION_DAYS``: the daily purge of old clicks and their logs (DESIGN §4.9).

What goes, once older than the cutoff: clicks, and with each its deliveries and their attempts
(click postbacks, tests), orphan visits, and inbound requests that made no conversion. What
stays: conversions, with their history and the inbound requests that made them, and so the
clicks that have a conversion. A conversion belongs to its click (foreign key; deleting the
click would cascade to it), and the click is what the conversion is attributed and reported
by (its flow, day, geo, sub ids) and what later status postbacks render their tokens from; the
clicks that convert are a few percent of all, so keeping them costs little. Rollups, where
there are, are never touched.

It runs in small batches, each its own short transaction, with a pause between them: on SQLite
a batch holds the one write lock for milliseconds, so clicks keep being written while a purge
runs. On PostgreSQL, where the click table is partitioned by month (``partitions``), every
month older than the cutoff is first dropped whole, its converted clicks kept; the batches then
take what is left (the month the cutoff falls in, and the default partition).
"""

import datetime
import logging
import time

from ..db import db
from ..models import Click, Conversion, Delivery, DeliveryAttempt, Flow, InboundRequest, OrphanVisit, utcnow
from . import partitions, rollup_weeks, statistics

logger = logging.getLogger(__name__)

BATCH = 500
PAUSE = 0.05  # seconds between batches: clicks waiting for the write lock get it
PURGED = ("clicks", "deliveries", "delivery attempts", "orphan visits", "inbound requests")
FIRST_RUN_DELAY = 300  # seconds after the worker starts; then every day


def purge_old_rows(days, now=None, batch=BATCH, pause=PAUSE, stop=None):
    """Delete what is older than ``days`` days (see the module's docstring), ``batch`` clicks
    or log rows a transaction; returns how many rows of each kind (``PURGED``) went.
    ``stop`` (an Event) ends it between two batches."""
    cutoff = (now or utcnow()) - datetime.timedelta(days=days)
    counts = dict.fromkeys(PURGED, 0)
    if not (stop and stop.is_set()):
        try:
            for name, count in partitions.drop_old_months(cutoff).items():
                if name in counts:
                    counts[name] += count
        except Exception:  # a lock not granted in time: the batches below still purge the month
            logger.exception("retention: could not drop the old months whole; purging them by rows")
    for flow_id in [flow_id for (flow_id,) in Flow.select(Flow.id).tuples()]:
        purge_flow_clicks(flow_id, cutoff, counts, batch, pause, stop)
    old_orphans = OrphanVisit.created_at < cutoff
    counts["orphan visits"] += purge_in_batches(OrphanVisit, old_orphans, batch, pause, stop)
    unconverted = (InboundRequest.at < cutoff) & InboundRequest.conversion.is_null()
    counts["inbound requests"] += purge_in_batches(InboundRequest, unconverted, batch, pause, stop)
    return counts


def purge_flow_clicks(flow_id, cutoff, counts, batch, pause, stop):
    """The old clicks of one flow without a conversion, oldest first, along its
    ``(flow, created_at)`` index; the walk goes on after the last click seen, so the clicks
    kept (they have conversions) are read once, not once a batch."""
    after = None
    while not (stop and stop.is_set()):
        query = (
            Click.select(Click.click_id, Click.created_at)
            .where(Click.flow == flow_id, Click.created_at < cutoff)
            .order_by(Click.created_at, Click.click_id)
            .limit(batch)
        )
        if after is not None:
            last_id, last_at = after
            query = query.where(
                (Click.created_at > last_at) | ((Click.created_at == last_at) & (Click.click_id > last_id))
            )
        rows = list(query.tuples())
        if not rows:
            return
        after = rows[-1]
        with db.atomic():
            candidates = [row[0] for row in rows]
            converted = Conversion.select(Conversion.click).where(Conversion.click.in_(candidates))
            kept = {click_id for (click_id,) in converted.tuples()}
            ids = [click_id for click_id in candidates if click_id not in kept]
            if ids:
                for name, count in delete_clicks(ids).items():
                    counts[name] += count
        if len(rows) < batch:
            return
        time.sleep(pause)


def delete_clicks(ids):
    """Delete the clicks ``ids`` with their deliveries and attempts (in the caller's transaction)."""
    deliveries = Delivery.select(Delivery.id).where(Delivery.click_id.in_(ids))
    attempts = DeliveryAttempt.delete().where(DeliveryAttempt.delivery.in_(deliveries))
    return {
        "delivery attempts": attempts.execute(),
        "deliveries": Delivery.delete().where(Delivery.click_id.in_(ids)).execute(),
        "clicks": Click.delete().where(Click.click_id.in_(ids)).execute(),
    }


def purge_in_batches(model, condition, batch, pause, stop):
    """Delete the rows of ``model`` matching ``condition``, ``batch`` at a time; returns how many."""
    deleted = 0
    while not (stop and stop.is_set()):
        with db.atomic():
            chosen = model.select(model.id).where(condition).order_by(model.id).limit(batch)
            count = model.delete().where(model.id.in_(chosen)).execute()
        deleted += count
        if count < batch:
            break
        time.sleep(pause)
    return deleted


def make_purge_job(days, stop):
    """The worker's daily job: one purge on this thread's own connection, never raising."""

    def purge():
        started = time.monotonic()
        try:
            db.connect(reuse_if_open=True)
            counts = purge_old_rows(days, stop=stop)
            logger.info(
                "retention: removed what was older than %d days in %.1f s: %s",
                days,
                time.monotonic() - started,
                ", ".join("%d %s" % (counts[name], name) for name in PURGED),
            )
        except Exception:
            logger.exception("retention purge failed; it runs again tomorrow")
        finally:
            if not db.is_closed():
                db.close()

    return purge


PARTITIONS_DELAY = 10  # seconds after the worker starts; then every day


def care_job(work, done, failed):
    """A job of the worker's care of the database: ``work()`` on this thread's own connection,
    never raising; the names it returns logged as ``done`` says, a failure as ``failed``."""

    def job():
        try:
            db.connect(reuse_if_open=True)
            names = work()
            if names:
                logger.info(done, ", ".join(names))
        except Exception:
            logger.exception(failed)
        finally:
            if not db.is_closed():
                db.close()

    return job


def keep_partitions_ahead():
    """The partitions of the coming months' clicks and the coming weeks' rollups (PostgreSQL)."""
    return partitions.keep_months_ahead() + rollup_weeks.keep_weeks_ahead()


def schedule_partitions(scheduler, now=None):
    """The worker's daily care of the partitions (PostgreSQL): the click table's next months'
    and the rollup tables' next weeks' exist before their rows arrive; and, every minute, on a
    server without autovacuum, the tables' visibility maps and the planner's statistics
    (``statistics.tend``). No-ops on SQLite."""
    care = care_job(
        keep_partitions_ahead,
        "partitions created: %s",
        "could not create the coming months' and weeks' partitions; trying again tomorrow",
    )
    now = now or datetime.datetime.now(datetime.timezone.utc)
    scheduler.add_job(
        care_job(
            statistics.tend,
            "tables tended (autovacuum is off): %s",
            "could not vacuum or analyze the tables; trying again in a minute",
        ),
        "interval",
        seconds=statistics.INTERVAL,
        next_run_time=now + datetime.timedelta(seconds=statistics.INTERVAL),
        id="vacuum_analyze",
        executor="retention",
    )
    return scheduler.add_job(
        care,
        "interval",
        days=1,
        next_run_time=now + datetime.timedelta(seconds=PARTITIONS_DELAY),
        id="click_partitions",
        executor="retention",
    )


def schedule_purge(scheduler, config, stop, now=None):
    """Add the daily purge to the worker's scheduler when ``TRACKER_RETENTION_DAYS`` is set,
    on an executor of its own, so that a long purge never holds up the delivery sweeps."""
    schedule_partitions(scheduler, now)
    days = config["TRACKER_RETENTION_DAYS"]
    if not days:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return scheduler.add_job(
        make_purge_job(days, stop),
        "interval",
        days=1,
        next_run_time=now + datetime.timedelta(seconds=FIRST_RUN_DELAY),
        id="purge_old_rows",
        executor="retention",
    )
