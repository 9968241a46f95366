"""What our code sends to the database, and how SQLite plans it."""

import logging

from tracker.db import db


class Statements(logging.Handler):
    """The ``(sql, params)`` peewee sends while attached to its logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.sent = []

    def emit(self, record):
        self.sent.append(record.msg)


def statements_of(call):
    """``call()``, and the statements it sent."""
    logger = logging.getLogger("peewee")
    handler, level = Statements(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        call()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return handler.sent


def sqlite_plan(sql, params):
    """The steps of SQLite's EXPLAIN QUERY PLAN of a statement."""
    return [row[3] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]


def combo_plans(call):
    """SQLite's plans of the reads of the combination rows (their GROUP BY) ``call()`` sends."""
    sent = statements_of(call)
    return [sqlite_plan(sql, params) for sql, params in sent if "rollup_combo" in sql and "GROUP BY" in sql]


def table_rows(plan):
    """The rows a PostgreSQL JSON plan read from a table: by scanning it or by an index, or from
    an index-only scan's fetches (the pages not marked all-visible)."""
    node = plan.get("Node Type")
    own = 0
    if node in ("Seq Scan", "Index Scan", "Bitmap Heap Scan"):
        own = plan["Actual Rows"]
    elif node == "Index Only Scan":
        own = plan["Heap Fetches"]
    return own + sum(table_rows(child) for child in plan.get("Plans", []))


def combo_index_only_plan():
    """PostgreSQL's plan (EXPLAIN ANALYZE, JSON) of a country,os,sub1 read of the combination
    rollup as reports make it at millions of rows: an index-only scan of its index in drill-down
    order (the other reads ruled out: the tests' few rows would be scanned)."""
    with db.atomic() as transaction:
        for scan in ("seqscan", "bitmapscan", "indexscan"):
            db.execute_sql("SET LOCAL enable_%s TO off" % scan)
        plan = db.execute_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT country, os, sub1, SUM(clicks) FROM rollup_combo "
            "WHERE kind = 'sub1' GROUP BY country, os, sub1"
        ).fetchone()[0][0]["Plan"]
        transaction.rollback()
    return plan
