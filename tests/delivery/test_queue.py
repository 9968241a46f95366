"""The delivery queue's rules, in process: a claim takes at most its limit, oldest due first,
leased; retrying one delivery touches no other; a delivered row counts its attempts and
forgets its last error."""

import datetime
import logging

import pytest

from tracker.db import db
from tracker.delivery.queue import (
    LEASE_LOST,
    Settings,
    claim,
    next_step,
    reclaim_expired,
    record,
    retry,
    retry_after_seconds,
)
from tracker.delivery.sender import Answer, Sent
from tracker.errors import NotFound, ValidationError
from tracker.models import Delivery, DeliveryAttempt, utcnow

from postback_helpers import NOW, catch_all, sweep

SECOND = datetime.timedelta(seconds=1)


def due(url="https://pb.example/", **fields):
    fields = {"next_attempt_at": NOW, "method": "GET", **fields}
    return Delivery.create(trigger="conversion", url=url, created_at=NOW, **fields)


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
        assert Delivery.get_by_id(oldest.id).updated_at == NOW  # the claim shows when it was sent
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


def test_retrying_a_delivery_that_does_not_exist_says_which_one_is_missing(app):
    with db.connection_context():
        due(status="failed", attempts_count=3)
        with pytest.raises(NotFound) as refused:
            retry(999_999, now=NOW)
        assert refused.value.message == "delivery 999999 not found"
        assert Delivery.get().status == "failed"  # the one row there is left as it is


def test_a_delivery_being_sent_cannot_be_retried_and_keeps_its_lease(app):
    with db.connection_context():
        sending = due(status="sending", attempts_count=1, lease_until=NOW + 60 * SECOND)
        with pytest.raises(ValidationError) as refused:
            retry(sending.id, now=NOW + SECOND)
        assert (refused.value.status, refused.value.message) == (
            422,
            "delivery %d is being sent right now" % sending.id,
        )
        assert state(sending) == ("sending", 1, "", NOW + 60 * SECOND)


def test_a_retried_delivery_shows_when_it_was_queued_again_and_the_log_says_from_what(app, caplog):
    caplog.set_level(logging.INFO, logger="tracker.delivery.queue")
    with db.connection_context():
        failed = due(status="failed", attempts_count=3, last_error="HTTP 500", updated_at=NOW)
        again = retry(failed.id, now=NOW + 5 * SECOND)
        assert (again.status, again.updated_at) == ("queued", NOW + 5 * SECOND)
    assert "delivery %d queued again (was failed)" % failed.id in caplog.messages


def delivered(row, at):
    """What the sender hands back for a row whose receiver answered 200."""
    return Sent(row, None, at, 5.0, Answer(200, b"ok"))


def test_a_delivered_attempt_settles_its_own_row_only_not_the_rest_of_its_claim(delivery_app, caplog):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        first, second = due(), due()
        rows, lease = claim(NOW, 10, settings.lease)
        assert {row.claim_token for row in rows} == {rows[0].claim_token}  # one claim, one token
        mine = next(row for row in rows if row.id == first.id)
        record([delivered(mine, NOW + SECOND)], settings, lambda: NOW + 2 * SECOND)
        assert state(first) == ("delivered", 1, "", None)
        assert Delivery.get_by_id(first.id).updated_at == NOW + 2 * SECOND
        assert state(second) == ("sending", 0, "", lease)  # still in flight: not settled
    assert "finished after its lease was taken over" not in caplog.text


def test_answers_arriving_after_their_rows_were_reclaimed_change_nothing_and_are_named(delivery_app, caplog):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        first, second = due(), due()
        rows, _ = claim(NOW, 10, settings.lease)
        later = NOW + (settings.lease + 1) * SECOND
        assert reclaim_expired(later, settings.retry_delays) == 2  # the worker was presumed dead
        record([delivered(row, later) for row in rows], settings, lambda: later)
        assert state(first) == state(second) == ("retrying", 1, LEASE_LOST, None)
    ids = ", ".join(str(row.id) for row in rows)
    assert (
        "delivery %s: this attempt (delivered) finished after its lease was taken over; it is kept "
        "in the attempt log and changes nothing" % ids
    ) in caplog.messages


def not_sent(row, at):
    """What the sender hands back for a row it did not send: too little of its lease was left."""
    return Sent(row, None, at, 0.0, None, "not sent: its lease was nearly over", unsent=True)


def test_a_row_not_sent_for_want_of_lease_is_due_again_at_once_with_no_attempt_counted(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        new = due(updated_at=NOW)
        retried = due(status="retrying", attempts_count=2, last_error="HTTP 500", updated_at=NOW)
        rows, _ = claim(NOW, 10, settings.lease)
        then = NOW + 3 * SECOND
        record([not_sent(row, then) for row in rows], settings, lambda: then)
        assert state(new) == ("queued", 0, "", None)
        assert state(retried) == ("retrying", 2, "HTTP 500", None)
        for row in (new, retried):
            again = Delivery.get_by_id(row.id)
            assert (again.next_attempt_at, again.updated_at) == (then, then)
        assert DeliveryAttempt.select().count() == 0
        assert sorted(row.id for row in claim(then, 10, settings.lease)[0]) == sorted([new.id, retried.id])


def test_a_row_given_back_after_its_claim_was_taken_over_stays_with_its_new_owner(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        row = due()
        (stale,), _ = claim(NOW, 10, settings.lease)
        later = NOW + (settings.lease + 1) * SECOND
        reclaim_expired(later, settings.retry_delays)
        record([not_sent(stale, later)], settings, lambda: later)  # reclaimed: not sending any more
        assert state(row) == ("retrying", 1, LEASE_LOST, None)
        (current,), lease = claim(later, 10, settings.lease)
        record([not_sent(stale, later)], settings, lambda: later)  # sending again, for another claim
        assert state(row) == ("sending", 1, LEASE_LOST, lease)
        assert Delivery.get_by_id(row.id).claim_token == current.claim_token


def test_retry_4xx_retries_every_client_error_from_400_on():
    delays = [60, 300]
    for code in (400, 401, 404, 499):
        assert next_step(code, 1, delays, NOW, retry_4xx=True)[0] == "retrying"
        assert next_step(code, 1, delays, NOW)[0] == "failed"
    assert next_step(399, 1, delays, NOW, retry_4xx=True)[0] == "failed"  # a redirect still fails


def test_only_a_429_or_503_waits_for_its_retry_after_and_never_longer_than_a_week():
    no_jitter = 0.5  # 0.9 + 0.2 * 0.5: the delay as configured
    for code in (500, 502, 408):
        at = next_step(code, 1, [60], NOW, retry_after="3600", rand=lambda: no_jitter)[1]
        assert at == NOW + 60 * SECOND
    for code in (429, 503):
        at = next_step(code, 1, [60], NOW, retry_after="3600", rand=lambda: no_jitter)[1]
        assert at == NOW + 3600 * SECOND
        at = next_step(code, 1, [60], NOW, retry_after="99999999", rand=lambda: no_jitter)[1]
        assert at == NOW + datetime.timedelta(days=7)


def answered(row, at, code, body=b""):
    return Sent(row, None, at, 5.0, Answer(code, body))


def test_a_failed_attempt_reschedules_its_row_frees_its_lease_and_stamps_the_change(delivery_app, caplog):
    settings = Settings.from_config(delivery_app.config)  # retry delays 0.1, 0.1
    with db.connection_context():
        server_error = due(updated_at=NOW)
        (row,), _ = claim(NOW, 10, settings.lease)
        then = NOW + 2 * SECOND
        record([answered(row, then, 500)], settings, lambda: then)
        assert state(server_error) == ("retrying", 1, "HTTP 500", None)
        again = Delivery.get_by_id(server_error.id)
        assert again.updated_at == then and then < again.next_attempt_at <= then + SECOND
    assert "finished after its lease was taken over" not in caplog.text


def test_a_2xx_that_does_not_match_success_body_fails_at_once_even_with_retries_left(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        for code in (200, 201):
            tiktok = due(success_body='"code": ?0\\b')
            (row,), _ = claim(NOW, 10, settings.lease)
            record([answered(row, NOW, code, b'{"code": 40001}')], settings, lambda: NOW)
            assert state(tiktok)[:2] == ("failed", 1)


def test_a_postback_set_to_retry_4xx_is_retried_after_a_404(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        patient, strict = due(retry_4xx=True), due()
        rows, _ = claim(NOW, 10, settings.lease)
        record([answered(row, NOW, 404) for row in rows], settings, lambda: NOW)
        assert state(patient)[:3] == ("retrying", 1, "HTTP 404")
        assert state(strict)[:3] == ("failed", 1, "HTTP 404")


def test_a_failure_arriving_after_its_row_was_taken_over_changes_nothing_and_is_named(delivery_app, caplog):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        target = due()
        (stale,), _ = claim(NOW, 10, settings.lease)
        later = NOW + (settings.lease + 1) * SECOND
        reclaim_expired(later, settings.retry_delays)
        record([answered(stale, later, 500)], settings, lambda: later)  # reclaimed: retrying
        assert state(target) == ("retrying", 1, LEASE_LOST, None)
        (current,), lease = claim(later, 10, settings.lease)
        record([answered(stale, later, 500)], settings, lambda: later)  # sending, for another claim
        assert state(target) == ("sending", 1, LEASE_LOST, lease)
    message = (
        "delivery %d: this attempt (retrying) finished after its lease was taken over; it is kept "
        "in the attempt log and changes nothing" % target.id
    )
    assert caplog.messages.count(message) == 2


def test_success_body_decides_whether_a_2xx_delivered_and_a_miss_says_what_came_back(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    pattern = '"code": ?0\\b'
    with db.connection_context():
        ok, refused, empty = (due(success_body=pattern) for _ in range(3))
        rows = {row.id: row for row in claim(NOW, 10, settings.lease)[0]}
        long = b'{"code": 40001, "message": "%s"}' % (b"m" * 1200)
        bodies = {ok.id: b'{"code": 0}', refused.id: long, empty.id: b""}
        record([answered(rows[i], NOW, 200, body) for i, body in bodies.items()], settings, lambda: NOW)
        assert state(ok) == ("delivered", 1, "", None)
        assert state(refused)[2] == (
            'HTTP 200, but the answer does not match success_body "code": ?0\\b: %s' % long.decode()[:1000]
        )
        assert (
            state(empty)[2] == 'HTTP 200, but the answer does not match success_body "code": ?0\\b: (empty)'
        )


def test_a_300_answer_is_a_redirect_not_a_delivery(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        choices = due()
        (row,), _ = claim(NOW, 10, settings.lease)
        record([answered(row, NOW, 300)], settings, lambda: NOW)
        assert state(choices) == ("failed", 1, "HTTP 300: redirect to ? (redirects are not followed)", None)


def test_a_lease_is_reclaimed_only_once_it_has_ended_and_the_log_says_what_follows(app, caplog):
    with db.connection_context():
        ending_now = due(status="sending", lease_until=NOW, attempts_count=0)
        assert reclaim_expired(NOW, [60, 300]) == 0  # a lease that ends now is not over yet
        assert state(ending_now) == ("sending", 0, "", NOW)
        last_try = due(status="sending", lease_until=NOW, attempts_count=2)
        later = NOW + SECOND
        assert reclaim_expired(later, [60, 300]) == 2
        for row, status in ((ending_now, "retrying"), (last_try, "failed")):
            again = Delivery.get_by_id(row.id)
            assert (again.status, again.next_attempt_at, again.updated_at) == (status, later, later)
    assert "delivery %d: %s; sending it again" % (ending_now.id, LEASE_LOST) in caplog.messages
    assert "delivery %d: %s; failed: no retry left" % (last_try.id, LEASE_LOST) in caplog.messages


def test_what_a_receiver_answered_is_kept_readable_whatever_bytes_it_sent(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    with db.connection_context():
        latin1, nul = due(), due()
        rows = {row.id: row for row in claim(NOW, 10, settings.lease)[0]}
        bodies = {latin1.id: "Fehler: ungültig".encode("latin-1"), nul.id: b"ok\x00done"}
        record([answered(rows[i], NOW, 500, body) for i, body in bodies.items()], settings, lambda: NOW)
        kept = {a.delivery_id: a.response for a in DeliveryAttempt.select()}
        assert kept == {latin1.id: "Fehler: ung\ufffdltig", nul.id: "okdone"}


def test_a_redirect_names_where_it_pointed_cut_to_500_characters(delivery_app):
    settings = Settings.from_config(delivery_app.config)
    far = "https://elsewhere.example/" + "x" * 600
    with db.connection_context():
        moved, permanent = due(), due()
        rows = {row.id: row for row in claim(NOW, 10, settings.lease)[0]}
        record(
            [
                Sent(rows[moved.id], None, NOW, 5.0, Answer(302, b"", {"Location": far})),
                Sent(rows[permanent.id], None, NOW, 5.0, Answer(301, b"", {})),
            ],
            settings,
            lambda: NOW,
        )
        assert state(moved)[2] == "HTTP 302: redirect to %s (redirects are not followed)" % far[:500]
        assert state(permanent)[2] == "HTTP 301: redirect to ? (redirects are not followed)"


def test_each_attempt_is_logged_a_failure_with_its_masked_headers_a_delivery_quietly(delivery_app, caplog):
    caplog.set_level(logging.DEBUG, logger="tracker.delivery.queue")
    settings = Settings.from_config(delivery_app.config)
    headers = {"Authorization": "Bearer s3cret", "X-Pixel": "px-1"}
    with db.connection_context():
        failing = due("https://pb.example/fail", method="POST", headers=headers)
        fine = due("https://pb.example/ok", method="POST", headers=headers)
        long_url = "https://pb.example/plain?" + "q" * 300
        plain = due(long_url)
        moved = due("https://pb.example/moved")
        rows = {row.id: row for row in claim(NOW, 10, settings.lease)[0]}
        codes = {failing.id: 500, fine.id: 200, plain.id: 404}
        far = {"Location": "https://elsewhere.example/" + "x" * 400}
        answers = [answered(rows[i], NOW, code) for i, code in codes.items()]
        answers.append(Sent(rows[moved.id], None, NOW, 5.0, Answer(302, b"", far)))
        record(answers, settings, lambda: NOW)
        error = state(moved)[2]
    logged = {r.getMessage(): r.levelname for r in caplog.records if r.name == "tracker.delivery.queue"}
    assert (
        logged
        == {
            "delivery %d POST https://pb.example/fail {'Authorization': '***', 'X-Pixel': 'px-1'} → HTTP 500"
            % failing.id: "INFO",
            "delivery %d POST https://pb.example/ok → 200" % fine.id: "DEBUG",
            "delivery %d GET %s → HTTP 404" % (plain.id, long_url[:200]): "INFO",  # cut to 200
            "delivery %d GET https://pb.example/moved → %s" % (moved.id, error[:300]): "INFO",  # to 300
        }
    )
    assert len(error) > 300


def test_the_longest_waiting_rows_are_claimed_first_whatever_order_they_were_queued_in(app):
    with db.connection_context():
        newest = due(next_attempt_at=NOW - SECOND)
        older = due(next_attempt_at=NOW - 2 * SECOND, status="retrying")
        oldest = due(next_attempt_at=NOW - 3 * SECOND)
        assert sorted(row.id for row in claim(NOW, 2, 60)[0]) == sorted([older.id, oldest.id])
        assert [row.id for row in claim(NOW, 2, 60)[0]] == [newest.id]
