"""The click spool (DESIGN §4.8) with a real lock held on the real database: a click the
database cannot take within TRACKER_CLICK_BUSY_MS is redirected with its click id, waits in
the spool (its postback, event and lander click answer 503 meanwhile), and is written once,
with its click postback's delivery, when the database is back."""

import contextlib
import datetime
import json
import logging
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fault_helpers import connect

from tracker.clickin.record import new_click_id, record_click
from tracker.clickin.spool import click_id_time, may_be_spooled
from tracker.clickin.visitor import Visitor
from tracker.db import db
from tracker.models import Click, Delivery, utcnow

from conftest import API_TOKEN

# These tests mostly wait on real timeouts: every such file is in the xdist group "waits", run by
# one test process while the others use the cores (tests/conftest.py starts one more than cores).
pytestmark = pytest.mark.xdist_group("waits")

AUTH = {"Authorization": "Bearer " + API_TOKEN}


@pytest.fixture
def spool_app(make_app, tmp_path):
    return make_app(TRACKER_CLICK_BUSY_MS=50, TRACKER_CLICK_SPOOL=str(tmp_path / "spool"))


def make_flow(client, **fields):
    body = {
        "name": "Spool",
        "offer_url": "https://offer.example/?cid={clickid}",
        "postbacks": [{"trigger": "click", "url": "http://127.0.0.1:9/s?cid={clickid}"}],
        **fields,
    }
    response = client.post("/api/v1/flows", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


class HeldLock:
    """The click table's write lock, held by another connection until ``release``."""

    def __init__(self, url):
        self.url, self.conn = url, connect(url)
        if url.startswith("sqlite:///"):
            self.conn.isolation_level = None
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.cursor().execute("LOCK TABLE click IN ACCESS EXCLUSIVE MODE")

    def release(self):
        if self.url.startswith("sqlite:///"):
            self.conn.execute("COMMIT")
        else:
            self.conn.commit()
        self.conn.close()


@contextlib.contextmanager
def lock_held_briefly(url, seconds=0.2):
    """The write lock held by another thread's connection (a connection is used by the thread
    that opened it) for ``seconds`` from entering the block; the block's end waits for its
    release."""
    held = threading.Event()

    def hold():
        lock = HeldLock(url)
        held.set()
        time.sleep(seconds)
        lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        holder.join()


def stored(click_id):
    with db.connection_context():
        return (
            Click.select().where(Click.click_id == click_id).count(),
            Delivery.select().where(Delivery.click_id == click_id).count(),
        )


def wait_drained(spool, timeout=30):
    deadline = time.monotonic() + timeout
    while spool.depth():
        assert time.monotonic() < deadline, "the spool did not drain"
        time.sleep(0.05)


def test_a_click_the_locked_database_cannot_take_is_spooled_then_written_once(spool_app, database_url):
    client = spool_app.test_client()
    flow = make_flow(client)
    spool = spool_app.extensions["tracker.spool"]
    assert client.get("/r/" + flow["key"]).status_code == 302  # the flow is in the cache
    lock = HeldLock(database_url)
    try:
        started = time.monotonic()
        response = client.get("/r/" + flow["key"])
        waited = time.monotonic() - started
        assert response.status_code == 302
        click_id = parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0]
        assert waited < 2.0  # TRACKER_CLICK_BUSY_MS, not the lock
        assert spool.depth() == 1
        assert client.get("/healthz").get_json() == {"status": "ok", "spool_depth": 1}
        if database_url.startswith("sqlite:///"):  # PostgreSQL's reads wait for its table lock
            postback = client.get("/postback?click_id=%s&payout=1" % click_id)
            assert (postback.status_code, postback.get_json()["status"]) == (503, "error")
            assert "retry" in postback.get_json()["error"]
            lander = client.get("/click?click_id=%s" % click_id)
            assert (lander.status_code, lander.headers["Retry-After"]) == (503, "1")
    finally:
        lock.release()
        wait_drained(spool)
    assert stored(click_id) == (1, 1)  # the click and its click postback's delivery
    with db.connection_context():
        assert Click.select().count() == 2
    assert client.get("/healthz").get_json() == {"status": "ok", "spool_depth": 0}
    assert client.get("/postback?click_id=%s&payout=1" % click_id).status_code == 200


def test_a_drain_cut_short_writes_nothing_twice(spool_app):
    client = spool_app.test_client()
    flow = make_flow(client)
    spool = spool_app.extensions["tracker.spool"]
    click_id = new_click_id()
    values = spooled_values(spool_app, flow, click_id)
    spool.append(values)
    wait_drained(spool)
    spool.append(values)  # as if a drain stopped after the write, before removing its file
    wait_drained(spool)
    assert stored(click_id) == (1, 1)


def spooled_values(app, flow, click_id):
    """The INSERT values of a click on ``flow``, as the click path spools them."""
    from tracker.clickin.flow_cache import load_flow
    from tracker.clickin.record import capture, click_values, unique_window
    from tracker.clickin.visitor import make_visitor

    with db.connection_context():
        loaded = load_flow(flow["key"])
    visitor = make_visitor("203.0.113.7", "curl/8", "", "", [("sub1", "x")], {})
    return click_values(capture(loaded, visitor, click_id, utcnow()), unique_window(loaded))


def test_a_line_spooled_by_the_version_before_the_upper_id_bound_is_written(spool_app):
    """A PostgreSQL line spooled before ``ids_until`` existed (an upgrade with clicks in the
    spool) is written as it is, its visitor's earlier clicks looked for in every month."""
    client = spool_app.test_client()
    flow = make_flow(client)
    spool = spool_app.extensions["tracker.spool"]
    first, second = new_click_id(time.time() - 2), new_click_id()
    for click_id in (first, second):  # the same visitor twice: the second is not unique
        values = spooled_values(spool_app, flow, click_id)
        values.pop("ids_until", None)
        spool.append(values)
    wait_drained(spool)
    with db.connection_context():
        rows = Click.select(Click.click_id, Click.is_unique).order_by(Click.click_id).tuples()
        assert list(rows) == [(first, True), (second, False)]


def test_spooled_clicks_are_written_oldest_first_and_a_refused_line_is_set_aside(spool_app, caplog):
    client = spool_app.test_client()
    flow = make_flow(client)
    spool = spool_app.extensions["tracker.spool"]
    ids = [new_click_id(time.time() - 5 + i) for i in range(3)]
    broken = spooled_values(spool_app, flow, new_click_id())
    broken["flow"] = 10**9  # no such flow: the database refuses it, whatever happens
    for click_id in ids[:2]:
        spool.append(spooled_values(spool_app, flow, click_id))
    spool.append(broken)
    spool.append(spooled_values(spool_app, flow, ids[2]))
    wait_drained(spool)
    with db.connection_context():
        assert [c.click_id for c in Click.select().order_by(Click.click_id)] == ids
    rejected = os.path.join(spool.folder, "rejected", "clicks.jsonl")
    with open(rejected) as f:
        assert [json.loads(line)["click"]["click_id"] for line in f] == [broken["click_id"]]


def test_when_the_spool_cannot_be_written_the_visitor_still_gets_the_redirect(
    make_app, tmp_path, database_url, caplog
):
    (tmp_path / "not-a-folder").write_text("")
    app = make_app(TRACKER_CLICK_BUSY_MS=50, TRACKER_CLICK_SPOOL=str(tmp_path / "not-a-folder" / "spool"))
    client = app.test_client()
    flow = make_flow(client)
    lock = HeldLock(database_url)
    try:
        with caplog.at_level(logging.WARNING):
            response = client.get("/r/" + flow["key"])
    finally:
        lock.release()
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://offer.example/?cid=")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "could not record or spool a click" in errors[0]
    assert "1 click(s) lost by this process so far" in errors[0]


def test_unknown_click_ids_of_the_last_ten_minutes_answer_503_older_ones_404(client):
    recent, old = new_click_id(), new_click_id(time.time() - 11 * 60)
    assert may_be_spooled(recent) and not may_be_spooled(old)
    assert not may_be_spooled("zzzzzzzzzzzzzzzzzzzzzzzzz") and not may_be_spooled("")
    assert abs((click_id_time(recent) - utcnow()).total_seconds()) < 5
    assert client.get("/postback?click_id=%s" % recent).status_code == 503
    assert client.get("/postback?click_id=%s" % old).status_code == 404
    assert client.get("/click?click_id=%s" % recent).status_code == 503
    assert client.get("/click?click_id=%s" % old).status_code == 404


def test_the_dashboard_shows_a_banner_while_clicks_wait_in_the_spool(spool_app):
    from tracker.accounts import create_user

    from dashboard_helpers import PASSWORD, log_in

    client = spool_app.test_client()
    flow = make_flow(client)
    with db.connection_context():
        create_user("admin", PASSWORD)
    log_in(client, create=False)
    assert 'id="spool-banner"' not in client.get("/flows").get_data(as_text=True)
    folder = spool_app.config["TRACKER_CLICK_SPOOL"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "clicks.jsonl"), "wb") as f:  # no drain woken: it stays
        for _ in range(2):
            f.write(
                json.dumps({"v": 1, "click": {"click_id": new_click_id(), "flow": flow["id"]}}).encode()
                + b"\n"
            )
    page = client.get("/flows").get_data(as_text=True)
    assert 'id="spool-banner"><strong>2</strong> clicks waiting' in page


def test_a_click_right_after_a_spooled_one_skips_the_database_and_is_written_later(
    spool_app, database_url, caplog
):
    client = spool_app.test_client()
    flow = make_flow(client)
    spool = spool_app.extensions["tracker.spool"]
    assert client.get("/r/" + flow["key"]).status_code == 302  # the flow is in the cache
    lock = HeldLock(database_url)
    try:
        first = client.get("/r/" + flow["key"])  # the database fails it: spooled, and bypassed a while
    finally:
        lock.release()
    second = client.get("/r/" + flow["key"])  # the database is free again, but bypassed still
    assert (first.status_code, second.status_code) == (302, 302)  # (the drain may have begun)
    ids = [parse_qs(urlsplit(r.headers["Location"]).query)["cid"][0] for r in (first, second)]
    assert second.headers["Location"] == "https://offer.example/?cid=" + ids[1]
    warning = "click %s on flow %d spooled: the database could not take it (" % (ids[0], flow["id"])
    (logged,) = [m for m in caplog.messages if m.startswith(warning)]
    if database_url.startswith("sqlite:///"):  # the database's own reason, as it gave it
        assert logged == warning + "database is locked)"
    wait_drained(spool)
    assert [stored(click_id) for click_id in ids] == [(1, 1), (1, 1)]
    with db.connection_context():
        # the same visitor's click that warmed the cache came first, within the flow's window
        assert [Click.get_by_id(click_id).is_unique for click_id in ids] == [False, False]


def test_spooled_clicks_count_as_unique_by_the_flows_own_window(spool_app, database_url):
    """A flow whose unique window is 1 hour (not the default 24): two visitors who each clicked
    2 hours ago click again, one while the database is locked (spooled) and one right after
    (spooled by the bypass); once written, both clicks are unique, as they would be unspooled."""
    client = spool_app.test_client()
    flow = make_flow(client, unique_window_hours=1)
    spool = spool_app.extensions["tracker.spool"]
    visitors = [{"User-Agent": "Visitor/%d" % n} for n in (1, 2)]
    for headers in visitors:
        assert client.get("/r/" + flow["key"], headers=headers).status_code == 302
    with db.connection_context():
        for click in Click.select():
            Click.update(created_at=click.created_at - datetime.timedelta(hours=2)).where(
                Click.click_id == click.click_id
            ).execute()
    lock = HeldLock(database_url)
    try:
        first = client.get("/r/" + flow["key"], headers=visitors[0])  # the database fails it
    finally:
        lock.release()
    second = client.get("/r/" + flow["key"], headers=visitors[1])  # bypassed: straight to the spool
    ids = [parse_qs(urlsplit(r.headers["Location"]).query)["cid"][0] for r in (first, second)]
    wait_drained(spool)
    with db.connection_context():
        assert [Click.get_by_id(click_id).is_unique for click_id in ids] == [True, True]


def test_a_click_its_caller_sent_to_the_spool_goes_there_though_the_bypass_has_ended(spool_app):
    """The click-in decides once whether a click bypasses the database (it sets the click's
    lock timeouts only when not): record_click keeps that decision. Asking the spool again, a
    bypass ending in between sent the click to a locked database without its timeouts, and
    gunicorn killed the worker mid-click (a 500, seen under load on PostgreSQL)."""
    client = spool_app.test_client()
    key = make_flow(client)["key"]
    spool = spool_app.extensions["tracker.spool"]
    visitor = Visitor(ip="198.51.100.7", user_agent="UA/1", referrer="", params={})
    with spool_app.app_context(), db.connection_context():
        flow = spool_app.extensions["tracker.flows"].get(key)
        assert not spool.bypassing()
        click, url = record_click(flow, visitor, spool=spool, bypass=True)
    assert (getattr(click, "spooled", False), url) == (True, "https://offer.example/?cid=" + click.click_id)
    wait_drained(spool)
    assert stored(click.click_id) == (1, 1)


def test_a_referer_urllib_cannot_split_is_stored_with_its_click_not_spooled(spool_app):
    # "http://[::1/x" made {referrerdomain} raise: the click went to the spool, and from there
    # to the rejected lines, with its click postback
    client = spool_app.test_client()
    flow = make_flow(
        client, postbacks=[{"trigger": "click", "url": "https://pb.example/?r={referrerdomain}"}]
    )
    answer = client.get("/r/" + flow["key"], headers={"Referer": "http://[::1/x"})
    assert answer.status_code == 302
    with spool_app.app_context():
        assert [c.referrer for c in Click.select()] == ["http://[::1/x"]
        assert [d.url for d in Delivery.select()] == ["https://pb.example/?r="]


@pytest.mark.parametrize("postbacks", [True, False])
def test_a_click_that_finds_the_write_lock_held_briefly_tries_again_and_is_stored(
    make_app, tmp_path, database_url, postbacks
):
    """A lock released within TRACKER_CLICK_BUSY_MS: the click's write (one INSERT, or the
    transaction with its click postback's delivery) is tried again until it goes in, stored
    once, not spooled; on SQLite by our loop (its own busy handler would sleep 1 ms and more
    at a time), the connection kept without a busy timeout while it serves clicks."""
    app = make_app(TRACKER_CLICK_BUSY_MS=2000, TRACKER_CLICK_SPOOL=str(tmp_path / "spool"))
    client = app.test_client()
    flow = make_flow(client, **({} if postbacks else {"postbacks": []}))
    spool = app.extensions["tracker.spool"]
    assert client.get("/r/" + flow["key"]).status_code == 302
    sent = []
    with lock_held_briefly(database_url), app.app_context():
        if database_url.startswith("sqlite:///"):
            db.connect(reuse_if_open=True)
            db.connection().set_trace_callback(sent.append)
        response = client.get("/r/" + flow["key"])
        if database_url.startswith("sqlite:///"):  # our loop waits, not SQLite's handler
            assert db.execute_sql("PRAGMA busy_timeout").fetchone() == (0,)
    assert response.status_code == 302
    click_id = parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0]
    assert spool.depth() == 0
    assert stored(click_id) == (1, 1 if postbacks else 0)
    if database_url.startswith("sqlite:///"):
        first = "BEGIN" if postbacks else 'INSERT INTO "click"'  # what meets the lock first
        assert len([text for text in sent if text.startswith(first)]) > 1  # tried again meanwhile


def test_a_visit_to_an_unknown_key_after_clicks_waits_out_a_brief_lock_and_is_stored(
    make_app, tmp_path, database_url
):
    """The orphan visit of a key no flow has, on a connection the click path has cut short
    (SQLite: no busy timeout at all), finds the write lock held for 0.2 s: it waits it out
    within TRACKER_CLICK_BUSY_MS and is stored, not lost to "database is locked"."""
    from tracker.models import OrphanVisit

    app = make_app(TRACKER_CLICK_BUSY_MS=2000, TRACKER_CLICK_SPOOL=str(tmp_path / "spool"))
    client = app.test_client()
    flow = make_flow(client, postbacks=[])
    assert client.get("/r/" + flow["key"]).status_code == 302  # the connection now serves clicks
    with lock_held_briefly(database_url):
        response = client.get("/r/no-such-key?sub1=x")
    assert response.status_code == 404
    with app.app_context():
        assert [(o.key, o.reason, o.params) for o in OrphanVisit.select()] == [
            ("no-such-key", "unknown", {"sub1": "x"})
        ]
