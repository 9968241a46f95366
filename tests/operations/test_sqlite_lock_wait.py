"""SQLite's write lock, waited for by the tracker (``db.Sqlite``), not by SQLite's busy handler.

The busy handler sleeps 1 ms at its first wait, then 2, 5, 10 ms: with two workers writing
conversions, each finding the other's lock (held about 0.5 ms) often, the workers slept far
longer than the lock was held (``tests/bench/postbacks.py``: 661 req/s with it, 847 without).
These tests hold the lock from another connection, as another worker would, on a SQLite file of
their own (on the PostgreSQL pass too: the behaviour is SQLite's).
"""

import sqlite3
import threading
import time

import pytest
from peewee import OperationalError

from tracker import db as database
from tracker.db import click_timeouts, db, default_timeouts
from tracker.models import Conversion, InboundRequest, OrphanVisit

from conftest import API_TOKEN
from conversion_helpers import click_on

pytestmark = pytest.mark.xdist_group("waits")  # they wait on real locks


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    app = make_app(TRACKER_DATABASE_URL="sqlite:///" + str(tmp_path / "lock.db"))
    yield app
    default_timeouts()


def hold_lock(path, seconds):
    """Another connection takes the write lock (BEGIN IMMEDIATE) and keeps it ``seconds``;
    returns its thread, started once the lock is held."""
    held = threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return thread


def flow_of(client):
    body = {"name": "Lock", "offer_url": "https://offer.example/?cid={clickid}"}
    response = client.post("/api/v1/flows", json=body, headers={"Authorization": "Bearer " + API_TOKEN})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_postback_that_meets_the_write_lock_tries_again_until_it_is_free(sqlite_app, tmp_path):
    client = sqlite_app.test_client()
    click_id = click_on(client, flow_of(client))
    sent = []
    db.connect(reuse_if_open=True)  # the test client's requests run on this thread's connection
    db.connection().set_trace_callback(sent.append)
    assert db.execute_sql("PRAGMA busy_timeout").fetchone() == (0,)  # SQLite's handler is off
    holder = hold_lock(str(tmp_path / "lock.db"), 0.3)
    started = time.monotonic()
    response = client.get("/postback?click_id=%s&payout=2.5&txid=T-1" % click_id)
    waited = time.monotonic() - started
    holder.join()
    db.connection().set_trace_callback(None)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ok"
    assert 0.25 <= waited < 3
    assert [(c.click_id, c.txid) for c in Conversion.select()] == [(click_id, "T-1")]
    assert [r.result for r in InboundRequest.select()] == ["ok"]
    # tried again every LOCK_RETRY_SECONDS meanwhile: SQLite's handler would send it once
    begins = [text for text in sent if text == "BEGIN IMMEDIATE"]
    assert len(begins) > 20, len(begins)


def test_a_statement_outside_a_transaction_waits_for_the_lock_too(sqlite_app, tmp_path):
    db.connect(reuse_if_open=True)
    holder = hold_lock(str(tmp_path / "lock.db"), 0.3)
    started = time.monotonic()
    OrphanVisit.create(key="k", reason="unknown", params={})  # one INSERT in autocommit
    waited = time.monotonic() - started
    holder.join()
    assert 0.25 <= waited < 3
    assert [v.key for v in OrphanVisit.select()] == ["k"]


def test_the_wait_ends_at_the_threads_lock_wait_then_the_lock_error_is_raised(sqlite_app, tmp_path):
    """The click path's TRACKER_CLICK_BUSY_MS (``click_timeouts``) cuts the wait short; the
    usual wait (``default_timeouts``, BUSY_TIMEOUT_MS) outlasts a lock held longer than that."""
    db.connect(reuse_if_open=True)
    path = str(tmp_path / "lock.db")
    click_timeouts(200)
    holder = hold_lock(path, 1.5)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        with db.atomic():
            OrphanVisit.create(key="cut", reason="unknown", params={})
    waited = time.monotonic() - started
    holder.join()
    assert 0.19 <= waited < 1.2, waited
    default_timeouts()
    assert database.lock_wait_ms() == database.BUSY_TIMEOUT_MS == 5000
    holder = hold_lock(path, 1.0)
    started = time.monotonic()
    with db.atomic():
        OrphanVisit.create(key="waited", reason="unknown", params={})
    waited = time.monotonic() - started
    holder.join()
    assert 0.95 <= waited < 4.5, waited
    assert [v.key for v in OrphanVisit.select()] == ["waited"]
