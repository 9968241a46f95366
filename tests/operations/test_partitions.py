"""PostgreSQL: the click table partitioned by month of the click id's time (schema step 8).
Ids stay unique across months, a click lands in its month, the coming months are made ahead,
and retention drops an old month whole while its converted clicks stay."""

import datetime
import json

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from partition_helpers import (
    click_at,
    copies_of,
    explain,
    explain_click_insert,
    explain_prepared,
    flush_statistics,
    generic_plan_rows,
    month_of_one_address,
    new_click,
    rows_read,
    scans,
    without_older_snapshots,
)
from peewee import IntegrityError

from tracker.db import db
from tracker.models import Click, Conversion, Delivery, DeliveryAttempt, LeadProfile
from tracker.operations import partitions
from tracker.operations.retention import purge_old_rows, schedule_partitions

from factories import add_conversion, add_flow
from sql_helpers import combo_index_only_plan, table_rows

pytestmark = pytest.mark.postgres_only  # deselected on SQLite (tests/conftest.py)

NOW = datetime.datetime(2026, 11, 28, 12, 0)


def home(click_id):
    return db.execute_sql(
        "SELECT tableoid::regclass::text FROM click WHERE click_id = %s", (click_id,)
    ).fetchone()


def partition_oid(name):
    return db.execute_sql("SELECT %s::regclass::oid", (name,)).fetchone()[0]


def test_a_click_lands_in_its_month_and_its_id_is_unique_across_months(app):
    with db.connection_context():
        assert partitions.is_partitioned()
        flow = add_flow()
        now = datetime.datetime.utcnow()
        click = click_at(flow, now)
        assert home(click.click_id) == (partitions.partition_name(partitions.month_start(now)),)
        odd = Click.create(click_id="zzhandmade", flow=flow, created_at=now)  # names no time of ours
        assert home(odd.click_id) == ("click_default",)
        with pytest.raises(IntegrityError), db.atomic():
            Click.create(click_id=click.click_id, flow=flow, created_at=now - datetime.timedelta(days=400))
        assert Click.get_by_id(click.click_id).created_at == now
        plan = "\n".join(
            row[0]
            for row in db.execute_sql("EXPLAIN SELECT * FROM click WHERE click_id = %s", (click.click_id,))
        )
        assert "click_default" not in plan and plan.count("Index Scan") == 1, plan  # one partition read


def test_the_coming_months_are_made_ahead_and_take_their_clicks_from_the_default_one(app):
    with db.connection_context():
        for name in ("click_p2031_03", "click_p2031_04"):  # the shared database of an earlier run
            db.execute_sql("DROP TABLE IF EXISTS %s" % name)
        flow = add_flow()
        later = datetime.datetime(2031, 3, 15, 9, 0)  # far past the months made ahead
        early = click_at(flow, later)
        assert home(early.click_id) == ("click_default",)
        created = partitions.ensure_months(later, later, ahead=1)
        assert "click_p2031_03" in created and "click_p2031_04" in created
        assert home(early.click_id) == ("click_p2031_03",)
        assert partitions.ensure_months(later, later, ahead=1) == []


def test_retention_drops_an_old_month_whole_keeping_its_converted_clicks(app):
    with db.connection_context():
        flow = add_flow()
        august = datetime.datetime(2026, 8, 10, 10, 0)
        partitions.ensure_months(august, NOW)
        old = [click_at(flow, august + datetime.timedelta(hours=n)) for n in range(5)]
        converted = old[0]
        conversion = add_conversion(converted, "3.00")
        LeadProfile.create(click=converted.click_id, data={"email": "a@b.example"})
        gone_delivery = Delivery.create(
            flow_id=flow.id, click_id=old[1].click_id, trigger="click", url="https://x/"
        )
        DeliveryAttempt.create(delivery=gone_delivery, status_code=200)
        kept_delivery = Delivery.create(
            flow_id=flow.id,
            click_id=converted.click_id,
            conversion_id=conversion.id,
            trigger="conversion",
            url="https://x/",
        )
        recent = click_at(flow, datetime.datetime(2026, 11, 20, 10, 0))
        before = partition_oid("click_p2026_08")

        counts = purge_old_rows(30, now=NOW, batch=2, pause=0)

        assert (counts["clicks"], counts["deliveries"], counts["delivery attempts"]) == (4, 1, 1)
        assert partition_oid("click_p2026_08") != before  # swapped for a new table, not DELETEd from
        assert {c.click_id for c in Click.select()} == {converted.click_id, recent.click_id}
        assert home(converted.click_id) == ("click_p2026_08",)
        assert [c.id for c in Conversion.select()] == [conversion.id]
        assert LeadProfile.get_by_id(converted.click_id).data == {"email": "a@b.example"}
        assert [d.id for d in Delivery.select()] == [kept_delivery.id]
        assert DeliveryAttempt.select().count() == 0
        # The month of the cutoff (2026-10-29) is not whole: its old rows go by batches.
        assert "click_p2026_10" in partitions.month_partitions().values()
        assert set(purge_old_rows(30, now=NOW, batch=2, pause=0).values()) == {0}


def test_a_click_reads_only_its_address_s_clicks_whatever_the_month_s_statistics(app):
    """SAME_IP (clickin.record): the click INSERT's generic plan, made while the month's
    statistics are those of an empty table, reads the earlier clicks of the click's IP only,
    not every click of its flow in the unique window (3,000 rows here before)."""
    with db.connection_context():
        flow, seed, now = stale_month_of_3000_clicks()
        new = new_click(flow, seed, now)
        with db.atomic() as transaction:
            db.execute_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            plan = explain_click_insert(new)
            transaction.rollback()
        assert rows_read(plan) <= 1, plan


def test_a_click_reads_no_earlier_clicks_of_other_addresses_after_a_month_analyzed_with_one(app):
    """partitions.DISTINCT: the month's statistics taken from 3,000 clicks of one address (a
    buyer's tests) said any address holds them all, and a new visitor's click INSERT (its generic
    plan) read all 3,000 by the primary key's range of its unique window, for each click."""
    db.obj.close_all()  # a connection that has not planned the click INSERT yet
    with db.connection_context():
        read, plan = generic_plan_rows(*month_of_one_address())
    assert read <= 1, plan


def test_a_new_visitor_s_click_looks_for_earlier_clicks_in_the_months_of_its_window_only(app):
    """clickin.record.ids_until: the click INSERT of a visitor never seen reads no partition of
    the months made ahead, nor the default one (each was an index probe a click before)."""
    from tracker.clickin import record

    with db.connection_context():
        flow = add_flow()
        now = datetime.datetime.utcnow().replace(microsecond=0)
        starts = {
            partitions.month_start(moment)
            for moment in (now - record.UNIQUE_WINDOW - datetime.timedelta(minutes=1), now)
        }
        # a window reaching into a month before the schema was made (its first day) reads that
        # month's clicks where they are, in the default partition: give that month its own
        for start in starts - set(partitions.month_partitions()):
            partitions.create_month(start)
        seed = click_at(flow, now - datetime.timedelta(hours=1), visitor="seed", ip="10.9.9.9")
        with db.atomic() as transaction:
            plan = explain_click_insert(new_click(flow, seed, now))
            transaction.rollback()
        window = {partitions.partition_name(start) for start in starts}
        ahead = set(partitions.month_partitions().values()) - window
    read = set(scans(plan))  # by an index, a bitmap of one, or a scan: the plan's pick
    shown = outline(plan)
    assert len(ahead) >= 3 and not read & ahead, shown
    assert partitions.DEFAULT not in read, shown
    assert read and read <= window, shown


def outline(plan, depth=0):
    """A JSON plan as its nodes, one a line: type, relation or index, rows."""
    line = "%s%s %s %s rows=%s" % (
        "  " * depth,
        plan.get("Node Type"),
        plan.get("Relation Name", ""),
        plan.get("Index Name", ""),
        plan.get("Actual Rows"),
    )
    return "\n".join([line] + [outline(child, depth + 1) for child in plan.get("Plans", [])])


def stale_month_of_3000_clicks():
    """A flow whose month's statistics are an empty table's (as when its partition was made),
    holding 3,000 clicks of the last hour, each of its own address: ``(flow, a click, now)``."""
    flow = add_flow()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    db.execute_sql("ANALYZE click")
    seed = click_at(flow, now - datetime.timedelta(hours=1), visitor="seed", ip="10.9.9.9")
    copies_of(seed, 3000, now - datetime.timedelta(minutes=30))
    return flow, seed, now


def test_a_click_insert_planned_while_the_month_was_empty_scans_no_partition_and_is_replanned(app):
    """db.INDEXED and operations.statistics: a connection keeps the generic plan of the click
    INSERT it made at its first click while the month's partition was empty (a new month, a new
    database). It scanned the partition, reading every click of the month for each click as the
    month filled (3,001 rows here before); now it takes an index (which one is a coin toss on an
    empty table: the primary key's range of the window reads it all too), and once the worker has
    analyzed the grown month, as autovacuum would, the plan made again reads at most one row."""
    from tracker.clickin import record
    from tracker.operations import statistics

    db.obj.close_all()  # a connection that has not planned the click INSERT yet
    with db.connection_context():
        try:
            flow = add_flow()
            now = datetime.datetime.utcnow().replace(microsecond=0)
            db.execute_sql("ANALYZE click")  # the month as when its partition was made: empty
            db.execute_sql("SET plan_cache_mode = force_generic_plan")  # planned at the first run
            seed_id = partitions.id_prefix(now - datetime.timedelta(hours=1)) + "0" * 16
            seed = Click(click_id=seed_id, flow=flow, created_at=now, ip="10.9.9.9", visitor="seed")
            for name in ("params", "cookies", "cut"):
                setattr(seed, name, {} if name != "cut" else [])
            record.insert_click(seed)  # the click path's INSERT, planned now: the month is empty
            copies_of(seed, 3000, now - datetime.timedelta(minutes=30))
            new = new_click(flow, seed, now)
            with db.atomic() as transaction:
                planned_empty = explain_click_insert(new)
                transaction.rollback()
            flush_statistics()
            month = partitions.partition_name(partitions.month_start(now))
            assert month in statistics.analyze_stale(autovacuum=False)
            with db.atomic() as transaction:
                replanned = explain_click_insert(new)
                transaction.rollback()
        finally:
            db.execute_sql("RESET plan_cache_mode")
    assert not scans(planned_empty, "Seq Scan"), planned_empty
    assert rows_read(replanned) <= 1, replanned


def test_a_write_behind_batch_reads_only_its_addresses_clicks_whatever_the_month_s_statistics(app):
    """clickin.record.insert_batch_sql: the write-behind's one INSERT of a batch, planned while
    the month's statistics are those of an empty table, reads the earlier clicks of each click's
    IP only. With the window's lower click id in it too, the plan took the primary key's range
    of the unique window: every click of the last day read for each click (13,532 a click
    measured in the bench's database)."""
    from tracker.clickin import record
    from tracker.clickin.spool import encode

    with db.connection_context():
        flow, seed, now = stale_month_of_3000_clicks()
        new = [new_click(flow, seed, now, n) for n in range(5)]
        lines = [encode(record.click_values(click), batched=True).rstrip(b"\n") for click in new]
        batch = (b"[" + b",".join(lines) + b"]").decode()
        with db.atomic() as transaction:
            plan = explain(record.CLICK_PREFIX, record.INSERT_BATCH_SQL, (batch,))  # as the drain sends it
            transaction.rollback()
    assert plan["Actual Rows"] == 5, plan
    assert rows_read(plan) <= 1, plan


def test_the_worker_analyzes_a_month_grown_since_its_statistics_on_a_server_without_autovacuum(app):
    """operations.statistics: a postback's click lookup, planned on a month whose statistics are
    an empty table's, may read the month's clicks by another index for the one of its id (20,000
    index entries a postback in the postback bench at 20,000 clicks; the choice is a coin toss on
    such statistics). The worker's check analyzes the month, as autovacuum would have, and the
    lookup reads one row."""
    from tracker.conversions.record import CLICK_AND_FLOW
    from tracker.operations import statistics

    with db.connection_context():
        flow, seed, now = stale_month_of_3000_clicks()
        flush_statistics()
        month = partitions.partition_name(partitions.month_start(now))
        assert month in statistics.stale_tables()
        assert statistics.analyze_stale(autovacuum=True) == []  # the server's own job then
        assert month in statistics.analyze_stale(autovacuum=False)
        assert month not in statistics.stale_tables()
        with db.atomic() as transaction:
            db.execute_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            plan = explain_prepared(CLICK_AND_FLOW, {"id": seed.click_id, "txid": "T-1"})
            transaction.rollback()
    assert rows_read(plan) == 1, plan
    scheduler = BackgroundScheduler()  # the worker's: the check runs every minute
    schedule_partitions(scheduler)
    assert scheduler.get_job("vacuum_analyze").trigger.interval == datetime.timedelta(seconds=60)


def test_the_worker_vacuums_the_rollup_on_a_server_without_autovacuum(app):
    """operations.statistics: reports read the combination rollup by an index-only scan of its
    index in drill-down order; on a table never vacuumed each row is also read from the table
    (its pages not marked all-visible). The worker's check vacuums it as autovacuum would once
    1,000 rows and a fifth were inserted, and the scan reads the index alone."""
    from tracker.models import RollupCombo
    from tracker.operations import statistics

    day = datetime.datetime(2026, 11, 1)
    rows = [
        dict(kind="sub1", day=day, flow_id=1 + n % 3, is_bot=False, country="US", device_type="mobile",
             os="iOS", browser="", connection_type="", sub1="z%04d" % n, clicks=1, unique_clicks=1,
             cost=0, lp_views=0, lp_clicks=0)
        for n in range(3000)
    ]  # fmt: skip
    with db.connection_context():
        RollupCombo.insert_many(rows).execute()
        db.execute_sql("ANALYZE rollup_combo")
        # the weekly partition the rows are in (operations.rollup_weeks), or the default one
        ((week,),) = db.execute_sql(
            "SELECT DISTINCT tableoid::regclass::text FROM rollup_combo WHERE day = %s", (day,)
        ).fetchall()
        assert week.startswith("rollup_combo_")
        flush_statistics()
        before = combo_index_only_plan()
        assert week in statistics.unvacuumed_tables()
        assert statistics.tend(autovacuum=True) == []  # the server's own job then
        assert without_older_snapshots() == []
        assert "VACUUM %s" % week in statistics.tend(autovacuum=False)
        assert week not in statistics.unvacuumed_tables()
        after = combo_index_only_plan()
    for plan in (before, after):  # the week's index alone (and the other weeks', empty)
        assert week in scans(plan, "Index Only Scan") and scans(plan, "Index Only Scan") == scans(plan)
    assert table_rows(before) == 3000, json.dumps(before, indent=1)
    assert table_rows(after) == 0, json.dumps(after, indent=1)
