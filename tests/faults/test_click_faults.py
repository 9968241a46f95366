"""No answered click is lost (DESIGN §4.8), against a served tracker under a click load: the
database locked far longer than TRACKER_CLICK_BUSY_MS and than gunicorn's worker timeout,
and a SQLite disk that is full. Every visitor gets the redirect at once; after the spool
drains, the clicks stored are exactly the clicks answered, each with its click postback."""

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from fault_helpers import FAULT_ENV, LOG_LINE, ClickLoad, column, connect, spool_depth, wait_for

from conftest import free_port

pytestmark = pytest.mark.e2e

# gunicorn's worker timeout lowered from 30 s to 4 s (TRACKER_WEB_TIMEOUT) so that a lock
# held 6 s outlasts it, as the 40 s lock of issue 10 outlasted the 30 s default, in a test of
# seconds. TRACKER_CLICK_BUSY_MS stays at its default, 250.
WEB_TIMEOUT = 4
HELD = 6.0


def serve_flow(start_server, env=None):
    """A served tracker (2 web workers and the delivery worker) with a flow whose click
    postback goes nowhere that answers (its delivery rows are what counts here)."""
    server = start_server(
        "serve", workers=2, env={**FAULT_ENV, "TRACKER_WEB_TIMEOUT": str(WEB_TIMEOUT), **(env or {})}
    )
    flow = server.api(
        "POST",
        "/api/v1/flows",
        json={
            "name": "Faults",
            "offer_url": "https://offer.example/?cid={clickid}",
            "postbacks": [{"trigger": "click", "url": "http://127.0.0.1:9/session?cid={clickid}"}],
        },
    ).json()
    wait_for(lambda: "delivery worker started" in server.log(), 60, "the delivery worker")
    return server, flow


def hold_lock(url, seconds, locked):
    """Hold the click table's write lock for ``seconds``: SQLite's write lock (BEGIN
    IMMEDIATE), PostgreSQL's ACCESS EXCLUSIVE lock on the click table."""
    conn = connect(url)
    try:
        if url.startswith("sqlite:///"):
            conn.isolation_level = None
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.cursor().execute("LOCK TABLE click IN ACCESS EXCLUSIVE MODE")
        locked.set()
        time.sleep(seconds)
        conn.commit() if not url.startswith("sqlite:///") else conn.execute("COMMIT")
    finally:
        conn.close()


def assert_nothing_lost(server, url, load, spooled_at_least=1):
    """Every answered click is stored once, with its click postback's delivery; the spool
    was used, and its log lines carry time, level and logger."""
    wait_for(lambda: spool_depth(server) == 0, 60, "the spool to drain")
    answered = set(load.answered)
    stored = column(url, "SELECT click_id FROM click")
    deliveries = column(url, "SELECT click_id FROM delivery WHERE \"trigger\" = 'click'")
    log = server.log()
    spooled = [line for line in log.splitlines() if " spooled: the database could not take it" in line]
    assert load.failures == []
    assert len(answered) == len(load.answered)  # click ids are unique
    assert (len(stored), sorted(stored)) == (len(answered), sorted(answered))
    assert sorted(deliveries) == sorted(answered)
    assert len(spooled) >= spooled_at_least, log[-3000:]
    assert all(LOG_LINE.match(line) for line in spooled)
    assert "WORKER TIMEOUT" not in log
    metrics = server.api("GET", "/metrics").text
    counted = re.search(r'^tracker_clicks_total\{result="spooled"\} (\S+)$', metrics, re.M)
    assert counted and float(counted.group(1)) >= len(spooled)
    return int(float(counted.group(1)))


def test_clicks_while_the_database_is_locked_longer_than_gunicorns_timeout_are_all_stored(
    start_server, database_url
):
    server, flow = serve_flow(start_server)
    load = ClickLoad(flow["link"]).start()
    time.sleep(1.0)
    locked = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(database_url, HELD, locked))
    holder.start()
    locked.wait(10)
    holder.join(HELD + 30)
    time.sleep(1.0)
    load.stop()
    spooled = assert_nothing_lost(server, database_url, load)
    assert load.slowest < 3.0  # a visitor waits TRACKER_CLICK_BUSY_MS, not the lock
    print(
        "%s lock %.0f s: %d clicks answered, %d spooled, all stored"
        % (database_url.split(":")[0], HELD, len(load.answered), spooled)
    )


def mount_tmpfs(path, size):
    """A small tmpfs at ``path`` (root only); the reason when it can't be mounted."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", str(path)], capture_output=True, text=True
    )
    return None if done.returncode == 0 else "mount failed: %s" % done.stderr.strip()


def fill(path):
    """Fill the file system of ``path`` to the last byte with a file inside it."""
    with open(path / "filler", "wb", buffering=0) as f:
        for size in (1 << 16, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


@pytest.mark.sqlite_only  # PostgreSQL's disk is the server's, not the tracker's
def test_clicks_while_the_sqlite_disk_is_full_are_all_stored(start_server, tmp_path):
    disk = tmp_path / "disk"
    # Room for SQLite's WAL to reach its checkpoint (wal_autocheckpoint: about 40 MB).
    reason = mount_tmpfs(disk, "64m")
    if reason:
        if os.environ.get("CI"):
            pytest.fail("the disk-full fault test must run in CI: " + reason)
        pytest.skip(reason)
    try:
        url = "sqlite:///%s" % (disk / "tracker.db")  # its schema made by the server's start
        server, flow = serve_flow(start_server, env={"TRACKER_DATABASE_URL": url})
        load = ClickLoad(flow["link"]).start()
        time.sleep(1.0)
        fill(disk)
        time.sleep(4.0)
        os.unlink(disk / "filler")
        time.sleep(1.0)
        load.stop()
        spooled = assert_nothing_lost(server, url, load)
        print(
            "sqlite disk full 4 s: %d clicks answered, %d spooled, all stored" % (len(load.answered), spooled)
        )
        server.process.terminate()
        server.process.wait(30)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


class Proxy:
    """A TCP proxy to PostgreSQL that the test can take down (every connection cut, new ones
    refused) and bring back on the same port: PostgreSQL down, then restarted."""

    def __init__(self, target):
        self.target, self.port, self.links = target, free_port(), []
        self.up()

    def up(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self):
        self.listener.close()
        for sock in self.links:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.links = []

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.mark.postgres_only  # SQLite has no server to go down
def test_clicks_while_postgresql_is_down_then_back_are_all_stored(start_server, database_url):
    parts = urlsplit(database_url)
    proxy = Proxy((parts.hostname, parts.port or 5432))
    url = urlunsplit(parts._replace(netloc="%s@127.0.0.1:%d" % (parts.username, proxy.port)))
    try:
        server, flow = serve_flow(start_server, env={"TRACKER_DATABASE_URL": url})
        load = ClickLoad(flow["link"]).start()
        time.sleep(1.0)
        proxy.down()
        time.sleep(4.0)
        proxy.up()
        time.sleep(1.0)
        load.stop()
        spooled = assert_nothing_lost(server, database_url, load)
        print(
            "postgresql down 4 s: %d clicks answered, %d spooled, all stored" % (len(load.answered), spooled)
        )
    finally:
        proxy.down()
