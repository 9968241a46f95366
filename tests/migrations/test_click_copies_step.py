"""Step 11 on a database of version 10: each conversion gets a copy of what reports need of its
click (``models.CLICK_COPIED``), filled from the click, so that reports read the conversions
alone; the reports then equal a direct count of the raw rows, before and after rolling up. A
conversion whose click is gone keeps the defaults and does not stop the upgrade."""

import datetime

from test_rollup_weeks_step import as_version_16

from tracker.db import db, is_postgres
from tracker.migrations import LATEST, SchemaVersion, current_version, upgrade
from tracker.models import CLICK_COPIED, Click, Conversion
from tracker.operations import partitions
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from factories import add_click, add_conversion, add_flow

COPIES = ["click_" + name for name in CLICK_COPIED]
NOW = datetime.datetime(2024, 5, 6, 12, 30)
LOW, HIGH = datetime.date(2024, 5, 1), datetime.date(2024, 5, 5)
QUERIES = [
    ReportQuery(group_by, LOW, HIGH, **options)
    for group_by in ("day", "flow", "country", "os,sub1", "offer", "external_id", "ip,utm_source")
    for options in ({}, {"basis": "conversion", "tz": "Asia/Kolkata"}, {"include_bots": True})
]


def as_version_14():
    """Take the latest schema back to what version 14 had: click partitions analyzed by their
    sample alone (PostgreSQL)."""
    as_version_16()
    if is_postgres():
        for name in [partitions.DEFAULT, *partitions.month_partitions().values()]:
            resets = ", ".join(
                "ALTER COLUMN %s RESET (n_distinct)" % column for column, _ in partitions.DISTINCT
            )
            db.execute_sql("ALTER TABLE %s %s" % (name, resets))
    SchemaVersion.update(version=14).execute()


def as_version_13():
    """Take the latest schema back to what version 13 had: no combination index by flow (made on
    PostgreSQL only)."""
    as_version_14()
    db.execute_sql('DROP INDEX IF EXISTS "rollup_combo_kind_flow_id_day"')
    SchemaVersion.update(version=13).execute()


def as_version_12():
    """Take the latest schema back to what version 12 had: no combination index in drill-down order."""
    as_version_13()
    db.execute_sql('DROP INDEX "rollup_combo_order"')
    SchemaVersion.update(version=12).execute()


def as_version_11():
    """Take the latest schema back to what version 11 had: no sub1 combinations."""
    as_version_12()
    db.execute_sql("DELETE FROM rollup_combo WHERE kind = 'sub1'")
    db.execute_sql("ALTER TABLE rollup_combo DROP COLUMN sub1")
    SchemaVersion.update(version=11).execute()


def as_version_10():
    """Take the latest schema back to what version 10 had: conversions without the copies."""
    as_version_11()
    for column in COPIES:
        db.execute_sql("ALTER TABLE conversion DROP COLUMN %s" % column)
    SchemaVersion.update(version=10).execute()


def copies_and_clicks():
    """Each conversion's copies beside its click's columns, as the database returns them."""
    copies = [getattr(Conversion, name) for name in COPIES]
    originals = [getattr(Click, name) for name in CLICK_COPIED]
    query = Conversion.select(Conversion.id, *copies, *originals).join(
        Click, on=(Conversion.click == Click.click_id)
    )
    width = len(COPIES)
    return [(row[1 : 1 + width], row[1 + width :]) for row in query.tuples()]


def figures(rows):
    return {row.keys: (row.clicks, row.bot_clicks, row.conversions, row.revenue, row.events) for row in rows}


def dataset():
    """Two flows, 90 clicks over five days with every copied column varied, a third of them
    converted (some twice); ``{query: figures}`` of the reports."""
    flows = [add_flow("A"), add_flow("B")]
    for n in range(90):
        when = datetime.datetime(2024, 5, 1, 2) + datetime.timedelta(minutes=77 * n)
        click = add_click(
            flows[n % 2],
            when.strftime("%Y-%m-%d %H:%M"),
            country=["US", "DE", ""][n % 3],
            region=["CA", "BY"][n % 2],
            city=["LA", "Munich", "Paris"][n % 3],
            isp=["Comcast", "Vodafone"][n % 2],
            connection_type=["cable", "mobile"][n % 2],
            device_type=["mobile", "desktop"][n % 2],
            os=["iOS", "Android", "Windows"][n % 3],
            browser=["Chrome", "Safari"][n % 2],
            ip="10.0.0.%d" % (n % 7),
            external_id="x%d" % (n % 11),
            sub1="s%d" % (n % 4),
            sub5="z%d" % (n % 2),
            utm_source=["fb", "tt", ""][n % 3],
            route_id=[None, 1][n % 2],
            lander_id=[None, 3, 4][n % 3],
            offer_id=[5, 6, None][n % 3],
            is_bot=n % 8 == 0,
        )
        if n % 3 == 0:
            add_conversion(click, "2.50")
        if n % 9 == 0:
            add_conversion(click, "1.00", event="lead", is_conversion=False, when="2024-05-05 23:30")
    return {query: figures(run_report(query)) for query in QUERIES}


def drop_click_of_a_conversion():
    """A click gone from under its conversion (PostgreSQL keeps no foreign key there, step 8)."""
    flow = add_flow("Gone")
    gone = add_click(flow, "2024-05-03 10:00", click_id="gone0001", country="US", sub1="lost")
    add_conversion(gone, "1.00")
    if not is_postgres():
        db.execute_sql("PRAGMA foreign_keys = OFF")
    Click.delete().where(Click.click_id == "gone0001").execute()
    if not is_postgres():
        db.execute_sql("PRAGMA foreign_keys = ON")


def test_a_version_10_database_copies_each_conversions_click(app):
    reports = dataset()
    drop_click_of_a_conversion()
    count = Conversion.select().count()
    as_version_10()
    db.close()
    assert upgrade() == (10, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        assert Conversion.select().count() == count
        pairs = copies_and_clicks()
        assert len(pairs) == count - 1 and all(copy == click for copy, click in pairs)
        assert {row.click_is_bot for row in Conversion.select()} == {False, True}  # not all defaults
        orphan = Conversion.get(Conversion.click == "gone0001")
        assert (orphan.click_country, orphan.click_sub1, orphan.click_created_at) == (
            "",
            "",
            datetime.datetime(1970, 1, 1),
        )
        orphan.delete_instance()  # no longer a conversion of the dataset's reports
        for query, report in reports.items():
            assert figures(run_report(query)) == report, query
        rollups.advance(now=NOW)
        for query, report in reports.items():
            assert figures(run_report(query)) == report, query
        assert sum(row[2] for row in reports[QUERIES[0]].values()) == 26  # 30, 4 of them by bots
