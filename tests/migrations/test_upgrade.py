"""Every schema change is a migration step: a database made by version 1, with a row in every
table (``v1_sqlite.sql``, ``v1_postgresql.sql``, dumped from version-1 code), upgrades to the
latest schema with its data intact and its tables exactly as the models define them."""

import os
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest

from tracker.db import db, init_db
from tracker.migrations import LATEST, current_version, upgrade
from tracker.models import (
    ALL_MODELS,
    Click,
    Conversion,
    ConversionChange,
    Delivery,
    DeliveryAttempt,
    Flow,
    Offer,
    Postback,
    Route,
)
from tracker.operations import partitions

from conftest import PG_URL

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def v1_database(tmp_path):
    """A fresh database holding the version-1 dump, bound to the shared proxy."""
    if PG_URL:
        import psycopg2

        parts = urlsplit(PG_URL)
        name = parts.path.lstrip("/") + "_v1"
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            cursor.execute('CREATE DATABASE "%s"' % name)
        admin.close()
        url, dump = urlunsplit(parts._replace(path="/" + name)), "v1_postgresql.sql"
    else:
        url, dump = "sqlite:///" + str(tmp_path / "v1.db"), "v1_sqlite.sql"
    init_db(url)
    with open(os.path.join(HERE, dump)) as f:
        script = f.read()
    with db.connection_context():
        if PG_URL:
            db.execute_sql(script)
        else:
            db.execute_sql("PRAGMA foreign_keys = OFF")  # the dump orders tables by name
            db.connection().executescript(script)
            db.execute_sql("PRAGMA foreign_keys = ON")
    yield url
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()  # the pool's connections too
    elif not db.is_closed():
        db.close()


def index_names(table):
    """The indexes of ``table``, a partitioned one's too (peewee lists plain tables' only)."""
    if not PG_URL:
        return {index.name for index in db.get_indexes(table)}
    rows = db.execute_sql(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    return {name for (name,) in rows}


def test_a_version_1_database_upgrades_to_the_latest_schema_with_its_data(v1_database):
    with db.connection_context():
        assert current_version() == 1
    assert upgrade() == (1, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        for model in ALL_MODELS:
            table = model._meta.table_name
            assert {c.name for c in db.get_columns(table)} == {
                f.column_name for f in model._meta.sorted_fields
            }, table
            indexes = index_names(table)
            wanted = {index.query()[0].split('"')[1] for index in model._schema._create_indexes(safe=False)}
            if PG_URL and table == "click":  # step 8: PostgreSQL's visitor index is grouped by day
                wanted = wanted - {partitions.MODEL_VISITOR_INDEX} | {partitions.VISITOR_INDEX}
            assert wanted <= indexes, table
        assert "click_flow_id" not in index_names("click")  # step 8: (flow_id, created_at) serves
        if PG_URL:  # step 8: partitioned by month, the click in the month its id names
            where = db.execute_sql(
                "SELECT tableoid::regclass::text FROM click WHERE click_id = '0lvn2p8q0a1b2c3d4e5f6g7h8'"
            ).fetchall()
            assert where == [("click_p2024_05",)]
            assert db.execute_sql("SELECT relkind FROM pg_class WHERE relname = 'click'").fetchone() == ("p",)
        click = Click.get_by_id("0lvn2p8q0a1b2c3d4e5f6g7h8")
        assert (click.flow.key, click.country, click.cost, click.params["zoneid"]) == (
            "k3J9xQ0aBc",
            "US",
            Decimal("0.35"),
            "zone 42",
        )
        conversion = Conversion.get()
        assert (conversion.click_id, conversion.payout, conversion.data["email"]) == (
            click.click_id,
            Decimal("12.50"),
            "jane@example.com",
        )
        assert Delivery.get().status == "delivered"
        assert [flow.name for flow in Flow.live()] == ["Spring push"]
        # Columns added NOT NULL keep every row, of their table and of those referring to it.
        assert [(c.status, c.payout) for c in ConversionChange.select()] == [("approved", Decimal("12.50"))]
        delivery = Delivery.get()
        assert (delivery.postback_id, delivery.success_body, delivery.retry_4xx) == (
            Postback.get().id,
            "",
            False,
        )
        assert [a.status_code for a in DeliveryAttempt.select()] == [200]
        assert (Postback.get().headers, Postback.get().test_event_code) == ({}, "")
        flow = Flow.get()
        assert (flow.timezone, flow.bind_visitors, flow.unique_window_hours) == ("", False, 24)
        offer = Offer.create(name="Offer", url="https://offer.example/")
        route = Route.create(flow=flow, name="All", offers=[{"offer_id": offer.id, "weight": 1}])
        assert Route.get_by_id(route.id).offers == [{"offer_id": offer.id, "weight": 1}]


def test_upgrading_twice_changes_nothing(v1_database):
    upgrade()
    assert upgrade() == (LATEST, LATEST)
