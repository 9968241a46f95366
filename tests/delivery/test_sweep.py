"""One sweep of the delivery worker (``deliver_due``), in process: it sends at most its
concurrency at once and leases no more than it can soon send, so other workers take the rest;
it first fails the rows a dead worker left on their last try; a stop request claims nothing;
the send pool it was lent stays open, the one it made is closed."""

import datetime
import threading
import time
from types import SimpleNamespace

import pytest

from tracker.db import db
from tracker.delivery.queue import LEASE_LOST
from tracker.delivery.sender import Answer, SendPool
from tracker.models import Delivery, DeliveryAttempt

from postback_helpers import NOW, sweep

# These tests mostly wait on real timeouts: every such file is in the xdist group "waits", run by
# one test process while the others use the cores (tests/conftest.py starts one more than cores).
pytestmark = pytest.mark.xdist_group("waits")

SECOND = datetime.timedelta(seconds=1)


def queue_rows(count, **fields):
    with db.connection_context():
        return [
            Delivery.create(
                trigger="conversion",
                method="GET",
                url="http://receiver.example/pb?n=%d" % n,
                next_attempt_at=NOW,
                created_at=NOW,
                **fields,
            )
            for n in range(count)
        ]


def count(status):
    with db.connection_context():
        return Delivery.select().where(Delivery.status == status).count()


def ok(delivery, timeout):
    return Answer(200, b"ok")


def test_a_sweep_sends_at_most_its_concurrency_at_once_and_leases_twice_that(make_app):
    app = make_app(
        TRACKER_DELIVERY_CONCURRENCY=3,
        TRACKER_DELIVERY_PER_HOST=10,
        TRACKER_DELIVERY_BATCH=1,
        TRACKER_DELIVERY_LEASE=30,
        TRACKER_WORKER_INTERVAL=0.05,
    )
    queue_rows(10)
    release, lock, in_flight = threading.Event(), threading.Lock(), {"now": 0, "max": 0}

    def held(delivery, timeout):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        release.wait(10)
        with lock:
            in_flight["now"] -= 1
        return Answer(200, b"ok")

    done = []
    worker = threading.Thread(target=lambda: done.append(sweep(app, send=held)))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while in_flight["now"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time enough for a fourth send, or a larger claim, to show
        assert in_flight["max"] == 3
        assert (count("sending"), count("queued")) == (6, 4)  # the rest are left to other workers
    finally:
        release.set()
        worker.join(20)
    assert done == [10] and count("delivered") == 10 and in_flight["max"] == 3


def test_a_sweep_first_fails_the_rows_a_dead_worker_left_on_their_last_try(delivery_app):
    # delivery_app retries twice: a row leased on its third attempt had no try left
    lost = {"status": "sending", "lease_until": NOW - SECOND}
    last, earlier = queue_rows(1, attempts_count=2, **lost) + queue_rows(1, attempts_count=1, **lost)
    sent = []
    assert sweep(delivery_app, send=lambda d, t: sent.append(d.id) or Answer(200)) == 1
    with db.connection_context():
        assert (Delivery.get_by_id(last.id).status, Delivery.get_by_id(last.id).last_error) == (
            "failed",
            LEASE_LOST,
        )
        assert Delivery.get_by_id(earlier.id).status == "delivered"
        assert DeliveryAttempt.select().where(DeliveryAttempt.delivery == last.id).count() == 1
    assert sent == [earlier.id]


def test_a_sweep_asked_to_stop_claims_nothing(delivery_app):
    queue_rows(2)
    stop = threading.Event()
    stop.set()
    assert sweep(delivery_app, send=ok, stop=stop) == 0
    assert count("queued") == 2


def test_a_sweep_leaves_a_lent_pool_open_and_closes_the_one_it_made(delivery_app):
    queue_rows(1)
    pool = SendPool(2, 2)
    try:
        assert sweep(delivery_app, send=ok, pool=pool) == 1
        assert pool.executor.submit(lambda: "still open").result(5) == "still open"
    finally:
        pool.shutdown()
    before = {t for t in threading.enumerate() if t.name.startswith("delivery")}
    queue_rows(1)
    assert sweep(delivery_app, send=ok) == 1
    left = {t for t in threading.enumerate() if t.name.startswith("delivery") and t.is_alive()}
    assert left <= before  # the sweep's own sending threads are gone


def test_a_sweep_sends_what_falls_due_while_a_slow_send_is_still_in_flight(make_app):
    app = make_app(TRACKER_WORKER_INTERVAL=0.05)
    (first,) = queue_rows(1)
    second_started, overlapped, sent = threading.Event(), [], []

    def send(delivery, timeout):
        sent.append(delivery.id)
        if delivery.id == first.id:  # a conversion arrives while the first postback is on its way
            queue_rows(1)
            overlapped.append(second_started.wait(5))
        else:
            second_started.set()
        return Answer(200, b"ok")

    assert sweep(app, send=send) == 2
    assert sent[0] == first.id and overlapped == [True] and count("delivered") == 2


def test_each_answer_is_recorded_as_it_arrives_not_when_the_slowest_send_ends(make_app):
    app = make_app(TRACKER_WORKER_INTERVAL=10)
    fast, slow = queue_rows(2)
    seen = []

    def send(delivery, timeout):
        if delivery.id == slow.id:  # the receiver of this one is slow: the other is long done
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and count("delivered") == 0:
                time.sleep(0.02)
            seen.append(count("delivered"))
        return Answer(200, b"ok")

    assert sweep(app, send=send) == 2
    assert seen == [1] and count("delivered") == 2


def test_a_sweep_claims_again_at_once_while_its_claims_come_back_full(make_app):
    # a window of 2 rows: five due rows take three claims, with no pause between them
    app = make_app(TRACKER_DELIVERY_CONCURRENCY=1, TRACKER_DELIVERY_BATCH=2, TRACKER_WORKER_INTERVAL=30)
    queue_rows(5)
    started = time.monotonic()
    assert sweep(app, send=ok) == 5
    assert count("delivered") == 5 and time.monotonic() - started < 10


def test_a_row_that_waited_until_its_lease_was_nearly_over_is_given_back_not_sent(make_app):
    app = make_app(
        TRACKER_DELIVERY_CONNECT_TIMEOUT=0.1,
        TRACKER_DELIVERY_READ_TIMEOUT=0.1,
        TRACKER_DELIVERY_LEASE=1.3,  # 0.55 s of it is kept to record the outcome: 0.75 s to send
        TRACKER_DELIVERY_CONCURRENCY=1,
    )
    rows = queue_rows(2)
    sent = []

    def slow(delivery, timeout):
        sent.append(delivery.id)
        time.sleep(0.6)
        return Answer(200, b"ok")

    assert sweep(app, send=slow) == 1  # one attempt: the row given back made none
    assert len(sent) == 1  # the other row waited in the pool meanwhile
    (waiting,) = [row for row in rows if row.id not in sent]
    with db.connection_context():
        again = Delivery.get_by_id(waiting.id)
        assert (again.status, again.attempts_count, again.lease_until) == ("queued", 0, None)
        assert DeliveryAttempt.select().where(DeliveryAttempt.delivery == waiting.id).count() == 0


def test_a_claim_none_of_whose_rows_could_be_sent_is_given_back_and_the_sweep_ends(make_app):
    # the host's only slot is held by a send still in flight from before, past what the new
    # claim's lease leaves for a whole deadline: the rows go back unsent, and the sweep ends
    # instead of claiming them again and again while the slot stays taken
    app = make_app(
        TRACKER_DELIVERY_CONNECT_TIMEOUT=0.1,
        TRACKER_DELIVERY_READ_TIMEOUT=0.1,
        TRACKER_DELIVERY_LEASE=1.3,  # 0.55 s kept to record: a send must start within 0.55 s
        TRACKER_DELIVERY_CONCURRENCY=2,
        TRACKER_DELIVERY_PER_HOST=1,
        TRACKER_DELIVERY_BATCH=4,  # the window: 4 rows, all of them claimed at once
    )
    queue_rows(4)
    pool, release, sent = SendPool(2, 1), threading.Event(), []
    try:
        row = SimpleNamespace(id=0, url="http://receiver.example/earlier")
        held = pool.submit(
            lambda d, t: release.wait(0.8) or Answer(200, b"ok"), row, None, (0.1, 0.1), lambda: NOW
        )
        time.sleep(0.05)  # the earlier send has the host's slot
        started = time.monotonic()
        assert sweep(app, send=lambda d, t: sent.append(d.id) or Answer(200, b"ok"), pool=pool) == 0
        assert time.monotonic() - started < 1.5 and held.result().answer.status_code == 200
    finally:
        release.set()
        pool.shutdown()
    assert sent == [] and count("queued") == 4  # given back, due again, no attempt counted
    with db.connection_context():
        assert DeliveryAttempt.select().count() == 0


@pytest.mark.parametrize(
    "batch, leased_as_each_send_ends",
    [
        (3, [3, 3, 2, 1]),  # a window of 3: refilled as soon as one row is free
        (4, [4, 3, 3, 2, 1]),  # a window of 4: refilled once two rows are free, not one
    ],
)
def test_a_sweep_leases_more_once_half_its_window_is_free(make_app, batch, leased_as_each_send_ends):
    app = make_app(TRACKER_DELIVERY_CONCURRENCY=1, TRACKER_DELIVERY_BATCH=batch, TRACKER_WORKER_INTERVAL=30)
    queue_rows(batch + 1)
    leased = []

    def send(delivery, timeout):
        time.sleep(0.3)  # the worker records the last answer and may claim more meanwhile
        leased.append(count("sending"))
        return Answer(200, b"ok")

    assert sweep(app, send=send) == batch + 1
    assert leased == leased_as_each_send_ends
