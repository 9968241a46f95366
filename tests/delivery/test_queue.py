"""The delivery queue's rules, in process: a claim takes at most its limit, oldest due first,
leased; retrying one delivery touches no other; a delivered row counts its attempts and
forgets its last error."""

import datetime

from tracker.db import db
from tracker.delivery.queue import claim, retry, retry_after_seconds
from tracker.models import Delivery, utcnow

from postback_helpers import NOW, catch_all, sweep

SECOND = datetime.timedelta(seconds=1)


def due(url="https://pb.example/", **fields):
    fields.setdefault("next_attempt_at", NOW)
    return Delivery.create(trigger="conversion", method="GET", url=url, created_at=NOW, **fields)


def state(delivery):
    row = Delivery.get_by_id(delivery.id)
    return row.status, row.attempts_count, row.last_error, row.lease_until


def test_a_claim_takes_at_most_its_limit_oldest_due_first_and_leases_them(app):
    with db.connection_context():
        second = due(next_attempt_at=NOW - 2 * SECOND)
        oldest = due(next_attempt_at=NOW - 3 * SECOND)
        third = due(next_attempt_at=NOW - SECOND, status="retrying")
        later = due(next_attempt_at=NOW + SECOND)
        done = due(next_attempt_at=NOW - 9 * SECOND, status="delivered")
        rows, lease = claim(NOW, 2, 60)
        assert lease == NOW + 60 * SECOND
        assert sorted(row.id for row in rows) == sorted([oldest.id, second.id])
        assert state(oldest) == state(second) == ("sending", 0, "", lease)
        assert state(third) == ("retrying", 0, "", None) and state(later)[0] == "queued"
        assert [row.id for row in claim(NOW, 2, 60)[0]] == [third.id]
        assert claim(NOW, 2, 60)[0] == [] and state(done)[0] == "delivered"


def test_retrying_one_delivery_leaves_every_other_delivery_as_it_is(app):
    with db.connection_context():
        delivered = due(status="delivered", attempts_count=1)
        failed = due(status="failed", attempts_count=7, last_error="HTTP 404")
        target = due(status="failed", attempts_count=3, last_error="HTTP 500")
        retry(target.id, now=NOW + SECOND)
        assert state(delivered) == ("delivered", 1, "", None)
        assert state(failed) == ("failed", 7, "HTTP 404", None)
        assert state(target) == ("queued", 0, "", None)
        assert Delivery.get_by_id(target.id).next_attempt_at == NOW + SECOND


def test_a_delivered_row_counts_its_attempts_and_forgets_its_last_error(delivery_app, receiver):
    catch_all(receiver, status=500)
    with db.connection_context():
        delivery = due(receiver.url_for("/pb"))
    assert sweep(delivery_app) == 1
    with db.connection_context():
        first = Delivery.get_by_id(delivery.id)
        assert (first.status, first.attempts_count, first.last_error) == ("retrying", 1, "HTTP 500")
    receiver.clear()
    catch_all(receiver, status=200)
    assert sweep(delivery_app, now=first.next_attempt_at + SECOND) == 1
    with db.connection_context():
        assert state(delivery) == ("delivered", 2, "", None)


def test_a_retry_after_date_counts_from_utc_whatever_the_machines_zone(machine_in_new_york):
    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Wed, 01 May 2024 14:00:30 +0200", NOW) == 30.0
    assert retry_after_seconds("Wed, 01 May 2024 11:59:00 GMT", NOW) == 0.0


def test_a_delivery_retried_now_is_due_now_whatever_the_machines_zone(app, machine_in_new_york):
    with db.connection_context():
        failed = due(status="failed", attempts_count=7, last_error="HTTP 404")
        before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        retry(failed.id)
        after = utcnow()
        assert before <= Delivery.get_by_id(failed.id).next_attempt_at <= after
        assert [row.id for row in claim(after, 10, 60)[0]] == [failed.id]
