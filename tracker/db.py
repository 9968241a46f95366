"""Database setup: one ``DatabaseProxy`` bound to SQLite or PostgreSQL from a URL."""

import logging
import os
import sqlite3
import threading
import weakref
from urllib.parse import urlparse

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase, Value
from playhouse.db_url import connect as connect_url

logger = logging.getLogger(__name__)

db = DatabaseProxy()
_bound_url = None

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 1,  # NORMAL: survives a crashed process, not a power cut
    "busy_timeout": 5000,
    "foreign_keys": 1,
    "cache_size": -16000,
    # Checkpoint at ~40 MB of WAL instead of 4 MB. With two workers writing, the WAL is
    # seldom reset right after a checkpoint, and SQLite then checkpoints (two fsyncs) on
    # nearly every commit past the threshold: measured, +10% clicks/s under wrk.
    "wal_autocheckpoint": 10000,
}


def make_database(url):
    """Build (not connect) the peewee database for ``sqlite:///…`` or ``postgresql://…``."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # IMMEDIATE: a write transaction takes the write lock at BEGIN, so it waits
        # on the busy timeout instead of failing at once with "database is locked".
        return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=5, lock_type="IMMEDIATE")
    if scheme in ("postgres", "postgresql"):
        # A pool: closing at the end of a request hands the connection back.
        url = "postgresql+pool://" + url.split("://", 1)[1]
        return connect_url(url, max_connections=32, stale_timeout=300)
    raise ValueError("unsupported database URL %r (use sqlite:/// or postgresql://)" % url)


def init_db(url):
    """Point the shared proxy at the database named by ``url`` and return it."""
    global _bound_url
    if _bound_url != url or db.obj is None:
        if db.obj is not None and not db.obj.is_closed():
            db.obj.close()
        db.initialize(make_database(url))
        _bound_url = url
    return db


def is_postgres():
    """True when the proxy is bound to PostgreSQL."""
    return isinstance(db.obj, PostgresqlDatabase)


class Prepared:
    """A query whose SQL text peewee generates once per database engine, then only re-run.

    Generating the SQL of the 50-column click INSERT costs peewee about 1 ms, several times
    what SQLite takes to run it; a hot path builds its query once with ``build(slot)``,
    ``slot(name)`` standing wherever a parameter goes, and then runs it with
    ``execute(values)``, ``values`` mapping each name to its value in database form
    (``field.db_value(...)``).
    """

    def __init__(self, build):
        self.build = build
        self._compiled = {}  # database class -> (sql, parameter names in order)

    def execute(self, values):
        """Run the query with ``values`` and return the cursor."""
        compiled = self._compiled.get(type(db.obj))
        if compiled is None:
            query = self.build(_slot)
            compiled = self._compiled[type(db.obj)] = db.obj.get_sql_context().sql(query).query()
        sql, names = compiled
        return db.execute_sql(sql, [values[name] for name in names])


def _slot(name):
    # A parameter that peewee renders as a placeholder and reports, unconverted, by name.
    return Value(name, unpack=False)


def has_returning():
    """True when the bound engine has INSERT … RETURNING: PostgreSQL, SQLite from 3.35."""
    return is_postgres() or sqlite3.sqlite_version_info >= (3, 35, 0)


def open_connection():
    """Open this thread's connection unless it is open (before each request)."""
    db.connect(reuse_if_open=True)


def release_connection():
    """After each request: SQLite connections stay open per thread (opening one costs its
    pragmas); PostgreSQL ones go back to the pool."""
    if is_postgres() and not db.is_closed():
        db.close()


# Connections whose lock waits are cut short for the click path (see click_timeouts):
# PostgreSQL's, which the pool hands from thread to thread, in a weak set; SQLite's, one per
# thread (they can't be weakly referenced), on the thread.
_click_timed = weakref.WeakSet()
_thread = threading.local()
BUSY_TIMEOUT_MS = SQLITE_PRAGMAS["busy_timeout"]


def _is_click_timed(connection):
    if is_postgres():
        return connection in _click_timed
    return getattr(_thread, "click_timed", None) is connection


def click_timeouts(busy_ms):
    """Make this thread's connection give up on a lock after ``busy_ms`` (SQLite's busy
    timeout; PostgreSQL's ``lock_timeout``, and a ``statement_timeout`` of that plus 2 s), so a
    click that the database cannot take at once goes to the spool instead of waiting (DESIGN
    §4.8): a visitor never waits seconds, and gunicorn never kills a worker mid-click.

    Set once per connection and kept while it serves clicks (a set-per-click would cost a round
    trip on PostgreSQL); ``default_timeouts`` puts the usual ones back for any other request."""
    connection = db.connection()
    if _is_click_timed(connection):
        return
    if is_postgres():
        db.execute_sql("SET lock_timeout = %d; SET statement_timeout = %d" % (busy_ms, busy_ms + 2000))
        _click_timed.add(connection)
    else:
        connection.execute("PRAGMA busy_timeout = %d" % busy_ms)
        _thread.click_timed = connection


def default_timeouts():
    """Undo ``click_timeouts`` on this thread's connection, if it has them."""
    if db.is_closed():
        return
    connection = db.connection()
    if not _is_click_timed(connection):
        return
    if is_postgres():
        db.execute_sql("RESET lock_timeout; RESET statement_timeout")
        _click_timed.discard(connection)
    else:
        connection.execute("PRAGMA busy_timeout = %d" % BUSY_TIMEOUT_MS)
        _thread.click_timed = None


def init_app(app):
    """Bind the database for this app and open/close a connection around each request."""
    init_db(app.config["TRACKER_DATABASE_URL"])

    @app.before_request
    def _connect():
        open_connection()
        default_timeouts()

    @app.teardown_request
    def _close(exc):
        release_connection()


def keyset_page(query, key_field, cursor=None, limit=50):
    """One page of ``query``, newest first by ``key_field``, after ``cursor`` (a key value).

    Returns ``(rows, next_cursor)``; ``next_cursor`` is None on the last page.
    """
    if cursor is not None:
        query = query.where(key_field < cursor)
    rows = list(query.order_by(key_field.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (getattr(rows[-1], key_field.name) if more else None)
