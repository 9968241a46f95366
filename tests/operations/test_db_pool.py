"""The PostgreSQL pool checks a connection with a round trip only when it sat idle: one handed
back a moment ago is reused as it is, one idle longer that the server closed is replaced."""

import time

import psycopg2
import pytest

from tracker.db import Pool

from conftest import PG_URL

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
