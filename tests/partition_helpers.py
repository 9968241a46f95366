"""PostgreSQL: the plans of the click INSERT over the click partitions, for the tests of
partitions and of the schema steps that tune them."""

import datetime
import os
import time

from tracker.db import db
from tracker.models import Click
from tracker.operations import partitions

from factories import add_flow


def flush_statistics():
    """This session's row counts into the server's statistics, as an idle session's go (a
    backend sends them at most once a second)."""
    db.execute_sql("SELECT pg_stat_force_next_flush()")
    db.execute_sql("SELECT 1")


def without_older_snapshots(timeout=10.0):
    """Wait until no other session of this database holds a snapshot (``backend_xmin``): a
    VACUUM marks a page all-visible only when its rows are visible to every snapshot, and a
    test's process may still be closing another test's connections (a scheduler's, a server's).
    Returns what was still there at the timeout (empty when none)."""
    deadline = time.monotonic() + timeout
    while True:
        holders = db.execute_sql(
            "SELECT pid, state, backend_xmin::text, left(query, 80) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
        ).fetchall()
        if not holders or time.monotonic() > deadline:
            return holders
        time.sleep(0.1)


def click_at(flow, when, **fields):
    """A click whose id names ``when``, as the click path makes them."""
    click_id = partitions.id_prefix(when) + os.urandom(8).hex()[:16]
    return Click.create(click_id=click_id, flow=flow, created_at=when, **fields)


def rows_read(plan):
    """The click rows a JSON plan's scans of the click partitions read (kept or filtered out)."""
    read = 0
    if str(plan.get("Relation Name", "")).startswith("click_"):
        read += plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
    return read + sum(rows_read(child) for child in plan.get("Plans", []))


def month_of_one_address(count=3000):
    """A flow whose month was analyzed holding ``count`` clicks of the last hour all of one address
    and visitor (a buyer trying the link): ``(flow, a click, now)``."""
    flow = add_flow()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    # its clicks all in one month, whatever the hour: in the first of a month the seed's hour
    # was in the month before, left out of the month analyzed (3,000 read, not 3,001)
    now = max(now, partitions.month_start(now) + datetime.timedelta(hours=2))
    seed = click_at(flow, now - datetime.timedelta(hours=1), visitor="buyer", ip="10.9.9.9")
    copies_of(seed, count, now - datetime.timedelta(minutes=30))
    db.execute_sql(
        "UPDATE click SET ip = %s, visitor = %s WHERE flow_id = %s", ("10.9.9.9", "buyer", flow.id)
    )
    db.execute_sql("ANALYZE %s" % partitions.partition_name(partitions.month_start(now)))
    return flow, seed, now


def generic_plan_rows(flow, seed, now):
    """The click rows a new visitor's click INSERT reads under its generic plan."""
    with db.atomic() as transaction:
        db.execute_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        plan = explain_click_insert(new_click(flow, seed, now))
        transaction.rollback()
    return rows_read(plan), plan


def new_click(flow, seed, now, n=0):
    """A new click made ``now`` on ``flow``, of its own address and visitor (the ``n``-th)."""
    click_id = partitions.id_prefix(now) + "%016d" % n
    new = Click(click_id=click_id, flow=flow, created_at=now, ip="10.1.2.%d" % n, visitor="new%d" % n)
    for name in ("params", "cookies", "cut"):
        setattr(new, name, getattr(seed, name))
    return new


def scans(plan, node_type=None):
    """The tables (click or rollup partitions) a JSON plan reads with ``node_type`` (any scan
    when None)."""
    kind = plan.get("Node Type", "")
    wanted = kind == node_type if node_type else kind.endswith("Scan")
    found = [plan["Relation Name"]] if wanted and "Relation Name" in plan else []
    return found + [name for child in plan.get("Plans", []) for name in scans(child, node_type)]


def explain(prefix, sql, params):
    """The plan of ``sql`` (EXPLAIN ANALYZE, as JSON), in the caller's transaction, after the
    SETs the tracker sends with it (``prefix``)."""
    db.execute_sql(prefix)
    return db.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]


def explain_prepared(prepared, values):
    """``explain`` for a ``db.Prepared`` run with ``values``, as the tracker sends it (without
    its prefix when the connection served clicks and keeps the prefix's settings: db.CLICK_SESSION)."""
    sql, params = prepared._statement(values)
    prefix = prepared.postgres_prefix
    if sql.startswith(prefix):
        sql = sql[len(prefix) :]
    assert sql.startswith("EXECUTE "), sql[:200]
    return explain(prefix, sql, params)


def explain_click_insert(click):
    """``explain_prepared`` for the click INSERT of ``click``."""
    from tracker.clickin import record

    return explain_prepared(record.INSERT_CLICK, record.click_values(click))


def copies_of(seed, count, at, every=None, flows=(), first=1):
    """``count`` copies of the click ``seed`` made at ``at``, each of its own address and visitor,
    their ids numbered from ``first``. With ``every`` (a timedelta), made one after the other that
    far apart from ``at`` on (the ``first``-th at ``at + first * every``) and written in that order,
    as clicks are; with ``flows``, on each of them in turn."""
    values = {
        "click_id": "%(prefix)s || lpad(g::text, 16, '0')",
        "ip": "'10.0.' || (g / 250) || '.' || mod(g, 250)",
        "visitor": "left(md5(g::text), 16)",
    }
    if flows:
        values["flow_id"] = "(%(flows)s::integer[])[1 + mod(g, %(flow_count)s)]"
    if every is not None:
        values["created_at"] = "%(at)s + g * %(every)s"
    copied = [f.column_name for f in Click._meta.sorted_fields if f.column_name not in values]
    db.execute_sql(
        "INSERT INTO click ({0}, {1}) SELECT {2}, {1} FROM click, generate_series(%(first)s, %(last)s) AS g "
        "WHERE click_id = %(seed)s ORDER BY g".format(
            ", ".join(values), ", ".join(copied), ", ".join(values.values())
        ),
        {
            "prefix": partitions.id_prefix(at),
            "flows": [flow.id for flow in flows],
            "flow_count": len(flows),
            "at": at,
            "every": every,
            "first": first,
            "last": first + count - 1,
            "seed": seed.click_id,
        },
    )
