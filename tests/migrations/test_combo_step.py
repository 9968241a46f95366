"""Step 9 on a database of version 8 with clicks rolled up: the combination rollup is created and
filled for the days already rolled up, exactly as the worker would fill it, the click indexes
the value pages walk are made, and reports by combinations read it and equal the raw rows."""

import datetime
from decimal import Decimal

from tracker.db import db, is_postgres
from tracker.migrations import LATEST, SchemaVersion, current_version, upgrade
from tracker.models import Click, RollupCombo, Setting
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from factories import add_click, add_conversion, add_flow

NOW = datetime.datetime(2024, 5, 4, 6, 30)
INDEXES = ("click_flow_id_external_id_created_at", "click_flow_id_ip_created_at")


def combos():
    fields = [f for f in RollupCombo._meta.sorted_fields if f.name != "id"]
    return sorted(RollupCombo.select(*fields).tuples(), key=repr)


def click_indexes():
    if is_postgres():
        rows = db.execute_sql(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'click'::regclass"
        ).fetchall()
        return {name for (name,) in rows}
    return {index.name for index in db.get_indexes("click")}


def as_version_8():
    """Take the latest schema back to what version 8 had: no combination table, no value indexes."""
    db.execute_sql("DROP TABLE rollup_combo")
    for name in INDEXES:
        db.execute_sql('DROP INDEX "%s"' % name)
    SchemaVersion.update(version=8).execute()


def figures(rows):
    return {row.keys: (row.clicks, row.bot_clicks, row.cost, row.lp_views, row.conversions) for row in rows}


def test_a_version_8_database_gets_the_combination_rollup_of_its_rolled_up_days(app):
    flows = [add_flow("A"), add_flow("B")]
    for n in range(60):
        when = datetime.datetime(2024, 5, 1, 3) + datetime.timedelta(minutes=71 * n)
        click = add_click(
            flows[n % 2],
            when.strftime("%Y-%m-%d %H:%M"),
            country=["US", "DE", ""][n % 3],
            os=["iOS", "Android"][n % 2 // 1 if n % 4 else 0],
            browser=["Chrome", "Safari", "Edge"][n % 3],
            route_id=[None, 1][n % 2],
            lander_id=[None, 3, 4][n % 3],
            offer_id=[5, 6][n % 2],
            is_bot=n % 9 == 0,
            is_unique=n % 5 != 0,
            cost=Decimal("0.25") * (n % 3),
            lp_clicked_at=when + datetime.timedelta(minutes=1) if n % 6 == 1 else None,
        )
        if n % 7 == 0:
            add_conversion(click, "3.00")
    rollups.advance(now=NOW)
    expected = combos()
    assert expected and rollups.rolled_until() == datetime.datetime(2024, 5, 4, 6)
    query = ReportQuery("country,os,browser", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4))
    report = figures(run_report(query))
    by_offer = ReportQuery("offer,lander", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4))
    offers = figures(run_report(by_offer))

    as_version_8()
    db.close()
    assert upgrade() == (8, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        assert set(INDEXES) <= click_indexes()
        # the days before the rolled-up point's: filled as the worker fills them; the day it
        # is in is read raw until the worker rolls it up whole
        assert combos() == [row for row in expected if row[1] < datetime.datetime(2024, 5, 4)]
        assert {kind for (kind,) in RollupCombo.select(RollupCombo.kind).distinct().tuples()} == {
            "device",
            "route",
        }
        assert figures(run_report(query)) == report
        assert figures(run_report(by_offer)) == offers
        Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
        assert figures(run_report(query)) == report  # the raw rows say the same
        assert figures(run_report(by_offer)) == offers
        assert Click.select().count() == 60
