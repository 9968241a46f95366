"""No delivery is lost and none is sent twice by two workers (DESIGN §4.8), with real worker
processes and a real loopback receiver: a worker SIGKILLed mid-batch (at least once, at most
twice, the duplicate in the attempt log), and two workers with a receiver that trickles its
200 slower than the lease (each attempt arrives exactly once, the retry limit holds)."""

import signal
import time

import pytest
from fault_helpers import FAULT_ENV, Receiver, wait_for

from tracker.db import db
from tracker.models import Delivery, DeliveryAttempt, utcnow

pytestmark = pytest.mark.e2e

LEASE = 3.0
FAST = {
    **FAULT_ENV,
    "TRACKER_WORKER_INTERVAL": "0.2",
    "TRACKER_DELIVERY_CONNECT_TIMEOUT": "0.5",
    "TRACKER_DELIVERY_READ_TIMEOUT": "1",  # the whole send: 1.5 s at most
    "TRACKER_DELIVERY_LEASE": str(LEASE),
}


def queue(urls):
    now = utcnow()
    with db.atomic():
        return [
            Delivery.create(trigger="click", url=url, next_attempt_at=now, created_at=now) for url in urls
        ]


def statuses():
    db.close()  # a fresh connection sees the workers' commits at once
    return [d.status for d in Delivery.select().order_by(Delivery.id)]


def attempts_of(delivery_id):
    return list(
        DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery_id).order_by(DeliveryAttempt.id)
    )


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_each_at_most_twice(start_server):
    def slow_ok(handler):
        time.sleep(0.3)
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    receiver = Receiver(slow_ok)
    try:
        paths = ["/pb?n=%d" % n for n in range(30)]
        deliveries = queue(receiver.url + path for path in paths)
        # a send that timed out on a busy machine is retried in a second, not in a minute
        env = {**FAST, "TRACKER_DELIVERY_CONCURRENCY": "4", "TRACKER_RETRY_DELAYS": "1,1,1,1,1,1"}
        first = start_server("worker", env=env)
        wait_for(lambda: sum(receiver.counts().values()) >= 6, 60, "the first sends")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        killed_at = sum(receiver.counts().values())
        start_server("worker", env=env)
        wait_for(lambda: statuses() == ["delivered"] * 30, 90, "every delivery")
        counts = receiver.counts()
        assert sorted(counts) == sorted(paths)  # none lost
        assert set(counts.values()) <= {1, 2}  # none sent more than twice
        twice = sorted(path for path, count in counts.items() if count == 2)
        unanswered = sorted(
            "/pb?n=%d" % n
            for n, delivery in enumerate(deliveries)
            if any(a.status_code is None for a in attempts_of(delivery.id))
        )
        # Each duplicate is in the attempt log as an attempt with no answer: the killed
        # worker's lost leases (its sends in flight and those it had not recorded yet, so no
        # bound by its concurrency; also rows it claimed but had not sent), or a send that timed
        # out after the receiver had it.
        assert set(twice) <= set(unanswered)
        print("killed after %d arrivals: 30 delivered, %d sent twice" % (killed_at, len(twice)))
    finally:
        receiver.close()


def test_two_workers_and_a_receiver_slower_than_the_lease_send_each_attempt_once(start_server):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):  # 30 s for the whole answer: ten leases
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.3)

    receiver = Receiver(trickle)
    try:
        (delivery,) = queue([receiver.url + "/trickle"])
        env = {**FAST, "TRACKER_RETRY_DELAYS": "1"}  # one retry, then failed
        start_server("worker", env=env)
        start_server("worker", env=env)
        wait_for(lambda: statuses() == ["failed"], 60, "the delivery to fail")
        time.sleep(LEASE + 1)  # a lease more: nothing else may arrive
        arrivals = receiver.arrivals["/trickle"]
        attempts = attempts_of(delivery.id)
        assert len(arrivals) == 2 == len(attempts), [
            a.error for a in attempts
        ]  # the first attempt, one retry
        assert Delivery.get_by_id(delivery.id).attempts_count == 2
        assert all("deadline of 1.5 s" in a.error for a in attempts), [a.error for a in attempts]
        (first_start, first_end), (second_start, _) = sorted(arrivals)
        assert first_end <= second_start  # never two sends of it at once
        assert first_end - first_start < LEASE  # cut at the deadline, inside the lease
    finally:
        receiver.close()
