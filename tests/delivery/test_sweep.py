"""One sweep of the delivery worker (``deliver_due``), in process: it sends at most its
concurrency at once and leases no more than it can soon send, so other workers take the rest;
it first fails the rows a dead worker left on their last try; a stop request claims nothing;
the send pool it was lent stays open, the one it made is closed."""

import datetime
import threading
import time

from tracker.db import db
from tracker.delivery.queue import LEASE_LOST
from tracker.delivery.sender import Answer, SendPool
from tracker.models import Delivery, DeliveryAttempt

from postback_helpers import NOW, sweep

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


def test_a_sweep_also_sends_what_fell_due_while_its_sends_were_in_flight(make_app):
    app = make_app(TRACKER_WORKER_INTERVAL=0.05)
    (first,) = queue_rows(1)
    sent = []

    def slow(delivery, timeout):
        if not sent:  # a conversion arrives while the first postback is on its way
            queue_rows(1)
        sent.append(delivery.id)
        time.sleep(0.3)
        return Answer(200, b"ok")

    assert sweep(app, send=slow) == 2
    assert sent[0] == first.id and len(set(sent)) == 2 and count("delivered") == 2
