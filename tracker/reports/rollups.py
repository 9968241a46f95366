"""Click rollups (DESIGN §6): what reports read instead of every raw click.

``rollup_click`` holds, per flow, reported dimension value and bot flag, the click figures
(clicks, unique clicks, cost, lander views and clicks): per UTC hour for the flow's own totals
(dimension ``''``, which time and flow reports read) and the dimensions of few values
(country, device, OS, browser, connection, route, lander, offer); per UTC day for those of
many values (sub ids, UTMs, region, city, ISP), where an hour of a flow holds about as many
values as clicks and an hourly rollup would be as large as the clicks themselves.

- **Rolled up to** (``Setting`` ``rollups_until``): every hour before it is in the table (and
  every whole day before it, for the daily dimensions). The worker moves it forward each
  minute to the last whole hour that ended a minute ago (``advance``), rolling the hours in
  between up from the raw rows, exactly (delete, then INSERT … SELECT … GROUP BY). Reports add
  the raw rows from that point on, so a click counts at once.
- **Dirty hours** (``rollup_dirty``): a rolled-up hour whose clicks changed later (a lander
  click, a cost, a click written late) is marked in the same transaction as the change
  (``mark``). Reports read a dirty hour (day) of a flow raw; the worker rolls it up again and
  clears the mark.
- ``rebuild(start, end)`` recomputes a period on demand (``tracker reports rebuild``).

**Combinations** (``rollup_combo``): per flow, UTC day and bot flag, the clicks of each
combination of the dimensions of one kind (``COMBO_KINDS``: ``device`` is country, device, OS,
browser, connection; ``route`` is route, lander, offer, country; ``sub1`` is country, device,
OS, sub1). A report by several of them, or by one filtered on another (the dashboard's
drill-down: OS of the US clicks, then their sub1), or by flow or UTC day with such filters,
reads the first kind that holds all it groups and filters by: its rows for the whole UTC days,
the raw clicks for the rest (the hours at the period's edges in a zone off UTC, the day not yet
rolled up, a flow's dirty days). Per day only: an hour of a flow has about as many combinations
as clicks. Measured on the bench's 1 M clicks (30 days, 20 flows): 296,880 device rows, 44,323
route rows and 710,388 sub1 rows; a 30-day ``country,os`` over all flows about 0.45 s on SQLite.
Separate kinds, not one of all the dimensions: one of the first eight had 451,070 rows, and
SQLite's GROUP BY sorts every row it reads, so every combination report paid half as much again
(1.03 s). The sub1 kind is the largest (the sub1 values of a day and flow are many), and only
sub1 has one: each sub id more would cost as many rows again.

What is not rolled up, and why:

- Combinations with another dimension of many values (sub2 to sub5, UTMs, region, city, ISP,
  external id, IP), or of sub1 with a route, lander or offer, read the raw clicks, by the
  (flow, created_at) index. One flow's report stays well under a second; all flows' over 30
  days at 1 M clicks take seconds (see the README's measurements).
- ``external_id`` and ``ip`` (about a value per click) have no rollup: a page of them in value
  order walks the click index (flow_id, <dimension>, created_at) (``queries._value_page``).

Conversions are not rolled up: there are few of them beside the clicks (one in 50 here), an
hourly rollup per dimension would hold about a row per conversion and dimension, and reading
them raw (by the conversion table's (flow, created_at) index) keeps every status change and
late conversion exact at once.

Clicks purged by retention leave their rollups in place (rollups stay, §4.9); a rebuild never
goes below the oldest click, so it cannot drop them.
"""

import datetime
import logging

from peewee import SQL, Case, Value, fn

from ..db import db, is_postgres
from ..models import SUB_NAMES, UTM_NAMES, Click, Flow, RollupClick, RollupCombo, RollupDirty, Setting, utcnow

logger = logging.getLogger(__name__)

HOUR = datetime.timedelta(hours=1)
GRACE = datetime.timedelta(seconds=60)  # a transaction that started before the hour ended commits within it
CHUNK = datetime.timedelta(hours=24)  # hours rolled up in one transaction
UNTIL_KEY = "rollups_until"
DAY = datetime.timedelta(days=1)
# The rolled-up dimensions; '' is the flow's total. external_id and ip are nearly one value per
# click, so a rollup of them would be as large as the clicks: reports read them raw.
HOURLY = ("", "country", "device_type", "os", "browser", "connection_type", "route", "lander", "offer")
DAILY = ("region", "city", "isp", *SUB_NAMES, *UTM_NAMES)
DIMENSIONS = HOURLY + DAILY
# The hourly dimensions again per UTC day ("day:country"): a 30-day report reads these for its
# whole days and the hourly rows only for the hours at its edges.
DAY_COPIES = tuple("day:" + name for name in HOURLY)
# The combinations of dimensions per UTC day (``rollup_combo``), stored with the per-day rows;
# ``compute`` recomputes them when asked for this name.
COMBO = "combo"
# A report reads the first kind that holds what it groups and filters by: the smaller kinds first.
COMBO_KINDS = {
    "device": ("country", "device_type", "os", "browser", "connection_type"),
    "route": ("route", "lander", "offer", "country"),
    "sub1": ("country", "device_type", "os", "sub1"),
}
# Every dimension a combination row holds, once each, in the order of the kinds.
COMBO_DIMENSIONS = tuple(dict.fromkeys(name for grouped in COMBO_KINDS.values() for name in grouped))
PER_DAY = DAILY + DAY_COPIES + (COMBO,)
ID_COLUMNS = {"route": Click.route_id, "lander": Click.lander_id, "offer": Click.offer_id}


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment):
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def floor_day(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment):
    floor = floor_day(moment)
    return floor if floor == moment else floor + DAY


def grain_of(dimension):
    """``HOUR`` or ``DAY``: the span of a rollup row of ``dimension``."""
    return DAY if dimension in DAILY or dimension == COMBO or dimension.startswith("day:") else HOUR


def floor_to(moment, grain):
    return floor_day(moment) if grain == DAY else floor_hour(moment)


def ceil_to(moment, grain):
    return ceil_day(moment) if grain == DAY else ceil_hour(moment)


def rollable_until(now):
    """The end of the last whole hour that ended at least ``GRACE`` before ``now``."""
    return floor_hour(now - GRACE)


def truncated(column, grain):
    """SQL: ``column`` truncated to its hour (day), as a value the DateTimeField reads back."""
    if is_postgres():
        return fn.date_trunc("day" if grain == DAY else "hour", column)
    return fn.strftime("%Y-%m-%d 00:00:00" if grain == DAY else "%Y-%m-%d %H:00:00", column)


def value_of(dimension):
    """SQL: the click's value of a rolled-up dimension, as text ('' for none)."""
    dimension = base_of(dimension)
    if dimension == "":
        return fn.COALESCE(None, "")
    if dimension in ID_COLUMNS:
        return fn.COALESCE(ID_COLUMNS[dimension].cast("text"), "")
    return fn.COALESCE(getattr(Click, dimension), "")


def base_of(dimension):
    """The click dimension a stored one holds (``day:country`` → ``country``)."""
    return dimension[4:] if dimension.startswith("day:") else dimension


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
    """``{(hour, flow_id)}`` marked dirty among the rolled-up hours (a day of a daily
    dimension is dirty when any of its hours is)."""
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


def compute(start, end, flow_ids=None, dimensions=HOURLY + PER_DAY):
    """Replace the rollups of ``dimensions`` for ``[start, end)`` (whole hours; whole days for
    the daily dimensions) of ``flow_ids`` (or every flow) by what the raw clicks say now.
    Call inside a transaction."""
    if COMBO in dimensions:
        compute_combo(start, end, flow_ids)
        dimensions = [d for d in dimensions if d != COMBO]
    for grain in (HOUR, DAY):
        names = [d for d in dimensions if grain_of(d) == grain]
        if not names:
            continue
        where = [RollupClick.hour >= start, RollupClick.hour < end, RollupClick.dimension.in_(names)]
        if flow_ids is not None:
            where.append(RollupClick.flow_id.in_(sorted(flow_ids)))
        RollupClick.delete().where(*where).execute()
        clicks = clicks_between(start, end, flow_ids)
        bucket = truncated(Click.created_at, grain)
        for dimension in names:
            value = value_of(dimension)
            keys = [bucket, Click.flow, Click.is_bot] + ([value] if base_of(dimension) else [])
            select = (
                Click.select(
                    bucket,
                    Click.flow,
                    dimension,
                    value,
                    Click.is_bot,
                    *click_figures(),
                )
                .where(*clicks)
                .group_by(*keys)
            )
            RollupClick.insert_from(
                select,
                [
                    RollupClick.hour,
                    RollupClick.flow_id,
                    RollupClick.dimension,
                    RollupClick.value,
                    RollupClick.is_bot,
                    *[getattr(RollupClick, name) for name in FIGURES],
                ],
            ).execute()


# The click figures both rollups hold, in this order (the columns of RollupClick and RollupCombo).
FIGURES = ("clicks", "unique_clicks", "cost", "lp_views", "lp_clicks")


def click_figures():
    """The raw clicks' ``FIGURES``, as aggregates of a GROUP BY."""
    landed = Click.lander_id.is_null(False)
    return [
        fn.COUNT(Click.click_id),
        count_where(Click.is_unique == True),  # noqa: E712
        fn.COALESCE(fn.SUM(Click.cost), 0),
        count_where(landed),
        count_where(landed & Click.lp_clicked_at.is_null(False)),
    ]


def clicks_between(start, end, flow_ids):
    """The conditions on the raw clicks of ``[start, end)`` of ``flow_ids`` (None: every flow).

    Every flow is named on SQLite: its click table has no index of the time alone, and a period
    alone read the whole table (each of the worker's hourly reads, inside the write transaction
    that clicks wait for); named, the ``(flow_id, created_at)`` index gives each flow's clicks of
    the period. PostgreSQL reads the period's block ranges (``partitions.TIME_INDEX``)."""
    clicks = [Click.created_at >= start, Click.created_at < end]
    if flow_ids is None and not is_postgres():
        flow_ids = [flow_id for (flow_id,) in Flow.select(Flow.id).tuples()]
    if flow_ids is not None:
        clicks.append(Click.flow.in_(sorted(flow_ids)))
    return clicks


def combo_column(dimension):
    """The click column a combination row holds ``dimension`` in (also its name there)."""
    return ID_COLUMNS.get(dimension) or getattr(Click, dimension)


def compute_combo(start, end, flow_ids=None):
    """Replace the combination rows of the UTC days of ``[start, end)`` (whole days) of
    ``flow_ids`` (or every flow) by what the raw clicks say now. Call inside a transaction."""
    where = [RollupCombo.day >= start, RollupCombo.day < end]
    if flow_ids is not None:
        where.append(RollupCombo.flow_id.in_(sorted(flow_ids)))
    RollupCombo.delete().where(*where).execute()
    clicks = clicks_between(start, end, flow_ids)
    bucket = truncated(Click.created_at, DAY)
    stored = [combo_column(name) for name in COMBO_DIMENSIONS]
    for kind, grouped in COMBO_KINDS.items():
        columns = [combo_column(name) for name in grouped]
        names = {column.name for column in columns}
        # the other kind's columns: '' for text, NULL for ids
        values = [
            c if c.name in names else SQL("NULL") if c.name.endswith("_id") else Value("") for c in stored
        ]
        select = (
            Click.select(
                Value(kind),
                bucket,
                Click.flow,
                Click.is_bot,
                *values,
                *click_figures(),
            )
            .where(*clicks)
            .group_by(bucket, Click.flow, Click.is_bot, *columns)
        )
        RollupCombo.insert_from(
            select,
            [
                RollupCombo.kind,
                RollupCombo.day,
                RollupCombo.flow_id,
                RollupCombo.is_bot,
                *[getattr(RollupCombo, column.name) for column in stored],
                *[getattr(RollupCombo, name) for name in FIGURES],
            ],
        ).execute()


def compute_period(start, end, flow_ids=None):
    """The hourly dimensions of the hours ``[start, end)`` and the daily ones of the days that
    end within it (``end`` is where the rolled-up point moves to)."""
    compute(start, end, flow_ids, HOURLY)
    day = floor_day(start)
    while day + DAY <= end:
        if day + DAY > start:
            compute(day, day + DAY, flow_ids, PER_DAY)
        day += DAY


def _first_hour():
    """The hour of the oldest click, or None."""
    first = Click.select(fn.MIN(Click.created_at)).scalar()
    return floor_hour(_as_datetime(first)) if first is not None else None


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
            end = min(floor_day(until) + DAY, stop_at)  # a chunk never crosses a day
            compute_period(until, end)
            _set_until(end)
            done += int((end - until) / HOUR)
    refresh_statistics(done)
    done += clean_dirty()
    return rolled_until(), done


# PostgreSQL plans the reports' reads of the rollups by its statistics of them. After one pass
# that wrote a day or more at once (the first roll-up of an existing database, a rebuild) they
# describe the tables as they were before it until autovacuum comes round: measured at 10 M
# clicks, the 30-day sub1 report over all flows was planned for 8 rows and sorted 1.4 M of them
# on disk, 1.7 s; analyzed, it is hashed in memory, 0.56 s. The rows such a pass wrote are on
# pages not yet marked all-visible, so the reports' index-only scans of the combination rollup
# read each of them from the table too, and autovacuum (or the worker's ``statistics.tend``)
# comes round only once a fifth of the table is new: a rebuild of 30 days in a year of rollups
# would never be. So the pass VACUUMs them too: at 1 M clicks, the 30-day country,os,sub1 over
# all flows 2.75 s before, 0.82 s after.
STATISTICS_HOURS = 24


def refresh_statistics(hours):
    """VACUUM and ANALYZE the rollup tables on PostgreSQL after ``hours`` (``STATISTICS_HOURS``
    or more) were rolled up in one pass (ANALYZE only inside a caller's transaction, where VACUUM
    cannot run); the worker's hourly passes leave it to autovacuum or ``statistics.tend``."""
    if is_postgres() and hours >= STATISTICS_HOURS:
        command = "ANALYZE" if db.in_transaction() else "VACUUM (ANALYZE)"
        db.execute_sql(command + " rollup_click, rollup_combo")


def clean_dirty(limit=1000):
    """Roll up again the hours (and days) marked dirty (up to ``limit`` marks), then drop their
    marks: only the marks read, so one added meanwhile stays for the next run."""
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
        hours, days = {}, {}
        for _, hour, flow_id in marks:
            if until is not None and hour < until:
                hours.setdefault(hour, set()).add(flow_id)
                if floor_day(hour) + DAY <= until:
                    days.setdefault(floor_day(hour), set()).add(flow_id)
        for hour, flow_ids in sorted(hours.items()):
            compute(hour, hour + HOUR, flow_ids, HOURLY)
        for day, flow_ids in sorted(days.items()):
            compute(day, day + DAY, flow_ids, PER_DAY)
        ids = [mark_id for mark_id, _, _ in marks]
        for first in range(0, len(ids), 500):
            RollupDirty.delete().where(RollupDirty.id.in_(ids[first : first + 500])).execute()
    return sum(len(flows) for flows in hours.values())


def rebuild(start, end, now=None):
    """Recompute exactly the rollups of ``[start, end)``, widened to whole UTC days, from the
    oldest click on and up to the rolled-up point (later hours are read raw anyway). Returns
    the hours recomputed."""
    with db.atomic():
        _lock()
        until = rolled_until()
    if until is None:
        advance(now)
        until = rolled_until()
    first = _first_hour()
    if until is None or first is None:
        return 0
    start, end = max(floor_day(start), floor_day(first)), min(ceil_day(end), until)
    done = 0
    day = start
    while day < end:
        stop = min(day + DAY, end)
        with db.atomic():
            _lock()
            compute(day, stop, None, HOURLY)
            if day + DAY <= until:
                compute(day, day + DAY, None, PER_DAY)
            RollupDirty.delete().where(RollupDirty.hour >= day, RollupDirty.hour < stop).execute()
        done += int((stop - day) / HOUR)
        day = stop
    refresh_statistics(done)
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
