"""Steps 9, 10, 12, 13 and 14 on a database of version 8, 9, 11, 12 or 13 with clicks rolled up:
the combination rollup is created (9), given its route kind (10) and its sub1 kind (12) and
filled for the days already rolled up, exactly as the worker would fill it, and given its index
in drill-down order (13) and its index by flow (14); the click indexes the value pages walk are
made, and reports by combinations read it and equal the raw rows."""

import datetime
from decimal import Decimal

from test_click_copies_step import as_version_10, as_version_11, as_version_12, as_version_13

from tracker import migrations
from tracker.db import db, is_postgres
from tracker.migrations import LATEST, SchemaVersion, current_version, upgrade
from tracker.models import Click, Flow, RollupCombo, Setting
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report, run_stats

from factories import add_click, add_conversion, add_flow
from sql_helpers import combo_plans, statements_of

NOW = datetime.datetime(2024, 5, 4, 6, 30)
INDEXES = ("click_flow_id_external_id_created_at", "click_flow_id_ip_created_at")
QUERIES = [
    ReportQuery("country,os,browser", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4)),
    ReportQuery("offer,lander", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4)),
    ReportQuery("offer", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4), filters=(("country", "US"),)),
    ReportQuery("country,os,sub1", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4)),
    ReportQuery("sub1", datetime.date(2024, 5, 1), datetime.date(2024, 5, 4), filters=(("os", "iOS"),)),
]


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
    as_version_10()
    db.execute_sql("DROP TABLE rollup_combo")
    for name in INDEXES:
        db.execute_sql('DROP INDEX "%s"' % name)
    SchemaVersion.update(version=8).execute()


def figures(rows):
    return {row.keys: (row.clicks, row.bot_clicks, row.cost, row.lp_views, row.conversions) for row in rows}


def rolled_up_dataset():
    """Two flows, 60 clicks over four days rolled up; ``(combination rows, {query: figures})``."""
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
            sub1=["s1", "s2", "", "s3"][n % 4],
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
    return expected, {query: figures(run_report(query)) for query in QUERIES}


def check_upgraded(expected, reports):
    """The latest schema, the combinations of the days before the rolled-up point's as the worker
    fills them (the day it is in is read raw until the worker rolls it up whole), and reports
    equal to what they were and to the raw rows."""
    with db.connection_context():
        assert current_version() == LATEST
        assert set(INDEXES) <= click_indexes()
        assert combos() == [row for row in expected if row[1] < datetime.datetime(2024, 5, 4)]
        assert {kind for (kind,) in RollupCombo.select(RollupCombo.kind).distinct().tuples()} == {
            "device",
            "route",
            "sub1",
        }
        for query, report in reports.items():
            assert figures(run_report(query)) == report, query.group_by
        Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
        for query, report in reports.items():
            assert figures(run_report(query)) == report, query.group_by  # the raw rows say the same
        assert Click.select().count() == 60


def test_a_version_8_database_gets_the_combination_rollups_of_its_rolled_up_days(app):
    expected, reports = rolled_up_dataset()
    as_version_8()
    db.close()
    assert upgrade() == (8, LATEST)
    check_upgraded(expected, reports)


def test_a_version_9_database_gets_the_route_combinations(app, monkeypatch):
    """Step 9 as it was released (device combinations only, no kind), then step 10."""
    expected, reports = rolled_up_dataset()
    as_version_8()
    db.close()
    with monkeypatch.context() as patched:
        patched.setattr(migrations, "STEPS", [step for step in migrations.STEPS if step[0] <= 9])
        patched.setattr(migrations, "LATEST", 9)
        assert upgrade() == (8, 9)
    with db.connection_context():
        assert "kind" not in {column.name for column in db.get_columns("rollup_combo")}
        assert db.execute_sql("SELECT COUNT(*) FROM rollup_combo").fetchone()[0] > 0
    db.close()
    assert upgrade() == (9, LATEST)
    check_upgraded(expected, reports)


def planned_rows():
    """The rows of ``rollup_combo`` by PostgreSQL's statistics (what its planner believes)."""
    return db.execute_sql("SELECT reltuples FROM pg_class WHERE relname = 'rollup_combo'").fetchone()[0]


def test_a_version_11_database_gets_the_sub1_combinations(app):
    """And on PostgreSQL the statistics count them: a plan made for the table without them
    sorted on disk what it would hash in memory."""
    expected, reports = rolled_up_dataset()
    with db.connection_context():
        assert RollupCombo.select().where(RollupCombo.kind == "sub1").count() > 0
    as_version_11()
    if is_postgres():
        db.execute_sql("ANALYZE rollup_combo")
        before = RollupCombo.select().count()
        assert planned_rows() == before
    db.close()
    assert upgrade() == (11, LATEST)
    check_upgraded(expected, reports)
    if is_postgres():
        with db.connection_context():
            assert planned_rows() == RollupCombo.select().count() > before


def index_names():
    return {
        name
        for (name,) in db.execute_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'rollup_combo'"
            if is_postgres()
            else "SELECT name FROM sqlite_master WHERE tbl_name = 'rollup_combo'"
        )
    }


def page_of(flow):
    """A page of country,os,sub1 over the rolled-up days, of one flow or (None) every flow."""
    return ReportQuery(
        "country,os,sub1", datetime.date(2024, 5, 1), datetime.date(2024, 5, 3), flow_id=flow, limit=3
    )


def postgres_plan(page):
    """PostgreSQL's plan of ``page``'s first read of the combination rows, scans ruled out (the
    dataset is too small for the planner to prefer an index on its own), and index-only scans
    too: the roll-up VACUUMed the table (``rollups.refresh_statistics``), and an index-only scan
    of every flow's few rows here costs less than any other read; at 10 M clicks, vacuumed, the
    planner takes the flow index for one flow's page by itself (the README's measurements)."""
    with db.atomic():
        db.execute_sql("SET LOCAL enable_seqscan TO off; SET LOCAL enable_indexonlyscan TO off")
        sent = statements_of(lambda: run_stats(page))
        sql, params = next(item for item in sent if "rollup_combo" in item[0] and "GROUP BY" in item[0])
        return [step for (step,) in db.execute_sql("EXPLAIN " + sql, params).fetchall()]


def index_step(as_version, version):
    """Upgrade the dataset taken back to ``version`` (``as_version``); the combination indexes, the
    plans of a country,os,sub1 page over every flow and one flow's (SQLite's; PostgreSQL's of one
    flow's only), and the reports checked."""
    expected, reports = rolled_up_dataset()
    for number in range(18):  # twenty flows, as in the bench: one flow's share of them
        add_flow("idle %d" % number)
    as_version()
    db.close()
    assert upgrade() == (version, LATEST)
    with db.connection_context():
        names = index_names()
        one_flow = page_of(Flow.get(Flow.name == "A").id)
        if is_postgres():
            plans = [postgres_plan(one_flow)]
        else:
            plans = [combo_plans(lambda page=page: run_stats(page))[0] for page in (page_of(None), one_flow)]
    check_upgraded(expected, reports)
    return names, plans


def test_a_version_12_database_gets_the_index_in_drill_down_order(app):
    """And a page of country,os,sub1 reads the combination rows from it alone, grouped as read:
    on SQLite no sort of the rows (a temporary B-tree for the GROUP BY), which at 1 M clicks was
    half of the report's time."""
    names, plans = index_step(as_version_12, 12)
    assert "rollup_combo_order" in names
    if not is_postgres():
        assert any("COVERING INDEX rollup_combo_order" in step for step in plans[0]), plans
        assert not any("TEMP B-TREE FOR GROUP BY" in step for step in plans[0]), plans


def test_a_version_13_database_gets_the_index_by_flow_on_postgresql(app):
    """Where one flow's report reads its own combination rows by it (not every flow's by a
    scan); SQLite, whose planner keeps the drill-down index for them, does not get it."""
    names, plans = index_step(as_version_13, 13)
    assert ("rollup_combo_kind_flow_id_day" in names) is is_postgres()
    if is_postgres():
        # the index of the table, or of its weekly partition (named after it, step 17)
        assert any("kind_flow_id_day" in step for step in plans[0]), plans
    else:  # every flow's page and one flow's read the drill-down index
        assert all(any("COVERING INDEX rollup_combo_order" in step for step in plan) for plan in plans), plans
