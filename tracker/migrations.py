"""Versioned schema migrations (``tracker db upgrade``).

A new database gets every table as the models define them now and is stamped with the
latest version. An existing one runs, in order, each step above its stamped version, so
an upgrade keeps the data. A step is ``(version, function(migrator))``; append new ones.
"""

import logging

from peewee import BooleanField, CharField, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

from .db import db, is_postgres
from .models import ALL_MODELS, JSONField, LeadProfile

logger = logging.getLogger(__name__)


class SchemaVersion(Model):
    version = IntegerField()

    class Meta:
        database = db
        table_name = "schema_version"


def _step_2(migrator):
    """Where routing sent a click (route, lander, offer, the lander click), and whether a
    conversion's event counts as a conversion."""
    return [
        migrator.add_column("click", "route_id", IntegerField(null=True)),
        migrator.add_column("click", "lander_id", IntegerField(null=True)),
        migrator.add_column("click", "offer_id", IntegerField(null=True)),
        migrator.add_column("click", "lp_clicked_at", DateTimeField(null=True)),
        migrator.add_column("conversion", "is_conversion", BooleanField(default=True)),
    ]


def _step_3(migrator):
    """Postbacks the ad platforms accept: headers, the answer a 2xx must carry, retries on 4xx,
    a test event code (and the delivery's copy of the first two), and the click's lead profile.
    (FlowEvent.conversion now defaults to false: a default of the model, not of the column.)"""
    LeadProfile.create_table(safe=True)
    return [
        migrator.add_column("postback", "headers", JSONField(default=dict)),
        migrator.add_column("postback", "success_body", TextField(default="")),
        migrator.add_column("postback", "retry_4xx", BooleanField(default=False)),
        migrator.add_column("postback", "test_event_code", CharField(max_length=100, default="")),
        migrator.add_column("delivery", "success_body", TextField(default="")),
        migrator.add_column("delivery", "retry_4xx", BooleanField(default=False)),
    ]


STEPS = [
    (2, _step_2),
    (3, _step_3),
]

LATEST = max([1] + [version for version, _ in STEPS])


def current_version():
    """The stamped schema version, or None for a database with no tables of ours."""
    if not db.table_exists("schema_version"):
        return None
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else None


def upgrade():
    """Bring the database to the latest schema; returns ``(from_version, to_version)``."""
    with db.connection_context():
        with db.atomic():
            if is_postgres():
                # One upgrader at a time when several processes start together.
                db.execute_sql("SELECT pg_advisory_xact_lock(7411)")
            before = current_version()
            if before is None:
                db.create_tables([SchemaVersion] + ALL_MODELS, safe=True)
                SchemaVersion.delete().execute()
                SchemaVersion.create(version=LATEST)
                logger.info("created the schema at version %d", LATEST)
                return before, LATEST
            migrator = PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)
            for version, step in STEPS:
                if version > before:
                    operations = step(migrator) or []
                    for operation in operations:
                        operation.run()
                    SchemaVersion.update(version=version).execute()
                    logger.info("upgraded the schema to version %d", version)
            return before, max(before, LATEST)
