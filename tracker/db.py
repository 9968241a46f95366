"""Database setup: one ``DatabaseProxy`` bound to SQLite or PostgreSQL from a URL."""

import datetime
import itertools
import logging
import os
import re
import sqlite3
import threading
import time
import weakref
from urllib.parse import urlparse

from peewee import (
    CharField,
    DatabaseProxy,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
    Value,
)
from playhouse.db_url import parse as parse_url
from playhouse.pool import PooledPostgresqlDatabase

logger = logging.getLogger(__name__)

db = DatabaseProxy()
_bound_url = None

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 1,  # NORMAL: survives a crashed process, not a power cut
    "foreign_keys": 1,
    "cache_size": -16000,
    # Checkpoint at ~40 MB of WAL instead of 4 MB. With two workers writing, the WAL is
    # seldom reset right after a checkpoint, and SQLite then checkpoints (two fsyncs) on
    # nearly every commit past the threshold: measured, +10% clicks/s under wrk.
    "wal_autocheckpoint": 10000,
    # No busy handler: Sqlite waits for the write lock itself. Last, so that the pragmas
    # before it wait on the connection's own timeout (SQLITE_CONNECT_TIMEOUT).
    "busy_timeout": 0,
}
SQLITE_CONNECT_TIMEOUT = 5  # seconds
BUSY_TIMEOUT_MS = 5000  # how long a statement waits for SQLite's write lock (click_timeouts: less)


def make_database(url):
    """Build (not connect) the peewee database for ``sqlite:///…`` or ``postgresql://…``."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # IMMEDIATE: a write transaction takes the write lock at BEGIN, so it waits there
        # (Sqlite.begin) instead of failing later with "database is locked".
        return Sqlite(path, pragmas=SQLITE_PRAGMAS, timeout=SQLITE_CONNECT_TIMEOUT, lock_type="IMMEDIATE")
    if scheme in ("postgres", "postgresql"):
        # A pool: closing at the end of a request hands the connection back.
        settings = parse_url(url)
        # No JIT compiling: the server compiles a query it estimates as costly (a report over
        # the raw clicks, at 10 M clicks) before running it, and that took longer than the
        # query: a 30-day sub1 report of one flow's US clicks, 2.3 s with it, 1.4 s without
        # (its first run 15 s). Nothing the tracker asks runs long enough to win it back.
        settings["options"] = ("%s -c jit=off" % settings.get("options", "")).strip()
        return Pool(**settings, max_connections=32, stale_timeout=300)
    raise ValueError("unsupported database URL %r (use sqlite:/// or postgresql://)" % url)


class Sqlite(SqliteDatabase):
    """SQLite that waits for the write lock itself, not with SQLite's busy handler.

    The busy handler sleeps 1 ms at its first wait, then 2, 5, 10 ms: with two workers writing,
    one finds the other's write lock (held about 0.1 ms by a click, 0.5 ms by a conversion)
    often and sleeps many times longer than it is held, its core idle meanwhile (``/postback``
    under wrk: 661 req/s with it, 847 without, medians of 3 runs). Connections have no busy
    timeout; what meets the lock, a transaction's ``BEGIN IMMEDIATE`` or a statement outside a
    transaction, is tried again every ``LOCK_RETRY_SECONDS`` (``LOCK_RETRY_SLOW`` once the wait
    passed ``LOCK_FAST_WAIT``) until the thread's lock wait has passed: ``BUSY_TIMEOUT_MS``, or
    the click path's ``TRACKER_CLICK_BUSY_MS`` (``click_timeouts``). Then it raises "database is
    locked", as the busy handler would. A statement inside a transaction never waits: its BEGIN
    IMMEDIATE took the lock. What failed on the lock wrote nothing, so trying again is safe."""

    def begin(self, lock_type=None):
        return when_unlocked(lambda: SqliteDatabase.begin(self, lock_type))

    def execute_sql(self, sql, params=None):
        if self._state.transactions:
            return SqliteDatabase.execute_sql(self, sql, params)
        return when_unlocked(lambda: SqliteDatabase.execute_sql(self, sql, params))


LOCK_RETRY_SECONDS = 0.00005
LOCK_FAST_WAIT = 0.02
LOCK_RETRY_SLOW = 0.001


def when_unlocked(call):
    """``call()``, tried again while it fails on SQLite's write lock (see ``Sqlite``)."""
    try:
        return call()
    except OperationalError as exc:
        if "locked" not in str(exc):
            raise
    start = time.monotonic()
    deadline = start + lock_wait_ms() / 1000
    while True:
        now = time.monotonic()
        time.sleep(LOCK_RETRY_SECONDS if now - start < LOCK_FAST_WAIT else LOCK_RETRY_SLOW)
        try:
            return call()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise


class Pool(PooledPostgresqlDatabase):
    """peewee's PostgreSQL pool, minus a round trip per request: the pool sends ``SELECT 1``
    on every checkout to find dead connections (a click then cost two round trips, not one).
    A connection handed back less than ``PING_AFTER`` seconds ago, idle and not closed, is
    taken as it is; one idle longer is still checked."""

    PING_AFTER = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._returned = {}  # id(connection) -> when it was handed back (monotonic)

    def _is_closed(self, conn):
        returned = self._returned.get(id(conn))
        if (
            returned is not None
            and time.monotonic() - returned < self.PING_AFTER
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        self._returned[id(conn)] = time.monotonic()
        return super()._close(conn, close_conn)

    # Fewer round trips in a transaction: its BEGIN goes with its first statement, and the
    # statements whose answer nobody reads (``defer``) with the next one or with the COMMIT,
    # in one text: each was a round trip of its own.

    def begin(self, isolation_level=None):
        self.connection()  # opens it now, as peewee's BEGIN would: opening empties the state
        self._state.unsent = []  # what a transaction cut short by a lost connection left
        if isolation_level or self._isolation_level:
            return super().begin(isolation_level)
        self._state.unsent = ["BEGIN"]

    def defer(self, sql, params):
        """Send ``sql`` with the transaction's next statement or its COMMIT (its errors are
        raised there, and the transaction rolled back); at once outside a transaction."""
        if not self._state.transactions:
            return self.execute_sql(sql, params)
        self._state.unsent = [*self._unsent(), self.cursor().mogrify(sql, params).decode()]

    def _unsent(self):
        return getattr(self._state, "unsent", None) or []

    def _send_with_unsent(self, sql, params=None):
        now = self.cursor().mogrify(sql, params or ()).decode()  # as peewee sends it: %% is %
        text, self._state.unsent = "; ".join([*self._unsent(), now]), []
        # one text with no parameters: psycopg2 still reads %% in it as %
        return super().execute_sql(text.replace("%", "%%"), ())

    def execute_sql(self, sql, params=None):
        if self._unsent():
            if self._state.transactions:
                return self._send_with_unsent(sql, params)
            self._state.unsent = []  # left by a transaction that never ended
        return super().execute_sql(sql, params)

    def commit(self):  # peewee calls it once the transaction is off its stack
        unsent = self._unsent()
        if unsent == ["BEGIN"]:  # the transaction sent nothing: nothing to commit
            self._state.unsent = []
        elif unsent:
            self._send_with_unsent("COMMIT")
        else:
            super().commit()

    def rollback(self):
        unsent, self._state.unsent = self._unsent(), []
        if unsent[:1] != ["BEGIN"]:
            super().rollback()


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


# A write whose commit does not wait for PostgreSQL's WAL flush (synchronous_commit off for
# that one transaction): a crash of the database's machine may lose the last fraction of a
# second of them, never corrupt anything; a crash of the tracker loses none. That is SQLite's
# synchronous=NORMAL above, and clicks use it on both engines: waiting for the flush (5.6 ms
# measured on this machine's shared disk) bounded PostgreSQL to 2 workers / 5.6 ms = 357 clicks/s.
# Conversions, money an advertiser will not resend, keep waiting for it.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off; "

# A statement planned to take an index wherever one serves (sequential scans off for the rest of
# its transaction). A prepared statement's generic plan is made once per connection and kept for
# the connection's life, unless an ANALYZE of its tables replans it: made while a partition was
# empty (a new month, a new database), it scans that partition, and goes on scanning it as it
# fills. Autovacuum analyzes a growing table within about a minute; on a server without it (this
# machine's, CI's) never. Measured on a month analyzed empty: the click INSERT's EXISTS read every
# click of the month for each click (0.3 ms of server CPU a click at the first 3,000 clicks, 2.8 ms
# at 18,000); with this, 0.08 ms, flat. The hot path's statements that find clicks (the click
# INSERT, a postback's click) send it first; a point lookup never wants a scan.
INDEXED = "SET LOCAL enable_seqscan TO off; "

# What a connection serving clicks keeps for the session (click_timeouts) until another request
# takes it (default_timeouts): a statement whose prefix it covers is sent without it (the two
# SETs cost the server about 30 µs a click, parsed and undone at each commit).
CLICK_SESSION = ASYNC_COMMIT + INDEXED


class Prepared:
    """A query whose SQL text peewee generates once per database engine, then only re-run.

    Generating the SQL of the 50-column click INSERT costs peewee about 1 ms, several times
    what SQLite takes to run it; a hot path builds its query once with ``build(slot)``,
    ``slot(name)`` standing wherever a parameter goes, and then runs it with
    ``execute(values)``, ``values`` mapping each name to its value in database form
    (``field.db_value(...)``). ``postgres_prefix``: statements sent before it on PostgreSQL, in
    the same round trip (and, in autocommit, the same implicit transaction): ``ASYNC_COMMIT``.

    On PostgreSQL it is also a prepared statement of the server (``PREPARE`` once per
    connection, then ``EXECUTE``): planning the click INSERT over the monthly partitions cost
    the server more than running it (0.35 ms against 0.14 ms, EXPLAIN ANALYZE at 1 M clicks);
    measured under load, 1.53 -> 0.94 ms a click INSERT (medians of 8 interleaved runs of 300).
    """

    _names = itertools.count(1)

    def __init__(self, build, postgres_prefix=""):
        self.build = build
        self.postgres_prefix = postgres_prefix
        self.name = "tracker_%d" % next(self._names)
        self._compiled = {}  # database class -> (sql, parameter names in order)

    def execute(self, values):
        """Run the query with ``values`` and return the cursor."""
        return db.execute_sql(*self._statement(values))

    def execute_many(self, rows):
        """Run the query for each of ``rows`` (values as ``execute`` takes them), one after the
        other, inside the caller's transaction: ``executemany``, one compiled statement on
        SQLite. (On PostgreSQL that is a round trip a row; the write-behind there writes a batch
        with one statement instead, ``clickin.record.insert_batch``.)"""
        statements = [self._statement(values) for values in rows]
        if not statements:
            return
        if is_postgres():  # each statement its own text (values written in, see _statement)
            for sql, params in statements:
                db.execute_sql(sql, params).close()
        else:
            db.cursor().executemany(statements[0][0], [params for _, params in statements])

    def defer(self, values):
        """Run the query with ``values`` when the transaction next sends something (``Pool.defer``;
        at once on SQLite, where a statement costs no round trip)."""
        sql, params = self._statement(values)
        if is_postgres():
            db.obj.defer(sql, params)
        else:
            db.execute_sql(sql, params).close()

    def _statement(self, values):
        compiled = self._compiled.get(type(db.obj))
        if compiled is None:
            query = self.build(_slot)
            sql, params = db.obj.get_sql_context().sql(query).query()
            prepare = None
            if is_postgres():
                numbers = itertools.count(1)
                prepare = "PREPARE %s AS %s" % (
                    self.name,
                    _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else "$%d" % next(numbers), sql),
                )
                sql = self.postgres_prefix + "EXECUTE " + self.name
            # A slot's place takes its value; any other parameter is a constant of the query.
            compiled = (sql, [(p, type(p) is _Name) for p in params], prepare)
            self._compiled[type(db.obj)] = compiled
        sql, params, prepare = compiled
        params = [values[p] if is_slot else p for p, is_slot in params]
        if prepare is None:
            return sql, params
        connection = db.connection()
        if self.postgres_prefix and self.postgres_prefix in CLICK_SESSION and _is_click_timed(connection):
            sql = sql[len(self.postgres_prefix) :]  # the session has these settings already
        done = _server_prepared.get(connection)
        if done is None:
            done = _server_prepared[connection] = set()
        if self.name not in done:
            db.execute_sql(prepare)  # kept by the session, whatever its transaction does
            done.add(self.name)
        if not params:
            return sql, ()
        return "%s(%s)" % (sql, ", ".join([_literal(value, connection) for value in params])), ()

    def first(self, values):
        """The first row the query gives for ``values`` (a tuple), or None."""
        rows = self.execute(values).fetchall()
        return rows[0] if rows else None


def _to_db(field):
    # Text columns are given str: converting them costs, and gives the same.
    return None if type(field) in (CharField, TextField) else field.db_value


def _to_python(field):
    # Text columns come back as str from both engines: converting them costs, and gives the same.
    return None if type(field) in (CharField, TextField) else field.python_value


class Rows:
    """Model instances from the rows of a ``Prepared`` select, as peewee would build them
    (each column through its field's ``python_value``), without peewee's per-row work.
    ``models``: the models whose every column the select lists, in order; ``fields``: with one
    model, the columns of it the select lists instead (the rest stay unset)."""

    def __init__(self, *models, fields=None):
        self.parts = [
            (model, [(field.name, _to_python(field)) for field in fields or model._meta.sorted_fields])
            for model in models
        ]

    def build(self, row):
        """One row → a tuple of instances, one per model."""
        built, start = [], 0
        for model, fields in self.parts:
            instance = model(__no_default__=True)
            instance.__data__ = {
                name: value if convert is None or value is None else convert(value)
                for (name, convert), value in zip(fields, row[start : start + len(fields)], strict=True)
            }
            built.append(instance)
            start += len(fields)
        return tuple(built)


class PreparedInsert:
    """The INSERT of a new ``model`` row, its SQL made once per engine (see ``Prepared``):
    ``run(instance)`` writes every column of ``instance`` (its auto id aside) and sets the id."""

    def __init__(self, model):
        meta = model._meta
        self.auto = meta.primary_key if meta.auto_increment else None
        fields = [field for field in meta.sorted_fields if field is not self.auto]
        self.to_db = [(field.name, _to_db(field)) for field in fields]

        def build(slot):
            return model.insert({field: slot(field.name) for field in fields})

        self.returning = Prepared(lambda slot: build(slot).returning(self.auto))
        self.plain = Prepared(lambda slot: build(slot).returning())

    def _values(self, instance):
        data = instance.__data__
        return {
            name: data.get(name) if to_db is None else to_db(data.get(name)) for name, to_db in self.to_db
        }

    def defer(self, instance):
        """Write ``instance`` with the transaction's next statement (``Prepared.defer``); its id
        stays unknown."""
        self.plain.defer(self._values(instance))

    def run(self, instance):
        values = self._values(instance)
        if self.auto is None:
            self.plain.execute(values).close()
        elif has_returning():
            # fetchall: SQLite ends the statement (and, in autocommit, commits) once it is read.
            setattr(instance, self.auto.name, self.returning.execute(values).fetchall()[0][0])
        else:
            setattr(instance, self.auto.name, self.plain.execute(values).lastrowid)
        return instance


_PLACEHOLDER = re.compile(r"%%|%s")
# PostgreSQL connection -> the names it has prepared (nothing that refers to the connection:
# a cursor of it there kept every connection the pool dropped alive, and open, for good)
_server_prepared = weakref.WeakKeyDictionary()


def _literal(value, connection):
    """``value`` as a literal of an ``EXECUTE``'s arguments, as psycopg2's ``mogrify`` writes it
    for ``connection``, with every ``%`` doubled: the text is sent with no parameters, as peewee
    sends it (an empty tuple), so psycopg2 reads ``%%`` as ``%``. Text without quotes,
    backslashes, NULs or percent signs, integers from 0, booleans, NULL and times without a zone
    are written here, the rest by psycopg2: quoting the 60 values of a click INSERT with
    ``mogrify`` cost 97 µs of the web worker's CPU, this 25 µs."""
    kind = type(value)
    if kind is str and "'" not in value and "\\" not in value and "\x00" not in value and "%" not in value:
        return "'" + value + "'"
    if kind is int and value >= 0:  # psycopg2 writes a space before a minus
        return str(value)
    if value is None:
        return "NULL"
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime.datetime and value.tzinfo is None:
        return "'%s'::timestamp" % value.isoformat()
    from psycopg2.extensions import encodings  # installed with the pg extra

    quoted = connection.cursor().mogrify("%s", (value,))
    return quoted.decode(encodings[connection.encoding]).replace("%", "%%")


class _Name(str):
    """A slot's name among a query's parameters."""


def _slot(name):
    # A parameter that peewee renders as a placeholder and reports, unconverted, by name.
    return Value(_Name(name), unpack=False)


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
# PostgreSQL's, which the pool hands from thread to thread, in a weak set. SQLite's are one per
# thread, and Sqlite waits for the lock as long as the thread says (``lock_wait_ms``).
_click_timed = weakref.WeakSet()
_thread = threading.local()


def lock_wait_ms():
    """How long this thread's SQLite statements wait for the write lock."""
    return getattr(_thread, "busy_ms", None) or BUSY_TIMEOUT_MS


def _is_click_timed(connection):
    if is_postgres():
        return connection in _click_timed
    return getattr(_thread, "busy_ms", None) is not None


def click_timeouts(busy_ms):
    """Make this thread's connection give up on a lock after ``busy_ms`` (the SQLite lock wait
    of ``Sqlite``; PostgreSQL's ``lock_timeout``, and a ``statement_timeout`` of that plus 2 s),
    so a click that the database cannot take at once goes to the spool instead of waiting
    (DESIGN §4.8): a visitor never waits seconds, and gunicorn never kills a worker mid-click.

    On PostgreSQL the connection also takes the click INSERT's settings for the session
    (``CLICK_SESSION``: its commits do not wait for the WAL flush, its plans take indexes).
    Set once per connection and kept while it serves clicks (a set-per-click would cost a round
    trip on PostgreSQL); ``default_timeouts`` puts the usual ones back for any other request
    (a conversion's commit waits for the flush again)."""
    connection = db.connection()
    if _is_click_timed(connection):
        return
    if is_postgres():
        db.execute_sql(
            "SET lock_timeout = %d; SET statement_timeout = %d; %s"
            % (busy_ms, busy_ms + 2000, CLICK_SESSION.replace("SET LOCAL", "SET"))
        )
        _click_timed.add(connection)
    else:
        _thread.busy_ms = busy_ms


def default_timeouts():
    """Undo ``click_timeouts`` on this thread's connection (its settings too), if it has them."""
    if db.is_closed():
        return
    connection = db.connection()
    if not _is_click_timed(connection):
        return
    if is_postgres():
        db.execute_sql(
            "RESET lock_timeout; RESET statement_timeout; RESET synchronous_commit; RESET enable_seqscan"
        )
        _click_timed.discard(connection)
    else:
        _thread.busy_ms = None


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
