"""Step 17 on a PostgreSQL database of version 16 with clicks rolled up over three weeks: both
rollup tables become partitioned by week (``operations.rollup_weeks``), every row kept, ids and
all, in its week's partition; a report reads only the weeks of its period and says what it said
before (and what the raw rows say); the worker makes the coming weeks, and a row that landed in
the default partition moves into its week when that is made."""

import datetime

import pytest
from partition_helpers import scans

from tracker.db import db, is_postgres
from tracker.migrations import LATEST, SchemaVersion, current_version, upgrade
from tracker.models import RollupClick, RollupCombo, Setting
from tracker.operations import partitions, retention, rollup_weeks
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from factories import add_click, add_flow

NOW = datetime.datetime(2024, 5, 9, 6, 30)  # Thursday; the clicks from Thursday 25 April on
FIRST, LAST = datetime.date(2024, 4, 25), datetime.date(2024, 5, 8)
QUERIES = [
    ReportQuery("day", FIRST, LAST),
    ReportQuery("country", FIRST, LAST),
    ReportQuery("sub1", FIRST, LAST),
    ReportQuery("country,os,sub1", FIRST, LAST),
    ReportQuery("sub1", datetime.date(2024, 4, 30), datetime.date(2024, 5, 2), filters=(("country", "US"),)),
]


def unpartitioned(table):
    """``table`` made a plain table again, as version 16 had it: its rows, ids, sequence,
    primary key on the id, and indexes."""
    sequence = db.execute_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    indexes = partitions.set_aside(table, "_weeks")
    db.execute_sql("CREATE TABLE %s (LIKE %s_weeks INCLUDING DEFAULTS)" % (table, table))
    db.execute_sql("INSERT INTO %s SELECT * FROM %s_weeks" % (table, table))
    db.execute_sql("ALTER TABLE %s ADD PRIMARY KEY (id)" % table)
    db.execute_sql("ALTER SEQUENCE %s OWNED BY %s.id" % (sequence, table))
    db.execute_sql("DROP TABLE %s_weeks" % table)
    for definition in indexes:
        db.execute_sql(definition)


def as_version_16():
    """Take the latest schema back to what version 16 had: rollup tables not partitioned."""
    if is_postgres():
        for table, _ in rollup_weeks.TABLES:
            if rollup_weeks.is_partitioned(table):
                unpartitioned(table)
    SchemaVersion.update(version=16).execute()


def index_names(table):
    rows = db.execute_sql(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass(%s)", (table,)
    )
    return {name for (name,) in rows}


def rows_of(model):
    return sorted(model.select().tuples(), key=repr)


def figures(query):
    return {row.keys: (row.clicks, row.bot_clicks, row.unique_clicks, row.cost) for row in run_report(query)}


@pytest.mark.postgres_only
def test_a_version_16_database_gets_its_rollups_partitioned_by_week_rows_and_all(app):
    with db.connection_context():
        flow = add_flow()
        for n in range(14 * 24):  # an hour apart, over two weeks from Thursday 25 April
            when = datetime.datetime(2024, 4, 25) + datetime.timedelta(hours=n, minutes=n % 50)
            add_click(
                flow,
                when.strftime("%Y-%m-%d %H:%M"),
                country=["US", "DE", "FR"][n % 3],
                os=["iOS", "Android"][n % 2],
                sub1="s%d" % (n % 7),
                is_bot=n % 11 == 0,
            )
        rollups.advance(now=NOW)
        reports = {query: figures(query) for query in QUERIES}
        before = {model: rows_of(model) for model in (RollupClick, RollupCombo)}
        indexes = {table: index_names(table) for table, _ in rollup_weeks.TABLES}
        as_version_16()
        assert not rollup_weeks.is_partitioned("rollup_combo")
        assert {table: index_names(table) for table, _ in rollup_weeks.TABLES} == indexes
    db.close()
    assert upgrade() == (16, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        weeks = [
            datetime.datetime(2024, 4, 22),
            datetime.datetime(2024, 4, 29),
            datetime.datetime(2024, 5, 6),
        ]
        for table, column in rollup_weeks.TABLES:
            assert rollup_weeks.is_partitioned(table)
            assert index_names(table) == indexes[table]  # the same names, on the partitioned table
            made = rollup_weeks.week_partitions(table)
            assert set(weeks) <= set(made)
            assert max(made) >= rollup_weeks.week_start(datetime.datetime.utcnow()) + 2 * rollup_weeks.WEEK
            # every row in its week's partition, none in the default one
            placed = db.execute_sql(
                "SELECT tableoid::regclass::text, min(%s), max(%s), count(*) FROM %s GROUP BY 1"
                % (column, column, table)
            ).fetchall()
            assert {name for name, *_ in placed} == {made[week] for week in weeks}
            for name, low, high, _ in placed:
                start = next(week for week, made_name in made.items() if made_name == name)
                assert start <= low and high < start + rollup_weeks.WEEK
        assert {model: rows_of(model) for model in (RollupClick, RollupCombo)} == before
        for query, report in reports.items():
            assert figures(query) == report, query.group_by
        # a period inside one week reads that week's partition alone
        select = RollupCombo.select(RollupCombo.sub1).where(
            RollupCombo.kind == "sub1",
            RollupCombo.day >= datetime.datetime(2024, 4, 30),
            RollupCombo.day < datetime.datetime(2024, 5, 3),
        )
        sql, params = select.sql()
        plan = db.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
        assert set(scans(plan)) == {"rollup_combo_w20240429"}
        Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
        for query, report in reports.items():  # and what the raw rows say
            assert figures(query) == report, query.group_by
        # the worker's next rows get new ids from the same sequence
        highest = max(row[0] for row in before[RollupCombo])
        rollups.rebuild(datetime.datetime(2024, 5, 7), datetime.datetime(2024, 5, 8), now=NOW)
        rebuilt = RollupCombo.select().where(RollupCombo.day == datetime.datetime(2024, 5, 7))
        assert rebuilt.count() > 0 and min(row.id for row in rebuilt) > highest


@pytest.mark.postgres_only
def test_the_worker_makes_the_coming_weeks_and_a_new_week_takes_its_rows_from_the_default(app):
    old = datetime.datetime(2023, 1, 4)  # a Wednesday of a week no partition holds
    with db.connection_context():
        for table, _ in rollup_weeks.TABLES:
            db.execute_sql(
                "DROP TABLE IF EXISTS %s" % rollup_weeks.partition_name(table, datetime.datetime(2023, 1, 2))
            )
        RollupCombo.create(
            kind="sub1", day=old, flow_id=1, is_bot=False, country="US", device_type="mobile", os="iOS",
            browser="", connection_type="", sub1="old", clicks=3, unique_clicks=2, cost=0, lp_views=0,
            lp_clicks=0,
        )  # fmt: skip
        where = "SELECT tableoid::regclass::text, clicks FROM rollup_combo WHERE sub1 = 'old'"
        assert db.execute_sql(where).fetchall() == [("rollup_combo_default", 3)]
        made = rollup_weeks.ensure_weeks("rollup_combo", old, old, ahead=0)
        assert made == ["rollup_combo_w20230102"]
        assert db.execute_sql(where).fetchall() == [("rollup_combo_w20230102", 3)]
        retention.keep_partitions_ahead()
        coming = (
            rollup_weeks.week_start(datetime.datetime.utcnow()) + rollup_weeks.WEEKS_AHEAD * rollup_weeks.WEEK
        )
        for table, _ in rollup_weeks.TABLES:
            assert coming in rollup_weeks.week_partitions(table)
        assert retention.keep_partitions_ahead() == []  # nothing more to make the same day
