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
