"""Bounded sends and fencing (DESIGN §4.4): one total deadline for the whole send, whatever
the receiver trickles; an attempt finished after its claim was taken over is logged and
changes nothing; a row reclaimed past the retry limit fails."""

import datetime
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from tracker.db import db
from tracker.delivery.destinations import Policy
from tracker.delivery.queue import Settings, claim, reclaim_expired, record
from tracker.delivery.sender import Answer, SendPool, Sent, Timeouts, lease_margin, send_http
from tracker.models import Delivery, DeliveryAttempt

from postback_helpers import NOW

# These tests mostly wait on real timeouts: every such file is in the xdist group "waits", run by
# one test process while the others use the cores (tests/conftest.py starts one more than cores).
pytestmark = pytest.mark.xdist_group("waits")


class Trickler:
    """A loopback server answering ``head`` at once, then one byte of ``rest`` every 0.2 s."""

    def __init__(self, head, rest):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.head, self.rest = head, rest
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(self.head)
                for byte in self.rest:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.2)
            except OSError:
                pass


REQUEST = SimpleNamespace(method="GET", url=None, headers={}, body="")
LOOPBACK = Policy.from_config({"TRACKER_DELIVERY_ALLOWED_NETWORKS": "127.0.0.0/8"})


@pytest.mark.parametrize(
    "head, rest",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n", b"x" * 40),  # the body trickles
        (b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 40 + b"\r\nContent-Length: 2\r\n\r\nok"),  # the headers
    ],
    ids=["body", "headers"],
)
def test_a_trickling_answer_is_cut_at_the_total_deadline(head, rest):
    server = Trickler(head, rest)
    started = time.monotonic()
    with pytest.raises(requests.Timeout, match="deadline of 1.0 s"):
        send_http(SimpleNamespace(**{**vars(REQUEST), "url": server.url}), Timeouts(0.5, 0.5), LOOPBACK)
    # each byte came well within the read timeout; only the total deadline stops it
    assert 0.9 < time.monotonic() - started < 2.0
    server.sock.close()


def test_each_of_two_overlapping_sends_is_cut_at_its_own_deadline():
    """A 1 s send started while a 2 s one is in flight is cut at 1 s (the deadline watcher,
    asleep until 2 s, is woken for it; unwoken it would cut the send at 1.8 s); the 2 s one
    still runs to its 2 s."""
    server = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n", b"x" * 80)
    request = SimpleNamespace(**{**vars(REQUEST), "url": server.url})
    took = {}

    def send(name, timeouts):
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            send_http(request, timeouts, LOOPBACK)
        took[name] = time.monotonic() - started

    long_send = threading.Thread(target=send, args=("long", Timeouts(0.5, 1.5)))
    long_send.start()
    time.sleep(0.2)
    send("short", Timeouts(0.5, 0.5))
    long_send.join()
    assert 0.9 < took["short"] < 1.4
    assert 1.9 < took["long"] < 2.8
    server.sock.close()


def test_a_send_gets_its_whole_deadline_or_is_given_back_unsent():
    # a deadline cut to what is left of the lease would fail a receiver that needs all of it:
    # a row sent gets the whole deadline; one whose deadline no longer fits is not sent
    seen = []
    pool = SendPool(1, 1)
    try:
        timeouts = Timeouts(0.5, 1.0)
        row = SimpleNamespace(id=1, url="http://127.0.0.1:9/")

        def send(finish_by):
            return pool.submit(
                lambda d, t: seen.append(t) or Answer(200), row, None, timeouts, lambda: NOW, finish_by
            ).result()

        assert send(time.monotonic() + 1.6).answer.status_code == 200
        assert seen == [(0.5, 1.0)] and seen[0].total == 1.5  # as configured, not cut
        skipped = send(time.monotonic() + 1.4)  # 1.4 s left: less than the 1.5 s deadline
        assert (skipped.unsent, skipped.answer, len(seen)) == (True, None, 1)  # not sent at all
    finally:
        pool.shutdown()


def test_the_time_kept_to_record_an_attempt_is_a_second_or_half_what_the_deadline_leaves():
    assert lease_margin(60, Timeouts(5, 10)) == 1.0
    assert lease_margin(3, Timeouts(0.5, 1)) == 0.75  # a 3 s lease, a 1.5 s deadline
    assert lease_margin(15.5, Timeouts(5, 10)) == 0.25


def test_an_attempt_finished_after_its_claim_was_taken_over_changes_nothing(delivery_app, caplog):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        Delivery.create(trigger="click", url="http://127.0.0.1:9/", next_attempt_at=NOW, created_at=NOW)
        (late,), _ = claim(NOW, 10, settings.lease)
        later = NOW + datetime.timedelta(seconds=settings.lease + 1)
        assert reclaim_expired(later, settings.retry_delays) == 1  # the lease ran out
        (current,), _ = claim(later, 10, settings.lease)
        assert current.claim_token != late.claim_token
        record([Sent(late, None, later, 5.0, Answer(200, b"late"))], settings, lambda: later)
        row = Delivery.get()
        assert (row.status, row.claim_token, row.attempts_count) == ("sending", current.claim_token, 1)
        log = [a.response or a.error for a in DeliveryAttempt.select().order_by(DeliveryAttempt.id)]
        assert log == ["no answer recorded: the worker stopped while sending (its lease expired)", "late"]
        assert "finished after its lease was taken over" in caplog.text
        record([Sent(current, None, later, 5.0, Answer(200, b"ok"))], settings, lambda: later)
        assert (Delivery.get().status, Delivery.get().attempts_count) == ("delivered", 2)


def test_a_row_reclaimed_past_the_retry_limit_fails(delivery_app):
    with db.connection_context():
        lease = NOW - datetime.timedelta(seconds=1)
        fields = {"trigger": "click", "url": "http://127.0.0.1:9/", "status": "sending", "lease_until": lease}
        last = Delivery.create(attempts_count=2, **fields)  # two delays: this was the last try
        more = Delivery.create(attempts_count=1, **fields)
        assert reclaim_expired(NOW, [0.1, 0.1]) == 2
        assert [Delivery.get_by_id(d.id).status for d in (last, more)] == ["failed", "retrying"]
