"""The PostgreSQL pool checks a connection with a round trip only when it sat idle: one handed
back a moment ago is reused as it is, one idle longer that the server closed is replaced."""

import time

import psycopg2
import pytest

from tracker.db import Pool

from conftest import PG_URL, Sent

pytestmark = pytest.mark.postgres_only  # deselected on SQLite (tests/conftest.py)


def backend_pid(pool):
    return pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_just_handed_back_is_reused_without_a_ping_and_a_dead_idle_one_is_replaced(monkeypatch):
    from playhouse.db_url import parse

    pool = Pool(**parse(PG_URL), max_connections=4, stale_timeout=300)
    pings = []
    real = pool._adapter.is_connection_closed
    monkeypatch.setattr(pool._adapter, "is_connection_closed", lambda conn: pings.append(1) or real(conn))
    try:
        pool.connect()
        first = backend_pid(pool)
        pool.close()
        pool.connect()
        assert backend_pid(pool) == first
        assert pings == []  # handed back just now: no SELECT 1
        pool.close()
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (first,))
        admin.close()
        monkeypatch.setattr(Pool, "PING_AFTER", 0.05)
        time.sleep(0.1)
        pool.connect()
        assert pings == [1]  # idle longer: checked, found dead, and replaced
        assert backend_pid(pool) != first
        pool.close()
    finally:
        pool.close_all()


@pytest.fixture
def pool():
    from playhouse.db_url import parse

    pool = Pool(**parse(PG_URL), max_connections=2, stale_timeout=300)
    pool.connect()
    pool.execute_sql("DROP TABLE IF EXISTS pool_probe")
    pool.execute_sql("CREATE TABLE pool_probe (id int PRIMARY KEY, note text NOT NULL)")
    pool.connection().cursor_factory = Sent
    Sent.texts = []
    yield pool
    pool.connection().cursor_factory = psycopg2.extensions.cursor
    pool.execute_sql("DROP TABLE pool_probe")
    pool.close_all()


def committed_rows():
    """The probe table's rows as another connection sees them (committed ones only)."""
    other = psycopg2.connect(PG_URL)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT id, note FROM pool_probe ORDER BY id")
            return cursor.fetchall()
    finally:
        other.close()


INSERT = "INSERT INTO pool_probe (id, note) VALUES (%s, %s)"


def test_a_transaction_sends_begin_with_its_first_statement_and_deferred_writes_with_its_commit(pool):
    with pool.atomic():
        pool.execute_sql(INSERT, (1, "first"))
        pool.defer(INSERT, (2, "50% off, %s and %% kept"))
        pool.defer(INSERT, (3, "third"))
        assert committed_rows() == []
    assert Sent.texts == [
        "BEGIN; INSERT INTO pool_probe (id, note) VALUES (1, 'first')",
        "INSERT INTO pool_probe (id, note) VALUES (2, '50%% off, %%s and %%%% kept'); "
        "INSERT INTO pool_probe (id, note) VALUES (3, 'third'); COMMIT",
    ]
    assert committed_rows() == [(1, "first"), (2, "50% off, %s and %% kept"), (3, "third")]


def test_a_deferred_write_goes_before_the_next_statement_of_its_transaction(pool):
    with pool.atomic():
        pool.defer(INSERT, (1, "deferred"))
        seen = pool.execute_sql("SELECT count(*) FROM pool_probe").fetchone()[0]
    assert seen == 1
    assert len(Sent.texts) == 2  # BEGIN, the INSERT and the SELECT; then the COMMIT


def test_a_transaction_that_sends_nothing_costs_no_round_trip(pool):
    with pool.atomic():
        pass
    assert Sent.texts == []
    assert pool.execute_sql("SELECT 1").fetchone() == (1,)  # and the connection is usable


def test_a_failing_deferred_write_raises_at_commit_and_undoes_the_whole_transaction(pool):
    from peewee import IntegrityError

    with pytest.raises(IntegrityError):
        with pool.atomic():
            pool.execute_sql(INSERT, (1, "kept only if all is"))
            pool.defer(INSERT, (2, None))  # NOT NULL
    assert committed_rows() == []
    assert Sent.texts[-1] == "ROLLBACK"
    with pool.atomic():  # the connection goes on
        pool.execute_sql(INSERT, (3, "after"))
    assert committed_rows() == [(3, "after")]


def test_a_statement_without_parameters_keeps_its_percent_signs_after_a_deferred_one(pool):
    with pool.atomic():
        pool.defer(INSERT, (1, "a"))
        pool.execute_sql("INSERT INTO pool_probe (id, note) VALUES (2, '100%%')")
    assert committed_rows() == [(1, "a"), (2, "100%")]  # as peewee sends it alone: %% is one %


def test_outside_a_transaction_a_deferred_write_is_sent_at_once(pool):
    pool.defer(INSERT, (1, "now"))
    assert committed_rows() == [(1, "now")]
    assert Sent.texts == ["INSERT INTO pool_probe (id, note) VALUES (%s, %s)"]


def test_the_trackers_connections_do_not_jit_compile(app):
    """The server's JIT compiled the reports' costly raw reads for longer than they ran."""
    from tracker.db import db

    assert db.execute_sql("SHOW jit").fetchone() == ("off",)
