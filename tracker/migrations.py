"""Versioned schema migrations (``tracker db upgrade``).

A new database gets every table as the models define them now and is stamped with the
latest version. An existing one runs, in order, each step above its stamped version, so
an upgrade keeps the data. A step is ``(version, function(migrator))``; append new ones.
"""

import datetime
import logging

from peewee import (
    SQL,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

from .db import db, is_postgres
from .models import ALL_MODELS, POSTGRES_INDEXES, Flow, JSONField, LeadProfile, utcnow
from .money import MoneyField
from .operations import partitions, rollup_weeks

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
        add_not_null(migrator, "conversion", "is_conversion", BooleanField(default=True)),
    ]


def add_not_null(migrator, table, name, field):
    """Add a NOT NULL column with its default written into the DDL: one ALTER TABLE on both
    engines. (peewee's add_column adds it nullable, then rebuilds a SQLite table to make it
    NOT NULL, and dropping the old table cascades deletes into every table that refers to it.)"""
    value = field.db_value(field.default() if callable(field.default) else field.default)
    if isinstance(value, bool):
        literal = "TRUE" if value else "FALSE"
    elif isinstance(value, int):
        literal = str(value)
    else:
        literal = "'%s'" % str(value).replace("'", "''")
    field = field.clone()
    field.constraints = [SQL("DEFAULT " + literal)]
    return migrator.add_column(table, name, field, allow_not_null=True)


class _V5Model(Model):
    """The tables step 5 creates, frozen as they were then: a later change to the models
    is a later step, so an old database must not get it here first."""

    class Meta:
        database = db
        legacy_table_names = False


class _V5Offer(_V5Model):
    name = CharField(max_length=200)
    url = TextField()
    payout = MoneyField(default=0)
    currency = CharField(max_length=3, default="USD")
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "offer"


class _V5Lander(_V5Model):
    name = CharField(max_length=200)
    url = TextField()
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "lander"


class _V5Route(_V5Model):
    flow = ForeignKeyField(Flow, on_delete="CASCADE")
    position = IntegerField(default=0)
    name = CharField(max_length=200)
    enabled = BooleanField(default=True)
    is_default = BooleanField(default=False)
    action = CharField(max_length=16, default="redirect")
    rules = JSONField(default=list)
    landers = JSONField(default=list)
    offers = JSONField(default=list)
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "route"
        indexes = ((("flow", "position"), False),)


def _step_5(migrator):
    """Traffic distribution (DESIGN §4.7): offers, landers and a flow's routes; a flow's time
    zone, visitor binding and unique window. Bot lists live in ``setting`` (no table)."""
    db.create_tables([_V5Offer, _V5Lander, _V5Route])
    return [
        add_not_null(migrator, "flow", "timezone", CharField(max_length=64, default="")),
        add_not_null(migrator, "flow", "bind_visitors", BooleanField(default=False)),
        add_not_null(migrator, "flow", "unique_window_hours", IntegerField(default=24)),
    ]


def _step_3(migrator):
    """Postbacks the ad platforms accept: headers, the answer a 2xx must carry, retries on 4xx,
    a test event code (and the delivery's copy of the first two), and the click's lead profile.
    (FlowEvent.conversion now defaults to false: a default of the model, not of the column.)"""
    LeadProfile.create_table(safe=True)
    return [
        add_not_null(migrator, "postback", "headers", JSONField(default=dict)),
        add_not_null(migrator, "postback", "success_body", TextField(default="")),
        add_not_null(migrator, "postback", "retry_4xx", BooleanField(default=False)),
        add_not_null(migrator, "postback", "test_event_code", CharField(max_length=100, default="")),
        add_not_null(migrator, "delivery", "success_body", TextField(default="")),
        add_not_null(migrator, "delivery", "retry_4xx", BooleanField(default=False)),
    ]


def _step_4(migrator):
    """The claim token of a delivery (fencing, DESIGN §4.4): only the latest claim of a row
    may record its outcome. Idempotent: a database stamped 5 before this step existed runs it
    too (see ``upgrade``)."""
    if "claim_token" in {c.name for c in db.get_columns("delivery")}:
        return []
    return [add_not_null(migrator, "delivery", "claim_token", BigIntegerField(default=0))]


class _V6CurrencyRate(_V5Model):
    code = CharField(max_length=3, primary_key=True)
    rate = CharField(max_length=40)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "currency_rate"


class _V6RollupClick(_V5Model):
    hour = DateTimeField()
    flow_id = IntegerField()
    dimension = CharField(max_length=20)
    value = CharField(max_length=255)
    is_bot = BooleanField()
    clicks = IntegerField()
    unique_clicks = IntegerField()
    cost = MoneyField()
    lp_views = IntegerField()
    lp_clicks = IntegerField()

    class Meta:
        table_name = "rollup_click"
        indexes = ((("dimension", "hour", "flow_id"), False),)


class _V6RollupDirty(_V5Model):
    hour = DateTimeField()
    flow_id = IntegerField()

    class Meta:
        table_name = "rollup_dirty"


def _step_6(migrator):
    """Reports (DESIGN §4.5, §6): hourly rollups and their dirty hours, stored currency rates,
    and a conversion's rate and payout in TRACKER_CURRENCY as of when it was recorded. The
    rollups start empty: the worker rolls up the existing clicks, oldest first, and reports
    read the raw rows until it has. Idempotent: a database stamped 7 or 8 before this step
    was merged runs it too."""
    db.create_tables([_V6CurrencyRate, _V6RollupClick, _V6RollupDirty], safe=True)
    columns = {c.name for c in db.get_columns("conversion")}
    operations = []
    if "rate" not in columns:
        operations.append(migrator.add_column("conversion", "rate", CharField(max_length=40, null=True)))
    if "report_payout" not in columns:
        operations.append(migrator.add_column("conversion", "report_payout", MoneyField(null=True)))
    return operations


class _V7Session(_V5Model):
    """The table step 7 creates, frozen as it was then."""

    id_hash = CharField(max_length=64, primary_key=True)
    user_id = IntegerField(null=True, index=True)
    data = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    seen_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "user_session"


def _step_7(migrator):
    """Server-side dashboard sessions (DESIGN §4.8): logging out and a password change end
    them; the old signed cookies hold no session id, so everyone logs in once more. API tokens
    that may ask for unmasked secrets (``?reveal=1``): none of the existing ones."""
    db.create_tables([_V7Session])
    return [add_not_null(migrator, "api_token", "may_reveal", BooleanField(default=False))]


def _step_8(migrator):
    """Clicks at scale (issue 14): the click table's index on flow_id alone goes (the index on
    (flow_id, created_at) serves every lookup by flow, and each index costs every click); on
    PostgreSQL the click table becomes partitioned by month (``operations.partitions``)."""
    db.execute_sql("DROP INDEX IF EXISTS click_flow_id")
    if is_postgres():
        partitions.partition_table(utcnow())


class _V9RollupCombo(_V5Model):
    """The table step 9 creates, frozen as it was then."""

    day = DateTimeField()
    flow_id = IntegerField()
    is_bot = BooleanField()
    country = CharField(max_length=2)
    device_type = CharField(max_length=10)
    os = CharField(max_length=100)
    browser = CharField(max_length=100)
    connection_type = CharField(max_length=30)
    clicks = IntegerField()
    unique_clicks = IntegerField()
    cost = MoneyField()
    lp_views = IntegerField()
    lp_clicks = IntegerField()

    class Meta:
        table_name = "rollup_combo"
        indexes = ((("day", "flow_id"), False),)


_V9_COMBO_COLUMNS = ("country", "device_type", "os", "browser", "connection_type")


def _fill_combos(columns, grouped, kind=None):
    """Fill ``rollup_combo`` from the raw clicks for every whole day already rolled up (steps 9,
    10 and 12; the worker keeps it from then on; days whose clicks retention purged get none, as
    a raw read finds none): grouped by day, flow, bot flag and ``grouped``, the ``columns`` not
    grouped holding '' (text) or NULL (ids); with a ``kind``, the rows of that kind only (before
    step 10 there is none)."""
    values = [c if c in grouped else "NULL" if c.endswith("_id") else "''" for c in columns]
    row = db.execute_sql("SELECT value FROM setting WHERE key = 'rollups_until'").fetchone()
    if row is None:
        return
    until = row[0][:10] + " 00:00:00"  # the start of the day the rolled-up point is in
    day = "date_trunc('day', created_at)" if is_postgres() else "strftime('%Y-%m-%d 00:00:00', created_at)"
    true = "TRUE" if is_postgres() else "1"
    param = "%s" if is_postgres() else "?"
    of_kind = "kind = '%s' AND " % kind if kind else ""
    db.execute_sql("DELETE FROM rollup_combo WHERE " + of_kind + "day < " + param, (until,))
    db.execute_sql(
        "INSERT INTO rollup_combo ({kind_column}day, flow_id, is_bot, {columns}, clicks, unique_clicks, "
        "cost, lp_views, lp_clicks) SELECT {kind_value}{day}, flow_id, is_bot, {values}, COUNT(*), "
        "SUM(CASE WHEN is_unique = {true} THEN 1 ELSE 0 END), COALESCE(SUM(cost), 0), "
        "SUM(CASE WHEN lander_id IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN lander_id IS NOT NULL AND lp_clicked_at IS NOT NULL THEN 1 ELSE 0 END) "
        "FROM click WHERE created_at < {param} GROUP BY {day}, flow_id, is_bot, {grouped}".format(
            kind_column="kind, " if kind else "",
            kind_value="'%s', " % kind if kind else "",
            columns=", ".join(columns),
            values=", ".join(values),
            grouped=", ".join(grouped),
            day=day,
            true=true,
            param=param,
        ),
        (until,),
    )


def _step_9(migrator):
    """Reports by several dimensions and by ``external_id`` or ``ip`` (issue 12): the daily
    combination rollup (``rollup_combo``), filled here from the raw clicks for every whole day
    already rolled up, and the click indexes (flow_id, external_id, created_at) and (flow_id, ip,
    created_at) that pages of those dimensions walk. On PostgreSQL an index on the partitioned
    click table is made on every partition."""
    db.create_tables([_V9RollupCombo], safe=True)
    for column in ("external_id", "ip"):
        db.execute_sql(
            'CREATE INDEX IF NOT EXISTS "click_flow_id_%s_created_at" ON click (flow_id, %s, created_at)'
            % (column, column)
        )
    _fill_combos(_V9_COMBO_COLUMNS, _V9_COMBO_COLUMNS)
    return []


# The columns of each kind of combination (step 10); the other kind's hold '' (text) or NULL (ids).
_V10_COMBO_KINDS = {
    "device": _V9_COMBO_COLUMNS,
    "route": ("route_id", "lander_id", "offer_id", "country"),
}
_V10_COMBO_COLUMNS = _V10_COMBO_KINDS["device"] + ("route_id", "lander_id", "offer_id")


def _step_10(migrator):
    """Combinations of route, lander, offer and country (issue 12): ``rollup_combo`` gets a
    ``kind`` (the rows step 9 made are of kind ``device``) and the route, lander and offer
    columns, its index leads with the kind, and the ``route`` rows of the days already rolled up
    are filled from the raw clicks."""
    operations = [
        add_not_null(migrator, "rollup_combo", "kind", CharField(max_length=10, default="device")),
        migrator.add_column("rollup_combo", "route_id", IntegerField(null=True)),
        migrator.add_column("rollup_combo", "lander_id", IntegerField(null=True)),
        migrator.add_column("rollup_combo", "offer_id", IntegerField(null=True)),
    ]
    for operation in operations:
        operation.run()
    db.execute_sql('DROP INDEX IF EXISTS "rollup_combo_day_flow_id"')
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "rollup_combo_kind_day_flow_id" ON rollup_combo (kind, day, flow_id)'
    )
    _fill_combos(_V10_COMBO_COLUMNS, _V10_COMBO_KINDS["route"], kind="route")
    return []


# The click's columns a conversion got a copy of in step 11, with their types (frozen).
_V11_COPIED = (
    ("created_at", "timestamp"),
    ("is_bot", "boolean"),
    ("country", 2),
    ("region", 100),
    ("city", 100),
    ("isp", 200),
    ("connection_type", 30),
    ("device_type", 10),
    ("os", 100),
    ("browser", 100),
    ("ip", 45),
    ("external_id", 255),
    *[("sub%d" % n, 255) for n in range(1, 6)],
    *[("utm_" + part, 255) for part in ("source", "medium", "campaign", "term", "content")],
    ("route_id", "id"),
    ("lander_id", "id"),
    ("offer_id", "id"),
)


def copy_clicks_onto_conversions(names):
    """Set every conversion's copies of its click's columns ``names`` (``click_<name>``) from the
    click; those whose click is gone keep theirs."""
    copies = ", ".join("click_" + name for name in names)
    db.execute_sql(
        "UPDATE conversion SET ({copies}) = (SELECT {names} FROM click WHERE click.click_id = "
        "conversion.click_id) WHERE EXISTS (SELECT 1 FROM click WHERE click.click_id = "
        "conversion.click_id)".format(copies=copies, names=", ".join(names))
    )


def _step_11(migrator):
    """Reports without the click table (issue 12): each conversion gets a copy of what reports
    need of its click (``models.CLICK_COPIED``), filled from its click here and by the
    conversion's INSERT from then on. Each column is added with a default: one quick ALTER
    each, no table rebuild on SQLite."""
    pg = is_postgres()
    for name, kind in _V11_COPIED:
        if kind == "timestamp":
            ddl = "%s NOT NULL DEFAULT '1970-01-01 00:00:00'" % ("TIMESTAMP" if pg else "DATETIME")
        elif kind == "boolean":
            ddl = "BOOLEAN NOT NULL DEFAULT FALSE" if pg else "INTEGER NOT NULL DEFAULT 0"
        elif kind == "id":
            ddl = "INTEGER"
        else:
            ddl = "VARCHAR(%d) NOT NULL DEFAULT ''" % kind
        db.execute_sql("ALTER TABLE conversion ADD COLUMN click_%s %s" % (name, ddl))
    copy_clicks_onto_conversions([name for name, _ in _V11_COPIED])
    return []


# The columns of each kind of combination (step 12): sub1 with country, device and OS.
_V12_COMBO_COLUMNS = _V10_COMBO_COLUMNS + ("sub1",)
_V12_SUB1_KIND = ("country", "device_type", "os", "sub1")


def _step_12(migrator):
    """The drill-down to sub1 (issue 12): ``rollup_combo`` gets a ``sub1`` column ('' in the
    rows of the other kinds) and the ``sub1`` rows (country, device, OS and sub1) of the days
    already rolled up are filled from the raw clicks; on PostgreSQL the table is analyzed."""
    add_not_null(migrator, "rollup_combo", "sub1", CharField(max_length=255, default="")).run()
    _fill_combos(_V12_COMBO_COLUMNS, _V12_SUB1_KIND, kind="sub1")
    if is_postgres():
        # the planner's statistics, as after a large roll-up (rollups.refresh_statistics): at 10 M
        # clicks the kind adds 4.7 M rows, and reports planned for the table as it was sorted on disk
        db.execute_sql("ANALYZE rollup_combo")
    return []


# The columns of the combination index of step 13, as it was released.
_V13_COMBO_ORDER = (
    "kind",
    "country",
    "os",
    "sub1",
    "device_type",
    "day",
    "flow_id",
    "is_bot",
    "clicks",
    "unique_clicks",
    "cost",
    "lp_views",
    "lp_clicks",
)


def _step_13(migrator):
    """The combination rows in drill-down order (``models.COMBO_ORDER``): reports by country, OS
    and sub1 read the index in group order instead of sorting every row."""
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "rollup_combo_order" ON "rollup_combo" (%s)'
        % ", ".join('"%s"' % column for column in _V13_COMBO_ORDER)
    )
    return []


def _step_14(migrator):
    """PostgreSQL: the combination rows of one flow (``models.POSTGRES_INDEXES``, as released):
    one flow's report read the whole kind by a parallel scan."""
    if is_postgres():
        db.execute_sql(
            'CREATE INDEX IF NOT EXISTS "rollup_combo_kind_flow_id_day" '
            'ON "rollup_combo" ("kind", "flow_id", "day")'
        )
    return []


def _step_15(migrator):
    """PostgreSQL: each click partition's visitor and address columns analyzed as of many
    values (``partitions.DISTINCT``), whatever the sample of its last ANALYZE held; the months a
    click's probe reads (this one and the last) analyzed again to take them."""
    if is_postgres() and partitions.is_partitioned():
        months = partitions.month_partitions()
        for name in [partitions.DEFAULT, *months.values()]:
            partitions.set_distinct(name)
        this_month = partitions.month_start(utcnow())
        last_month = partitions.month_start(this_month - datetime.timedelta(days=1))
        for start in (last_month, this_month):
            if start in months:
                db.execute_sql("ANALYZE %s" % months[start])
    return []


def _step_16(migrator):
    """PostgreSQL: the block-range index of the clicks' times on every partition
    (``partitions.TIME_INDEX``): the rollups' reads of an hour or a day over every flow read
    that period's pages, not the whole table."""
    if is_postgres() and partitions.is_partitioned():
        db.execute_sql(partitions.TIME_INDEX_SQL)
    return []


def _step_17(migrator):
    """PostgreSQL: the rollup tables partitioned by week (``operations.rollup_weeks``): a report
    reads the weeks of its period, not every month of rollups kept."""
    if is_postgres():
        rollup_weeks.partition_tables(utcnow())
    return []


STEPS = [
    (2, _step_2),
    (3, _step_3),
    (4, _step_4),
    (5, _step_5),
    (6, _step_6),
    (7, _step_7),
    (8, _step_8),
    (9, _step_9),
    (10, _step_10),
    (11, _step_11),
    (12, _step_12),
    (13, _step_13),
    (14, _step_14),
    (15, _step_15),
    (16, _step_16),
    (17, _step_17),
]
# Steps merged after a later step was released: run on every upgrade whatever the stamped
# version, each one a no-op once done.
IDEMPOTENT_STEPS = (4, 6)

LATEST = max([1] + [version for version, _ in STEPS])


def current_version():
    """The stamped schema version, or None for a database with no tables of ours."""
    if not db.table_exists("schema_version"):
        return None
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else None


def _up_to_date():
    """True when the schema is at the latest version with every idempotent step done (read
    only, so that a process starting while the database is locked does not wait on it)."""
    if current_version() != LATEST:
        return False
    return "claim_token" in {c.name for c in db.get_columns("delivery")}


def upgrade():
    """Bring the database to the latest schema; returns ``(from_version, to_version)``."""
    with db.connection_context():
        if _up_to_date():
            return LATEST, LATEST  # no write lock taken: a process may start while one is held
        with db.atomic():
            if is_postgres():
                # One upgrader at a time when several processes start together.
                db.execute_sql("SELECT pg_advisory_xact_lock(7411)")
            before = current_version()
            if before is None:
                db.create_tables([SchemaVersion] + ALL_MODELS, safe=True)
                if is_postgres():
                    partitions.partition_table(utcnow())
                    for index in POSTGRES_INDEXES:
                        db.execute_sql(index)
                    rollup_weeks.partition_tables(utcnow())
                SchemaVersion.delete().execute()
                SchemaVersion.create(version=LATEST)
                logger.info("created the schema at version %d", LATEST)
                return before, LATEST
            migrator = PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)
            for version, step in STEPS:
                if version > before or version in IDEMPOTENT_STEPS:
                    operations = step(migrator) or []
                    for operation in operations:
                        operation.run()
                    if version > before:
                        SchemaVersion.update(version=version).execute()
                    if version > before or operations:
                        logger.info("upgraded the schema to version %d", version)
            return before, max(before, LATEST)
