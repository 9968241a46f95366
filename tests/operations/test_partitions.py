"""PostgreSQL: the click table partitioned by month of the click id's time (schema step 8).
Ids stay unique across months, a click lands in its month, the coming months are made ahead,
and retention drops an old month whole while its converted clicks stay."""

import datetime
import os

import pytest
from peewee import IntegrityError

from tracker.db import db
from tracker.models import Click, Conversion, Delivery, DeliveryAttempt, LeadProfile
from tracker.operations import partitions
from tracker.operations.retention import purge_old_rows

from factories import add_conversion, add_flow

pytestmark = pytest.mark.postgres_only  # deselected on SQLite (tests/conftest.py)

NOW = datetime.datetime(2026, 11, 28, 12, 0)


def click_at(flow, when, **fields):
    """A click whose id names ``when``, as the click path makes them."""
    click_id = partitions.id_prefix(when) + os.urandom(8).hex()[:16]
    return Click.create(click_id=click_id, flow=flow, created_at=when, **fields)


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
