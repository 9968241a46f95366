"""The rollup tables partitioned by week on PostgreSQL (DESIGN §6): made by schema step 17,
kept ahead of time by the worker.

Rollups are never purged (§4.9), so a tracker that has run for months holds every earlier
month's rollup rows beside the period a report asks for. The combination rows are read through
the index in drill-down order (``models.COMBO_ORDER``: kind, country, OS, sub1, …, day), whose
day comes after the keys: a 30-day report read every day of its kind the table held, and the
daily rows of ``rollup_click`` were read by a scan of the whole table. Each report grew with the
months kept (``tests/bench/reports.py --history 3`` at 10 M clicks a month: the 30-day
``country,os`` over every flow 277 -> 926 ms, ``sub1`` of the US clicks 548 -> 1,532 ms,
``country,os,sub1`` 2.7 -> 5.6 s). Partitioned by the UTC week (Monday on) of their ``hour`` or
``day``, a report reads the weeks its period touches, each partition by its own index in
drill-down order, merged in key order: the same rows read from plain tables and from weekly ones,
alternated, ``country,os`` 728-890 -> 334-402 ms, ``sub1`` of the US clicks 1.13-1.21 ->
0.49-0.56 s, ``country,os,sub1`` 5.9-7.2 -> 3.0-4.3 s (README, "the rollup tables partitioned by
week"). Monthly partitions were not enough: a 30-day period touches two months, read whole.

Each table keeps a default partition: a row of a week without a partition yet (a rebuild of
an old period) lands there, and moves into its week's partition when that is made."""

import datetime
import logging
import re

from ..db import db, is_postgres
from . import partitions

logger = logging.getLogger(__name__)

# Each rollup table and the column of its time (an hour, or a UTC day).
TABLES = (("rollup_click", "hour"), ("rollup_combo", "day"))
WEEK = datetime.timedelta(days=7)
WEEKS_AHEAD = 2  # partitions kept ready past the current week
NAME = re.compile(r"^(?P<table>rollup_click|rollup_combo)_w(?P<start>\d{8})$")


def week_start(moment):
    """Monday 00:00 of the UTC week of ``moment`` (naive UTC)."""
    day = datetime.datetime(moment.year, moment.month, moment.day)
    return day - datetime.timedelta(days=day.weekday())


def partition_name(table, start):
    return "%s_w%s" % (table, start.strftime("%Y%m%d"))


def default_name(table):
    return table + "_default"


def is_partitioned(table):
    """True when ``table`` is a partitioned table (PostgreSQL after step 17)."""
    if not is_postgres():
        return False
    row = db.execute_sql("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] == "p"


def week_partitions(table):
    """``{week start: partition name}`` of ``table``'s weekly partitions."""
    rows = db.execute_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        (table,),
    ).fetchall()
    weeks = {}
    for (name,) in rows:
        match = NAME.match(name)
        if match and match.group("table") == table:
            weeks[datetime.datetime.strptime(match.group("start"), "%Y%m%d")] = name
    return weeks


def partition_tables(now):
    """Step 17 on PostgreSQL (and a new database's schema): each rollup table, rows and all,
    becomes one partitioned by week. Run in the upgrade's transaction."""
    for table, column in TABLES:
        if not is_partitioned(table):
            partition_table(table, column, now)


def partition_table(table, column, now):
    """``table`` made anew, partitioned by the week of ``column``, with its indexes (on every
    partition), a partition for each week from its oldest row's to ``WEEKS_AHEAD`` past
    ``now``'s, the default one, and its rows."""
    old = table + "_unpartitioned"
    sequence = db.execute_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    indexes = partitions.set_aside(table, "_unpartitioned")
    db.execute_sql(
        "CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS) PARTITION BY RANGE (%s)" % (table, old, column)
    )
    if sequence:
        db.execute_sql("ALTER SEQUENCE %s OWNED BY %s.id" % (sequence, table))
    db.execute_sql("CREATE TABLE %s PARTITION OF %s DEFAULT" % (default_name(table), table))
    oldest = db.execute_sql("SELECT min(%s) FROM %s" % (column, old)).fetchone()[0]
    ensure_weeks(table, min(oldest, now) if oldest else now, now)
    db.execute_sql("INSERT INTO %s SELECT * FROM %s" % (table, old))
    # The indexes after the rows (each built whole, not grown row by row): the key must hold the
    # partition column (the id stays unique, drawn from the same sequence); the others keep
    # their names and columns, on the partitioned table.
    db.execute_sql("ALTER TABLE %s ADD CONSTRAINT %s_pkey PRIMARY KEY (id, %s)" % (table, table, column))
    for definition in indexes:
        db.execute_sql(definition)
    db.execute_sql("DROP TABLE %s" % old)
    db.execute_sql("ANALYZE %s" % table)


def ensure_weeks(table, first, now, ahead=WEEKS_AHEAD):
    """Create ``table``'s missing weekly partitions from the week of ``first`` to ``ahead``
    weeks past ``now``'s; rows already in the default partition that belong to a new week move
    into it. Returns the names created."""
    created = []
    existing = week_partitions(table)
    start, last = week_start(first), week_start(now) + ahead * WEEK
    while start <= last:
        if start not in existing:
            create_week(table, start)
            created.append(partition_name(table, start))
        start += WEEK
    return created


def create_week(table, start):
    """The partition of one week of ``table``; rows of its range in the default partition move
    into it (PostgreSQL refuses to attach a range the default partition holds rows of)."""
    column = dict(TABLES)[table]
    name, default, end = partition_name(table, start), default_name(table), start + WEEK
    with db.atomic():
        db.execute_sql("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)" % (name, table))
        moved = db.execute_sql(
            "WITH moved AS (DELETE FROM %s WHERE %s >= %%s AND %s < %%s RETURNING *) "
            "INSERT INTO %s SELECT * FROM moved" % (default, column, column, name),
            (start, end),
        ).rowcount
        db.execute_sql(
            "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%%s) TO (%%s)" % (table, name), (start, end)
        )
    if moved:
        logger.info("partition %s created; %d rows moved into it from %s", name, moved, default)


def keep_weeks_ahead(now=None):
    """The worker's daily care: the coming weeks' partitions exist before their rollups come."""
    now = now or datetime.datetime.utcnow()
    created = []
    for table, _ in TABLES:
        if is_partitioned(table):
            created.extend(ensure_weeks(table, now, now))
    return created
