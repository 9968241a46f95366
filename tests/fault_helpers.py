"""Helpers for the fault suite (tests/faults): a click load of real HTTP clients, the click
ids the database holds, a loopback receiver that records every arrival, and waiting."""

import collections
import re
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

from conftest import PG_URL

# The fault tests' own receivers are on loopback: outgoing requests may go there.
FAULT_ENV = {"TRACKER_DELIVERY_ALLOWED_NETWORKS": "127.0.0.0/8"}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) [\w.]+ \[\d+\] ", re.M)


def wait_for(condition, timeout, what):
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class ClickLoad:
    """``threads`` visitors clicking ``link`` as fast as they are answered, until ``stop``.

    ``answered``: the click ids of the redirects (the offer URL carries ``cid={clickid}``);
    ``failures``: every answer that was no 302, and every error; ``slowest``: seconds."""

    def __init__(self, link, threads=8):
        self.link, self.threads = link, threads
        self.answered, self.failures, self.slowest = [], [], 0.0
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._click, daemon=True) for _ in range(threads)]

    def start(self):
        for worker in self._workers:
            worker.start()
        return self

    def until(self, count, seconds):
        """Wait until ``count`` clicks were answered, or ``seconds`` passed (a loaded machine)."""
        deadline = time.monotonic() + seconds
        while len(self.answered) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def stop(self):
        self._stop.set()
        for worker in self._workers:
            worker.join(60)
        return self

    def _click(self):
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = session.get(self.link, allow_redirects=False, timeout=60)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                session = requests.Session()
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            if response.status_code != 302:
                self.failures.append("%d %s" % (response.status_code, response.text[:200]))
                continue
            self.answered.append(parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0])


def connect(url):
    """A plain DB-API connection to ``url`` (sqlite:/// or postgresql://), outside peewee."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url[len("sqlite:///") :], timeout=30)
    import psycopg2

    return psycopg2.connect(url)


def column(url, sql):
    """The first column of every row of ``sql``."""
    conn = connect(url)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def spool_depth(server):
    """The node's spool depth, as /healthz reports it."""
    return requests.get(server.url + "/healthz", timeout=10).json()["spool_depth"]


def engine():
    return "postgresql" if PG_URL else "sqlite"


class Receiver:
    """A threaded HTTP/1.1 server on loopback recording each request's arrival and end.
    ``answer(handler)`` writes the answer (default: a 200 ``ok``)."""

    def __init__(self, answer=None):
        receiver = self
        self.arrivals = collections.defaultdict(list)  # path + query -> [(start, end)]
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                started = time.monotonic()
                try:
                    (answer or ok)(self)
                except OSError:
                    pass  # the sender gave up (its deadline shut the socket)
                finally:
                    with receiver.lock:
                        receiver.arrivals[self.path].append((started, time.monotonic()))

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self):
        with self.lock:
            return {path: len(times) for path, times in self.arrivals.items()}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"ok")
