"""The fault table of issue 10 at full size, by hand: clicks under load while the database is
locked 40 s (longer than gunicorn's default 30 s timeout) or its disk is full for 6 s, and while
PostgreSQL is down 6 s; for each, the clicks answered against the clicks stored once the spool
has drained. tests/faults runs the same experiments shortened, in CI.

Run from the project root (pytest does not collect tests/bench)::

    python tests/bench/faults.py [--threads 32] [--postgres postgresql://postgres@127.0.0.1:5432/NAME]

The disk-full row needs root (it mounts a tmpfs); the PostgreSQL rows need ``--postgres`` (a
database of its own: the bench empties it). Each row starts its own ``tracker serve`` with 2
gunicorn workers, on a fresh SQLite file (or the emptied PostgreSQL database).
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.dirname(HERE), ROOT]

from fault_helpers import ClickLoad, column, connect, wait_for  # noqa: E402
from faults.test_click_faults import Proxy, fill, hold_lock  # noqa: E402


class Served:
    """``tracker serve`` on a free port with ``url`` as its database."""

    def __init__(self, workdir, url):
        from conftest import free_port

        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        env = dict(
            os.environ,
            TRACKER_DATABASE_URL=url,
            TRACKER_INSTANCE_PATH=os.path.join(workdir, "instance"),
            TRACKER_API_TOKEN="bench",
            TRACKER_DELIVERY_ALLOWED_NETWORKS="127.0.0.0/8",
        )
        self.log = open(os.path.join(workdir, "server.log"), "w")
        command = [sys.executable, "-m", "tracker", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, 60, "the server")
        flow = requests.post(
            self.base + "/api/v1/flows",
            headers={"Authorization": "Bearer bench"},
            json={
                "name": "bench",
                "offer_url": "https://offer.example/?cid={clickid}",
                "postbacks": [{"trigger": "click", "url": "http://127.0.0.1:9/s?cid={clickid}"}],
            },
            timeout=30,
        ).json()
        self.link = flow["link"]

    def healthy(self):
        try:
            return requests.get(self.base + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def depth(self):
        return requests.get(self.base + "/healthz", timeout=10).json()["spool_depth"]

    def stop(self):
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


def empty_postgres(url):
    conn = connect(url)
    conn.autocommit = True
    conn.cursor().execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()


def run(name, url, workdir, fault, threads, store_url=None):
    """Serve, click, apply ``fault()`` (it returns when the fault is over), and print the row."""
    served = Served(workdir, url)
    try:
        load = ClickLoad(served.link, threads).start()
        time.sleep(2)
        started = time.monotonic()
        fault()
        lasted = time.monotonic() - started
        time.sleep(2)
        load.stop()
        wait_for(lambda: served.depth() == 0, 300, "the spool to drain")
        stored = set(column(store_url or url, "SELECT click_id FROM click"))
        answered = set(load.answered)
        lost = len(answered - stored)
        verdict = (
            "nothing lost"
            if not lost and not load.failures
            else "LOST %d, %d failures" % (lost, len(load.failures))
        )
        print(
            "| %s | %.0f s | %d answered | %d stored | slowest %.2f s | %s |"
            % (name, lasted, len(answered), len(stored & answered), load.slowest, verdict),
            flush=True,
        )
    finally:
        served.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    print("| experiment | fault | clicks answered | stored | slowest answer | verdict |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        url = "sqlite:///%s/tracker.db" % workdir
        run("SQLite write lock", url, workdir, lambda: hold_lock(url, 40, threading.Event()), args.threads)
    if os.geteuid() == 0:
        with tempfile.TemporaryDirectory() as workdir:
            disk = os.path.join(workdir, "disk")
            os.mkdir(disk)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk], check=True)
            try:
                url = "sqlite:///%s/tracker.db" % disk

                def full():
                    fill(pathlib.Path(disk))
                    time.sleep(6)
                    os.unlink(os.path.join(disk, "filler"))

                run("SQLite disk full", url, workdir, full, args.threads)
            finally:
                subprocess.run(["umount", "-l", disk])
    if args.postgres:
        with tempfile.TemporaryDirectory() as workdir:
            empty_postgres(args.postgres)
            run(
                "PostgreSQL table lock",
                args.postgres,
                workdir,
                lambda: hold_lock(args.postgres, 40, threading.Event()),
                args.threads,
            )
        with tempfile.TemporaryDirectory() as workdir:
            empty_postgres(args.postgres)
            parts = urlsplit(args.postgres)
            proxy = Proxy((parts.hostname, parts.port or 5432))
            via = urlunsplit(parts._replace(netloc="%s@127.0.0.1:%d" % (parts.username, proxy.port)))

            def down():
                proxy.down()
                time.sleep(6)
                proxy.up()

            run("PostgreSQL down", via, workdir, down, args.threads, store_url=args.postgres)


if __name__ == "__main__":
    main()
