"""The click table partitioned by month on PostgreSQL (DESIGN §6): made by schema step 8,
kept ahead of time by the worker, and old months dropped whole by retention.

The partition key is the click id itself, not ``created_at``: a click id begins with its
creation time in milliseconds (9 base-36 digits, ``clickin.record.new_click_id``), so the ids of
a month form one range of text (``COLLATE "C"``: byte order, the digits' order). So the primary
key stays ``(click_id)``, and a click id is unique across all partitions exactly as before, the
lookup of a postback by click id reads one partition, and the conversions' and lead profiles'
``click_id`` could keep pointing at it. An id that names no time of ours (tests' hand-made
ones, or a month without a partition yet) lands in the ``click_default`` partition.

What retention does with a month older than the cutoff: its clicks that have a conversion (or a
lead profile) must stay, since the conversion is attributed and reported by its click. They
are copied into a fresh table; then, in one short transaction, the month is detached, the
copy attached in its place and the month dropped: no row-by-row DELETE, no dead tuples, no
vacuum, the disk space back at once. PostgreSQL refuses to detach a partition that a foreign
key's rows point into, so on PostgreSQL ``conversion.click_id`` and ``lead_profile.click_id``
carry no foreign key (step 8 drops them); what they guarded is kept by the code instead: a
conversion's INSERT finds its click in the same statement (``conversions.record``), and the
swap holds conversions and lead profiles still (``SHARE ROW EXCLUSIVE``) while it copies.
"""

import datetime
import logging
import re

from ..db import db, is_postgres

logger = logging.getLogger(__name__)

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# The visitor index of the model, (flow_id, visitor, created_at), is on PostgreSQL this one, its
# keys grouped by day: a click's entry goes among the day's, not at a random place of the whole
# index. Measured at 1 M clicks (EXPLAIN (ANALYZE, WAL) of 300 click INSERTs): with the model's
# index each INSERT read 1.5 blocks from outside shared buffers and wrote 1.5 full-page images,
# 10.6 kB of WAL against 0.47 kB on an empty table; the slowdown as the table grows.
VISITOR_INDEX = "click_flow_id_day_visitor_created_at"
MODEL_VISITOR_INDEX = "click_flow_id_visitor_created_at"
# The columns reports page along, each with the model's index (flow_id, <column>, created_at).
REPORT_INDEXED = ("external_id", "ip")
# A block-range index of the clicks' times: a few kB a month that say which 128-page ranges of a
# partition hold which times. Clicks are written in the order of their time, so the clicks of an
# hour or a day lie in a few ranges, and the rollups' reads of a period over every flow
# (``reports.rollups.compute``) read those alone: the partition key is the click id, so a period
# named by ``created_at`` prunes no partition, and without this index each of those reads went
# through a whole other index or the whole table (a day over every flow at 1.8 M clicks:
# 135 ms of three processes' parallel scan, against 30 ms by this index: the scan grows with
# the table, the day's ranges do not; the 30-day roll-up of 1 M clicks 232-245 s -> 104-106 s,
# README). Ranges written since the last VACUUM are not
# summarized yet and are read whole; ``summarize_new_ranges`` summarizes them, on a server
# without autovacuum (whose ``autosummarize`` does it otherwise).
TIME_INDEX = "click_created_at_brin"
TIME_INDEX_SQL = (
    'CREATE INDEX IF NOT EXISTS "%s" ON click USING brin (created_at) WITH (autosummarize = on)' % TIME_INDEX
)
MONTHS_AHEAD = 3  # partitions kept ready past the current month
# How many distinct values ANALYZE takes each partition's visitor and address columns to hold,
# whatever its sample shows (a negative n_distinct: a share of the rows). The click INSERT's
# generic plan (db.Prepared) takes its EXISTS probe's index by the share of a flow's clicks that
# one visitor and one address are thought to have. A month analyzed while it held a buyer's test
# clicks, all of one address, says one address holds all of them: the plan read every click of
# the unique window by the primary key, for each click (6.8 ms a click at 20,000 clicks, where
# the address index reads none; tests/operations/test_partitions.py). Real traffic has about a
# visitor a click. Half of the rows, not less: the probe's primary-key range of the unique window
# (both ends named, for pruning) is taken for 0.5 % of the rows by a generic plan, and with a tenth
# (ten clicks an address) that range won the plan at 3,000 clicks of distinct addresses, reading
# them all; with a half the address index won at 200 to 20,000 clicks, of one address or each its own.
DISTINCT = (("visitor", -0.5), ("ip", -0.5))
DEFAULT = "click_default"
NAME = re.compile(r"^click_p(\d{4})_(\d{2})$")
EPOCH = datetime.datetime(1970, 1, 1)


def id_prefix(moment):
    """The 9 base-36 digits that begin the ids of clicks made at ``moment`` (naive UTC)."""
    number = int((moment - EPOCH).total_seconds() * 1000)
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 36)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def month_start(moment):
    return datetime.datetime(moment.year, moment.month, 1)


def next_month(start):
    return datetime.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)


def partition_name(start):
    return "click_p%04d_%02d" % (start.year, start.month)


def bounds(start):
    """The click ids of the month beginning at ``start``: ``(from, to)``, to excluded."""
    return id_prefix(start), id_prefix(next_month(start))


def is_partitioned():
    """True when the click table is a partitioned table (PostgreSQL after step 8)."""
    if not is_postgres():
        return False
    row = db.execute_sql("SELECT relkind FROM pg_class WHERE oid = 'click'::regclass").fetchone()
    return row is not None and row[0] == "p"


def month_partitions():
    """``{month start: partition name}`` of the click table's monthly partitions."""
    rows = db.execute_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'click'::regclass"
    ).fetchall()
    months = {}
    for (name,) in rows:
        match = NAME.match(name)
        if match:
            months[datetime.datetime(int(match.group(1)), int(match.group(2)), 1)] = name
    return months


def set_aside(table, suffix):
    """Rename ``table`` and each of its indexes (its primary key's, and so the key, too) with
    ``suffix`` appended, making way for a new table of the name; returns the definitions
    (``CREATE INDEX …``) of its indexes but the primary key's, as they read before."""
    indexes = db.execute_sql(
        "SELECT indexrelid::regclass::text, indisprimary, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = to_regclass(%s)",
        (table,),
    ).fetchall()
    db.execute_sql("ALTER TABLE %s RENAME TO %s%s" % (table, table, suffix))
    for name, _, _ in indexes:
        db.execute_sql('ALTER INDEX "%s" RENAME TO "%s%s"' % (name, name, suffix))
    return [definition for _, primary, definition in indexes if not primary]


def partition_table(now):
    """Step 8 on PostgreSQL: the click table, rows and all, becomes one partitioned by month
    (``click_id COLLATE "C"``), with a partition for each month its clicks' ids name, the
    months until ``MONTHS_AHEAD`` past ``now``, and the default one. Run in the upgrade's
    transaction: the copy of a large table takes its time, and nothing is half done."""
    set_aside("click", "_unpartitioned")
    columns = db.execute_sql(
        """SELECT string_agg(
                format('%%I %%s', a.attname, format_type(a.atttypid, a.atttypmod))
                || CASE WHEN a.attname = 'click_id' THEN ' COLLATE "C"' ELSE '' END
                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''),
                ', ' ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = 'click_unpartitioned'::regclass AND a.attnum > 0 AND NOT a.attisdropped"""
    ).fetchone()[0]
    db.execute_sql("CREATE TABLE click (%s) PARTITION BY RANGE (click_id)" % columns)
    db.execute_sql("ALTER TABLE click ADD CONSTRAINT click_pkey PRIMARY KEY (click_id)")
    db.execute_sql(
        "ALTER TABLE click ADD CONSTRAINT click_flow_id_fkey FOREIGN KEY (flow_id) "
        "REFERENCES flow (id) ON DELETE CASCADE"
    )
    db.execute_sql('CREATE INDEX "click_flow_id_created_at" ON click (flow_id, created_at)')
    db.execute_sql(
        "CREATE INDEX \"%s\" ON click (flow_id, date_trunc('day', created_at), visitor, created_at)"
        % VISITOR_INDEX
    )
    for column in REPORT_INDEXED:
        db.execute_sql(
            'CREATE INDEX IF NOT EXISTS "click_flow_id_%s_created_at" ON click (flow_id, %s, created_at)'
            % (column, column)
        )
    db.execute_sql(TIME_INDEX_SQL)
    db.execute_sql("CREATE TABLE %s PARTITION OF click DEFAULT" % DEFAULT)
    set_distinct(DEFAULT)
    low, high = db.execute_sql(
        "SELECT min(click_id), max(click_id) FROM click_unpartitioned WHERE click_id ~ '^[0-9a-z]{25}$'"
    ).fetchone()
    first = month_start(now)
    for text in (low, high):
        moment = time_of(text)
        if moment is not None:
            first = min(first, month_start(moment))
    ensure_months(first, now)
    db.execute_sql("INSERT INTO click SELECT * FROM click_unpartitioned")
    for table, constraint in db.execute_sql(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE confrelid = 'click_unpartitioned'::regclass AND contype = 'f'"
    ).fetchall():
        db.execute_sql('ALTER TABLE %s DROP CONSTRAINT "%s"' % (table, constraint))
    db.execute_sql("DROP TABLE click_unpartitioned")
    db.execute_sql("ANALYZE click")


def summarize_new_ranges():
    """Summarize the page ranges of every partition's ``TIME_INDEX`` written since (what a
    VACUUM or autovacuum's ``autosummarize`` would do); returns how many ranges were."""
    rows = db.execute_sql(
        "SELECT brin_summarize_new_values(inhrelid::regclass) FROM pg_inherits "
        "WHERE inhparent = to_regclass(%s)",
        ('"%s"' % TIME_INDEX,),
    )
    return sum(count for (count,) in rows)


def set_distinct(name):
    """Give partition ``name`` the ``DISTINCT`` figures (its next ANALYZE takes them)."""
    db.execute_sql(
        "ALTER TABLE %s %s"
        % (name, ", ".join("ALTER COLUMN %s SET (n_distinct = %s)" % pair for pair in DISTINCT))
    )


def new_partition_table(name):
    """A table to attach as a partition of ``click``: its columns and defaults, and the
    ``DISTINCT`` figures."""
    db.execute_sql("CREATE TABLE %s (LIKE click INCLUDING DEFAULTS)" % name)
    set_distinct(name)


def time_of(click_id):
    """The creation time a click id names (naive UTC), or None when it names none we make."""
    if not click_id or len(click_id) < 9:
        return None
    try:
        ms = int(click_id[:9], 36)
    except ValueError:
        return None
    moment = EPOCH + datetime.timedelta(milliseconds=ms)
    return moment if 2000 <= moment.year < 2200 else None


def ensure_months(first, now, ahead=MONTHS_AHEAD):
    """Create the missing monthly partitions from the month of ``first`` to ``ahead`` months
    past ``now``'s; clicks already in the default partition that belong to a new month move
    into it. Returns the names created."""
    created = []
    existing = month_partitions()
    start, last = month_start(first), month_start(now)
    for _ in range(ahead):
        last = next_month(last)
    while start <= last:
        if start not in existing:
            create_month(start)
            created.append(partition_name(start))
        start = next_month(start)
    return created


def create_month(start):
    """The partition of one month; rows of its range in the default partition move into it
    (PostgreSQL refuses to attach a range the default partition holds rows of)."""
    name, (low, high) = partition_name(start), bounds(start)
    with db.atomic():
        new_partition_table(name)
        moved = db.execute_sql(
            "WITH moved AS (DELETE FROM %s WHERE click_id >= %%s AND click_id < %%s RETURNING *) "
            "INSERT INTO %s SELECT * FROM moved" % (DEFAULT, name),
            (low, high),
        ).rowcount
        db.execute_sql(
            "ALTER TABLE click ATTACH PARTITION %s FOR VALUES FROM (%%s) TO (%%s)" % name, (low, high)
        )
    if moved:
        logger.info("partition %s created; %d clicks moved into it from %s", name, moved, DEFAULT)


def keep_months_ahead(now=None):
    """The worker's daily care: the coming months' partitions exist before their clicks come."""
    if not is_partitioned():
        return []
    now = now or datetime.datetime.utcnow()
    return ensure_months(now, now)


def drop_old_months(cutoff, lock_timeout_ms=2000):
    """Drop every month that ends before ``cutoff``, keeping its clicks that have a conversion
    or a lead profile (see the module's docstring). Returns ``{"clicks": n, "deliveries": n,
    "delivery attempts": n, "partitions": n}``, what went."""
    counts = {"clicks": 0, "deliveries": 0, "delivery attempts": 0, "partitions": 0}
    if not is_partitioned():
        return counts
    for start, name in sorted(month_partitions().items()):
        if next_month(start) > cutoff:
            continue
        for key, value in drop_month(start, name, lock_timeout_ms).items():
            counts[key] += value
    return counts


def drop_month(start, name, lock_timeout_ms):
    """Swap one month for a table of its clicks that stay; return what went."""
    low, high = bounds(start)
    kept = name + "_kept"
    in_range = "click_id >= %s AND click_id < %s"
    with db.atomic():
        # Lock waits are cut short: a detach waiting behind a long report would hold up clicks.
        db.execute_sql("SET LOCAL lock_timeout = %d" % lock_timeout_ms)
        db.execute_sql("LOCK TABLE conversion, lead_profile IN SHARE ROW EXCLUSIVE MODE")
        new_partition_table(kept)
        staying = "SELECT click_id FROM conversion WHERE %s UNION SELECT click_id FROM lead_profile WHERE %s"
        staying %= (in_range, in_range)
        db.execute_sql(
            "INSERT INTO %s SELECT * FROM %s WHERE click_id IN (%s)" % (kept, name, staying),
            (low, high, low, high),
        )
        gone = "d.click_id >= %s AND d.click_id < %s AND NOT EXISTS "
        gone += "(SELECT 1 FROM {kept} k WHERE k.click_id = d.click_id)".format(kept=kept)
        attempts = db.execute_sql(
            "DELETE FROM delivery_attempt WHERE delivery_id IN (SELECT d.id FROM delivery d WHERE %s)" % gone,
            (low, high),
        ).rowcount
        deliveries = db.execute_sql("DELETE FROM delivery d WHERE %s" % gone, (low, high)).rowcount
        total = db.execute_sql("SELECT count(*) FROM %s" % name).fetchone()[0]
        stay = db.execute_sql("SELECT count(*) FROM %s" % kept).fetchone()[0]
        db.execute_sql("ALTER TABLE click DETACH PARTITION %s" % name)
        db.execute_sql(
            "ALTER TABLE click ATTACH PARTITION %s FOR VALUES FROM (%%s) TO (%%s)" % kept, (low, high)
        )
        db.execute_sql("DROP TABLE %s" % name)
        db.execute_sql("ALTER TABLE %s RENAME TO %s" % (kept, name))
    logger.info(
        "retention: month %s dropped whole: %d clicks gone, %d with conversions kept",
        name,
        total - stay,
        stay,
    )
    return {"clicks": total - stay, "deliveries": deliveries, "delivery attempts": attempts, "partitions": 1}
