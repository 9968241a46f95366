"""Hourly rollups (DESIGN §6): what reports read instead of every raw click.

Two tables hold, per UTC hour, flow, reported dimension value and bot flag, the click figures
(``rollup_click``) and the conversion figures on both bases (``rollup_conversion``). The
dimension ``''`` holds each flow's own totals (time and flow reports read it).

- **Rolled up to** (``Setting`` ``rollups_until``): every hour before it is in the tables. The
  worker moves it forward each minute to the last whole hour that ended a minute ago
  (``advance``), rolling up the hours in between from the raw rows, exactly (delete, then
  INSERT … SELECT … GROUP BY). Reports add the raw rows from that point on, so a click or a
  conversion counts at once.
- **Dirty hours** (``rollup_dirty``): a rolled-up hour whose raw rows changed later (a late
  conversion or a status change, on the click's hour and on the conversion's own; a lander
  click; a cost) is marked in the same transaction as the change (``mark``). Reports read a
  dirty hour of a flow raw; the worker rolls it up again and clears the mark.
- ``rebuild(start, end)`` recomputes a period on demand (``tracker reports rebuild``).

Clicks purged by retention leave their rollups in place (conversions and rollups stay, §4.9);
a rebuild of a purged period would drop them, so ``rebuild`` never goes below the oldest click.
"""

import datetime
import logging

from peewee import Case, fn

from ..db import db, is_postgres
from ..models import (
    SUB_NAMES,
    UTM_NAMES,
    Click,
    Conversion,
    RollupClick,
    RollupConversion,
    RollupDirty,
    Setting,
    utcnow,
)

logger = logging.getLogger(__name__)

HOUR = datetime.timedelta(hours=1)
GRACE = datetime.timedelta(seconds=60)  # a transaction that started before the hour ended commits within it
CHUNK = datetime.timedelta(hours=24)  # hours rolled up in one transaction
UNTIL_KEY = "rollups_until"
# The rolled-up dimensions; '' is the flow's total. external_id and ip are nearly one value per
# click, so an hourly rollup of them would be as large as the clicks: reports read them raw.
DIMENSIONS = (
    "",
    "country",
    "region",
    "city",
    "device_type",
    "os",
    "browser",
    "isp",
    "connection_type",
    *SUB_NAMES,
    *UTM_NAMES,
    "route",
    "lander",
    "offer",
)
ID_COLUMNS = {"route": Click.route_id, "lander": Click.lander_id, "offer": Click.offer_id}
BASES = ("click", "conversion")


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment):
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def rollable_until(now):
    """The end of the last whole hour that ended at least ``GRACE`` before ``now``."""
    return floor_hour(now - GRACE)


def hour_of(column):
    """SQL: ``column`` truncated to its hour, as a value the DateTimeField reads back."""
    if is_postgres():
        return fn.date_trunc("hour", column)
    return fn.strftime("%Y-%m-%d %H:00:00", column)


def value_of(dimension):
    """SQL: the click's value of a rolled-up dimension, as text ('' for none)."""
    if dimension == "":
        return fn.COALESCE(None, "")
    if dimension in ID_COLUMNS:
        return fn.COALESCE(ID_COLUMNS[dimension].cast("text"), "")
    return fn.COALESCE(getattr(Click, dimension), "")


def count_where(condition):
    return fn.SUM(Case(None, [(condition, 1)], 0))


# -- the watermark -----------------------------------------------------------------------


def rolled_until():
    """The point before which every hour is rolled up, or None before the first run."""
    row = Setting.get_or_none(Setting.key == UNTIL_KEY)
    return datetime.datetime.fromisoformat(row.value) if row else None


def _set_until(moment):
    value = moment.isoformat(" ")
    Setting.insert(key=UNTIL_KEY, value=value).on_conflict(
        conflict_target=[Setting.key], update={Setting.value: value}
    ).execute()


def dirty_pairs(until):
    """``{(hour, flow_id)}`` marked dirty among the rolled-up hours."""
    if until is None:
        return set()
    query = (
        RollupDirty.select(RollupDirty.hour, RollupDirty.flow_id).where(RollupDirty.hour < until).distinct()
    )
    return {(hour, flow_id) for hour, flow_id in query.tuples()}


# -- marking changes -----------------------------------------------------------------------


def mark(pairs, now=None):
    """Note that the raw rows of ``pairs`` (``(moment, flow_id)``) changed: call it in the
    transaction of the change. Hours that cannot have been rolled up yet need no mark."""
    limit = rollable_until(now or utcnow())
    rows = {(floor_hour(moment), flow_id) for moment, flow_id in pairs if moment is not None}
    rows = [{"hour": hour, "flow_id": flow_id} for hour, flow_id in sorted(rows) if hour < limit]
    if rows:
        RollupDirty.insert_many(rows).execute()


def mark_conversion(click_created_at, conversion_at, flow_id, now=None):
    """A conversion was recorded or changed: its click's hour and its own hour."""
    mark([(click_created_at, flow_id), (conversion_at, flow_id)], now)


def mark_period(start, end, flow_ids, now=None):
    """Every hour of ``[start, end)`` of ``flow_ids`` changed (costs spread over a period)."""
    limit = min(rollable_until(now or utcnow()), end)
    hour, rows = floor_hour(start), []
    while hour < limit:
        rows.extend({"hour": hour, "flow_id": flow_id} for flow_id in flow_ids)
        hour += HOUR
    for first in range(0, len(rows), 500):
        RollupDirty.insert_many(rows[first : first + 500]).execute()


# -- rolling up -------------------------------------------------------------------------------


def _lock():
    """One roller at a time (several workers, a rebuild): PostgreSQL's transaction advisory
    lock; on SQLite the IMMEDIATE transaction already serializes writers."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(7412)")


def compute(start, end, flow_ids=None):
    """Replace the rollups of the hours ``[start, end)`` (of ``flow_ids``, or every flow) by
    what the raw rows say now. Call inside a transaction."""
    flows = [] if flow_ids is None else [RollupClick.flow_id.in_(list(flow_ids))]
    for model in (RollupClick, RollupConversion):
        model_flows = [] if flow_ids is None else [model.flow_id.in_(list(flow_ids))]
        model.delete().where(model.hour >= start, model.hour < end, *model_flows).execute()
    del flows
    click_range = [Click.created_at >= start, Click.created_at < end]
    if flow_ids is not None:
        click_range.append(Click.flow.in_(list(flow_ids)))
    conversion_range = [Conversion.created_at >= start, Conversion.created_at < end]
    if flow_ids is not None:
        conversion_range.append(Conversion.flow.in_(list(flow_ids)))
    landed = Click.lander_id.is_null(False)
    approved = (Conversion.status == "approved") & Conversion.is_conversion
    for dimension in DIMENSIONS:
        hour, value = hour_of(Click.created_at), value_of(dimension)
        clicks = (
            Click.select(
                hour,
                Click.flow,
                dimension,
                value,
                Click.is_bot,
                fn.COUNT(Click.click_id),
                count_where(Click.is_unique == True),  # noqa: E712
                fn.COALESCE(fn.SUM(Click.cost), 0),
                count_where(landed),
                count_where(landed & Click.lp_clicked_at.is_null(False)),
            )
            .where(*click_range)
            .group_by(hour, Click.flow, value, Click.is_bot)
        )
        RollupClick.insert_from(
            clicks,
            [
                RollupClick.hour,
                RollupClick.flow_id,
                RollupClick.dimension,
                RollupClick.value,
                RollupClick.is_bot,
                RollupClick.clicks,
                RollupClick.unique_clicks,
                RollupClick.cost,
                RollupClick.lp_views,
                RollupClick.lp_clicks,
            ],
        ).execute()
        for basis in BASES:
            if basis == "click":
                hour, flow, where = hour_of(Click.created_at), Click.flow, click_range
            else:
                hour, flow, where = hour_of(Conversion.created_at), Conversion.flow, conversion_range
            currency = Case(None, [(Conversion.report_payout.is_null(), Conversion.currency)], "")
            conversions = (
                Conversion.select(
                    hour,
                    flow,
                    dimension,
                    value,
                    Click.is_bot,
                    basis,
                    currency,
                    count_where(approved),
                    fn.COALESCE(
                        fn.SUM(
                            Case(
                                None,
                                [(approved, fn.COALESCE(Conversion.report_payout, Conversion.payout))],
                                0,
                            )
                        ),
                        0,
                    ),
                    count_where((Conversion.status == "pending") & Conversion.is_conversion),
                    count_where((Conversion.status == "declined") & Conversion.is_conversion),
                    count_where((Conversion.status == "approved") & ~Conversion.is_conversion),
                )
                .join(Click, on=(Conversion.click == Click.click_id))
                .where(*where)
                .group_by(hour, flow, value, Click.is_bot, currency)
            )
            RollupConversion.insert_from(
                conversions,
                [
                    RollupConversion.hour,
                    RollupConversion.flow_id,
                    RollupConversion.dimension,
                    RollupConversion.value,
                    RollupConversion.is_bot,
                    RollupConversion.basis,
                    RollupConversion.currency,
                    RollupConversion.conversions,
                    RollupConversion.revenue,
                    RollupConversion.pending,
                    RollupConversion.declined,
                    RollupConversion.events,
                ],
            ).execute()


def _first_hour():
    """The hour of the oldest click or conversion, or None."""
    firsts = [
        Click.select(fn.MIN(Click.created_at)).scalar(),
        Conversion.select(fn.MIN(Conversion.created_at)).scalar(),
    ]
    firsts = [_as_datetime(moment) for moment in firsts if moment is not None]
    return floor_hour(min(firsts)) if firsts else None


def _as_datetime(value):
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


def advance(now=None, budget=datetime.timedelta(days=31)):
    """The worker's job: roll up the whole hours that ended since the last run (at most
    ``budget`` of them a run, a chunk a transaction), then the dirty hours. Returns
    ``(rolled_until, hours recomputed)``."""
    now = now or utcnow()
    target = rollable_until(now)
    done = 0
    stop_at = None
    while True:
        with db.atomic():
            _lock()
            until = rolled_until()
            if until is None:
                first = _first_hour()
                until = target if first is None or first >= target else first
                _set_until(until)
            if stop_at is None:
                stop_at = min(target, until + budget)
            if until >= stop_at:
                break
            end = min(until + CHUNK, stop_at)
            compute(until, end)
            _set_until(end)
            done += int((end - until) / HOUR)
    done += clean_dirty()
    return rolled_until(), done


def clean_dirty(limit=1000):
    """Roll up again the hours marked dirty (up to ``limit`` marks), then drop their marks:
    only the marks read, so one added meanwhile stays for the next run."""
    with db.atomic():
        _lock()
        until = rolled_until()
        marks = list(
            RollupDirty.select(RollupDirty.id, RollupDirty.hour, RollupDirty.flow_id)
            .order_by(RollupDirty.id)
            .limit(limit)
            .tuples()
        )
        if not marks:
            return 0
        by_hour = {}
        for _, hour, flow_id in marks:
            if until is not None and hour < until:
                by_hour.setdefault(hour, set()).add(flow_id)
        for hour, flow_ids in sorted(by_hour.items()):
            compute(hour, hour + HOUR, flow_ids)
        ids = [mark_id for mark_id, _, _ in marks]
        for first in range(0, len(ids), 500):
            RollupDirty.delete().where(RollupDirty.id.in_(ids[first : first + 500])).execute()
    return sum(len(flows) for flows in by_hour.values())


def rebuild(start, end, now=None):
    """Recompute exactly the rollups of ``[start, end)`` (whole hours, at most up to the
    rolled-up point: later hours are read raw anyway). Returns the hours recomputed."""
    start, end = floor_hour(start), ceil_hour(end)
    done = 0
    with db.atomic():
        _lock()
        until = rolled_until()
    if until is None:
        advance(now)
        until = rolled_until()
    end = min(end, until)
    hour = start
    while hour < end:
        chunk_end = min(hour + CHUNK, end)
        with db.atomic():
            _lock()
            compute(hour, chunk_end)
            RollupDirty.delete().where(RollupDirty.hour >= hour, RollupDirty.hour < chunk_end).execute()
        done += int((chunk_end - hour) / HOUR)
        hour = chunk_end
    return done


def schedule(scheduler, stop, interval=60):
    """Add the rollup job to the worker's APScheduler (its own single thread)."""

    def job():
        if stop.is_set():
            return
        try:
            db.connect(reuse_if_open=True)
            until, hours = advance()
            if hours:
                logger.info("rollups: %d hour(s) rolled up; rolled up to %s UTC", hours, until)
        except Exception:
            logger.exception("rolling up failed; the next run will try again")
            try:
                db.close()
            except Exception:
                logger.exception("could not close the database connection")

    scheduler.add_job(
        job,
        "interval",
        seconds=interval,
        next_run_time=datetime.datetime.now(datetime.timezone.utc),
        id="rollups",
        executor="rollups",
    )
