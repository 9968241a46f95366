"""``tracker db backup`` while a served tracker takes clicks, then ``tracker db restore`` into the
stopped tracker: every click committed before the backup began comes back."""

import datetime
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from tracker.db import db, is_postgres
from tracker.models import Click

from conftest import ROOT

PREFILLED = 10_000


def tracker(args, env):
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def prefill(flow_id, count):
    """``count`` old clicks, so that the backup has data to copy while new clicks arrive."""
    start = datetime.datetime(2026, 1, 1)
    with db.connection_context():
        with db.atomic():
            for first in range(0, count, 500):
                Click.insert_many(
                    {
                        "click_id": "0old%021d" % n,
                        "flow": flow_id,
                        "created_at": start + datetime.timedelta(seconds=n),
                        "params": {},
                        "cookies": {},
                        "cut": [],
                    }
                    for n in range(first, min(first + 500, count))
                ).execute()


class Clicker:
    """Threads clicking a link without pause; every answer kept as ``(monotonic time, click id)``."""

    def __init__(self, link, threads=2):
        self.link, self.answered, self.stop = link, [], threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                response = session.get(self.link, allow_redirects=False, timeout=10)
                assert response.status_code == 302
                self.answered.append((time.monotonic(), response.headers["Location"].rsplit("=", 1)[1]))

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def between(self, start, end):
        return {click_id for at, click_id in self.answered if start <= at <= end}


def stored_click_ids():
    if is_postgres():
        db.obj.close_all()  # the restore replaced the tables under the pool's connections
    with db.connection_context():
        return {row[0] for row in Click.select(Click.click_id).tuples()}


def test_backup_while_clicks_arrive_then_restore_into_the_stopped_tracker(start_server, server_env, tmp_path):
    server = start_server("web", workers=2)
    flow = server.api(
        "POST", "/api/v1/flows", json={"name": "B", "offer_url": "https://o.example/?c={clickid}"}
    )
    prefill(flow.json()["id"], PREFILLED)
    clicker = Clicker(flow.json()["link"])
    try:
        deadline = time.monotonic() + 30
        while len(clicker.answered) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        backup = tracker(["db", "backup", str(tmp_path / "tracker.backup")], server_env)
        ended = time.monotonic()
        time.sleep(0.5)
    finally:
        clicker.finish()
    assert backup.returncode == 0, backup.stderr
    assert (
        backup.stdout.startswith("backed up ") and " to %s (" % (tmp_path / "tracker.backup") in backup.stdout
    )
    before, during = clicker.between(0, began), clicker.between(began, ended)
    after = clicker.between(ended, float("inf"))
    assert len(before) >= 50 and len(during) > 0 and len(after) > 0, (len(before), len(during), len(after))

    running = tracker(["db", "restore", str(tmp_path / "tracker.backup")], server_env)
    assert running.returncode == 1
    assert (
        running.stderr.startswith("error: ")
        and "stop the tracker (serve, web, worker) first" in running.stderr
    )
    assert len(running.stderr.splitlines()) == 1

    server.process.terminate()
    assert server.process.wait(30) == 0
    if is_postgres():
        db.obj.close_all()  # this test's own connections count as a running tracker too
    restored = tracker(["db", "restore", str(tmp_path / "tracker.backup")], server_env)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored %s into " % (tmp_path / "tracker.backup"))
    assert "schema: version" in restored.stdout

    clicks = stored_click_ids()
    assert before <= clicks  # every click answered before the backup began
    assert not after & clicks  # none answered after it ended: the database is the backup's
    old = {click_id for click_id in clicks if click_id.startswith("0old")}
    assert len(old) == PREFILLED
    assert len(clicks) <= PREFILLED + len(before) + len(during)


@pytest.mark.e2e  # runs the CLI
def test_restore_refuses_a_file_that_is_not_a_backup(server_env, tmp_path, app):
    missing = tracker(["db", "restore", str(tmp_path / "nope")], server_env)
    assert (missing.returncode, missing.stderr) == (1, "error: no backup at %s\n" % (tmp_path / "nope"))
    if not is_postgres():
        (tmp_path / "junk").write_bytes(b"x" * 4096)
        junk = tracker(["db", "restore", str(tmp_path / "junk")], server_env)
        assert (junk.returncode, junk.stderr) == (
            1,
            "error: %s is not a SQLite database: file is not a database\n" % (tmp_path / "junk"),
        )
        assert os.path.getsize(tmp_path / "tracker.db") > 0
