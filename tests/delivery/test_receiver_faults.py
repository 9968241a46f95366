"""Receiver faults against real servers on loopback: the outcome of each attempt, the retry
schedule, and a worker loop that survives whatever one delivery does."""

import datetime
import socket
import threading
import time
from email.utils import format_datetime

import pytest
from werkzeug import Response

from tracker.delivery.destinations import Policy
from tracker.delivery.queue import next_step, retry_after_seconds
from tracker.delivery.sender import Answer, send_http
from tracker.models import Delivery, DeliveryAttempt

from conftest import free_port
from postback_helpers import NOW, catch_all, received, sweep, utc_from

# These tests mostly wait on real timeouts: every such file is in the xdist group "waits", run by
# one test process while the others use the cores (tests/conftest.py starts one more than cores).
pytestmark = pytest.mark.xdist_group("waits")


def queue(url, **fields):
    """A due delivery straight in the queue, as the outbox saves one."""
    return Delivery.create(
        **dict(
            {"trigger": "conversion", "method": "GET", "url": url, "next_attempt_at": NOW, "created_at": NOW},
            **fields,
        )
    )


def attempts(delivery):
    return list(
        DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery.id).order_by(DeliveryAttempt.id)
    )


def reload(delivery):
    return Delivery.get_by_id(delivery.id)


class RawServer:
    """A TCP server on loopback that answers each connection with ``behave(conn)``."""

    def __init__(self, behave):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d/raw" % self.sock.getsockname()[1]
        self.behave, self.connections = behave, 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(65536)
                self.behave(conn)

    def close(self):
        self.sock.close()


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def garbage(conn):
    conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")


@pytest.fixture
def raw_server():
    servers = []

    def make(behave):
        servers.append(RawServer(behave))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_500_then_200_is_delivered_on_the_retry_with_both_attempts(delivery_app, receiver):
    receiver.expect_ordered_request("/pb").respond_with_data("busy", status=500)
    receiver.expect_ordered_request("/pb").respond_with_data("ok")
    delivery = queue(receiver.url_for("/pb"))
    assert sweep(delivery_app) == 1
    first = reload(delivery)
    assert (first.status, first.attempts_count, first.last_error) == ("retrying", 1, "HTTP 500")
    assert (
        NOW + datetime.timedelta(seconds=0.09)
        <= first.next_attempt_at
        <= NOW + datetime.timedelta(seconds=0.11)
    )
    assert sweep(delivery_app) == 0  # not due yet at the same instant
    assert sweep(delivery_app, now=utc_from(1)) == 1
    assert reload(delivery).status == "delivered"
    assert [(a.status_code, a.response, a.error) for a in attempts(delivery)] == [
        (500, "busy", "HTTP 500"),
        (200, "ok", ""),
    ]
    assert len(received(receiver)) == 2


def test_retries_follow_the_schedule_then_fail(delivery_app, receiver):
    catch_all(receiver, status=503)
    delivery = queue(receiver.url_for("/pb"))
    for second, status in ((0, "retrying"), (1, "retrying"), (2, "failed")):
        assert sweep(delivery_app, now=utc_from(second)) == 1
        assert reload(delivery).status == status
    assert sweep(delivery_app, now=utc_from(60)) == 0
    assert [a.status_code for a in attempts(delivery)] == [503, 503, 503]


def test_a_hang_past_the_read_timeout_is_retried(delivery_app, receiver):
    release = threading.Event()
    receiver.expect_request("/hang").respond_with_handler(
        lambda request: release.wait(10) and Response("late")
    )
    delivery = queue(receiver.url_for("/hang"))
    started = time.monotonic()
    try:
        assert sweep(delivery_app) == 1
    finally:
        release.set()
    assert time.monotonic() - started < 6  # the 2 s read timeout, not the 10 s hang
    row, [attempt] = reload(delivery), attempts(delivery)
    assert row.status == "retrying"
    assert attempt.status_code is None and "timed out" in attempt.error
    assert 1900 <= attempt.duration_ms < 5000  # about the read timeout


def test_a_reset_connection_is_retried(delivery_app, raw_server):
    server = raw_server(reset)
    delivery = queue(server.url)
    assert sweep(delivery_app) == 1
    row, [attempt] = reload(delivery), attempts(delivery)
    assert row.status == "retrying" and attempt.status_code is None
    assert attempt.error == "ConnectionError: the connection was reset by the receiver"


def test_garbage_instead_of_http_is_retried(delivery_app, raw_server):
    server = raw_server(garbage)
    delivery = queue(server.url)
    assert sweep(delivery_app) == 1
    row, [attempt] = reload(delivery), attempts(delivery)
    assert (
        row.status == "retrying"
        and attempt.status_code is None
        and attempt.error.startswith("ConnectionError")
    )


def test_connection_refused_is_retried(delivery_app):
    port = free_port()
    delivery = queue("http://127.0.0.1:%d/pb" % port)
    assert sweep(delivery_app) == 1
    row, [attempt] = reload(delivery), attempts(delivery)
    assert row.status == "retrying" and attempt.status_code is None
    # in words, not urllib3's nested reprs with object addresses
    assert attempt.error == (
        "ConnectionError: connection refused by 127.0.0.1:%d: nothing accepts connections there" % port
    )


def test_400_fails_at_once_with_one_attempt(delivery_app, receiver):
    catch_all(receiver, status=400, body='{"error":"bad click id"}')
    delivery = queue(receiver.url_for("/pb"))
    assert sweep(delivery_app) == 1
    row = reload(delivery)
    assert (row.status, row.attempts_count, row.last_error) == ("failed", 1, "HTTP 400")
    assert [(a.status_code, a.response) for a in attempts(delivery)] == [(400, '{"error":"bad click id"}')]
    assert sweep(delivery_app, now=utc_from(3600)) == 0


def test_408_is_retried(delivery_app, receiver):
    catch_all(receiver, status=408)
    delivery = queue(receiver.url_for("/pb"))
    sweep(delivery_app)
    assert reload(delivery).status == "retrying"


def test_429_retry_after_seconds_is_honoured(delivery_app, receiver):
    catch_all(receiver, status=429, headers={"Retry-After": "7"})
    delivery = queue(receiver.url_for("/pb"))
    sweep(delivery_app)
    row = reload(delivery)
    assert (row.status, row.next_attempt_at) == ("retrying", utc_from(7))
    assert sweep(delivery_app, now=utc_from(6)) == 0


def test_retry_after_is_read_whatever_the_header_case(delivery_app):
    delivery = queue("http://127.0.0.1:9/pb")
    assert sweep(delivery_app, send=lambda d, t: Answer(503, b"", {"retry-after": "30"})) == 1
    assert reload(delivery).next_attempt_at == utc_from(30)


def test_429_retry_after_http_date_is_honoured(delivery_app, receiver):
    when = (NOW + datetime.timedelta(seconds=120)).replace(tzinfo=datetime.timezone.utc)
    catch_all(receiver, status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    delivery = queue(receiver.url_for("/pb"))
    sweep(delivery_app)
    assert reload(delivery).next_attempt_at == utc_from(120)


def test_302_is_not_followed_and_fails(delivery_app, receiver):
    receiver.expect_request("/pb").respond_with_data(
        "", status=302, headers={"Location": receiver.url_for("/next")}
    )
    receiver.expect_request("/next").respond_with_data("followed")
    delivery = queue(receiver.url_for("/pb"))
    assert sweep(delivery_app) == 1
    row, [attempt] = reload(delivery), attempts(delivery)
    assert row.status == "failed"
    assert attempt.status_code == 302
    assert attempt.error == "HTTP 302: redirect to %s (redirects are not followed)" % receiver.url_for(
        "/next"
    )
    assert [r.path for r in received(receiver)] == ["/pb"]


def test_response_kept_is_the_first_2kb(delivery_app, receiver):
    catch_all(receiver, body="x" * 5000 + "é")
    delivery = queue(receiver.url_for("/pb"))
    sweep(delivery_app)
    assert attempts(delivery)[0].response == "x" * 2048


def test_post_sends_the_stored_body_and_headers(delivery_app, receiver):
    catch_all(receiver)
    delivery = queue(
        receiver.url_for("/pb"),
        method="POST",
        headers={"Content-Type": "application/json"},
        body='{"v":"é 😀"}',
    )
    sweep(delivery_app)
    request = received(receiver)[0]
    assert (request.method, request.content_type, request.get_data()) == (
        "POST",
        "application/json",
        '{"v":"é 😀"}'.encode("utf-8"),
    )
    assert request.headers["User-Agent"] == "tracker-postback/1.0"
    assert reload(delivery).status == "delivered"


def test_the_loop_survives_a_sender_that_raises(delivery_app, receiver):
    catch_all(receiver)
    bad = queue("http://127.0.0.1:1/explodes")
    good = [queue(receiver.url_for("/pb?n=%d" % i)) for i in range(5)]

    def send(delivery, timeout):
        if "explodes" in delivery.url:
            raise RuntimeError("the sender blew up")
        return send_http(delivery, timeout, policy=Policy.from_config(delivery_app.config))

    assert sweep(delivery_app, send=send) == 6
    assert reload(bad).status == "retrying"
    assert attempts(bad)[0].error == "RuntimeError: the sender blew up"
    assert [reload(d).status for d in good] == ["delivered"] * 5


def test_an_expired_lease_is_reclaimed_and_sent_again(delivery_app, receiver):
    catch_all(receiver)
    delivery = queue(
        receiver.url_for("/pb"), status="sending", lease_until=NOW - datetime.timedelta(seconds=1)
    )
    held = queue(
        receiver.url_for("/held"), status="sending", lease_until=NOW + datetime.timedelta(seconds=30)
    )
    assert sweep(delivery_app) == 1
    assert [(a.status_code, a.error[:20]) for a in attempts(delivery)] == [
        (None, "no answer recorded: "),
        (200, ""),
    ]
    assert (reload(delivery).status, reload(held).status) == ("delivered", "sending")
    assert [r.path for r in received(receiver)] == ["/pb"]


def test_sends_to_one_host_stay_under_the_per_host_cap(make_app, receiver):
    app = make_app(TRACKER_DELIVERY_CONCURRENCY=8, TRACKER_DELIVERY_PER_HOST=2)
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def handler(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return Response("ok")

    receiver.expect_request("/pb").respond_with_handler(handler)
    for i in range(12):
        queue(receiver.url_for("/pb") + "?n=%d" % i)
    assert sweep(app) == 12
    assert state["max"] == 2


# --- the schedule as plain function calls ------------------------------------------------------


@pytest.mark.parametrize(
    "code,attempt,expected",
    [
        (200, 1, "delivered"),
        (204, 7, "delivered"),
        (None, 1, "retrying"),
        (500, 1, "retrying"),
        (503, 2, "retrying"),
        (408, 1, "retrying"),
        (429, 1, "retrying"),
        (300, 1, "failed"),
        (302, 1, "failed"),
        (301, 1, "failed"),
        (400, 1, "failed"),
        (404, 1, "failed"),
        (410, 1, "failed"),
        (500, 3, "failed"),
        (None, 3, "failed"),
        (700, 1, "retrying"),
    ],
)
def test_next_step_by_outcome(code, attempt, expected):
    assert next_step(code, attempt, [60, 300], NOW)[0] == expected


def test_backoff_uses_each_delay_with_ten_percent_jitter():
    delays = [60, 300, 1800]
    for attempt, delay in enumerate(delays, 1):
        low = next_step(500, attempt, delays, NOW, rand=lambda: 0.0)[1]
        high = next_step(500, attempt, delays, NOW, rand=lambda: 1.0)[1]
        assert (low - NOW).total_seconds() == pytest.approx(delay * 0.9)
        assert (high - NOW).total_seconds() == pytest.approx(delay * 1.1)


def test_retry_after_parsing():
    assert retry_after_seconds("30", NOW) == 30
    assert retry_after_seconds("Wed, 01 May 2024 12:01:00 GMT", NOW) == 60
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", NOW) == 0
    assert retry_after_seconds("soon", NOW) is None
    assert next_step(429, 1, [60], NOW, retry_after="soon", rand=lambda: 0.5)[1] == utc_from(60)


def test_a_failed_delivery_is_logged_without_its_access_token(delivery_app, receiver, caplog):
    catch_all(receiver, status=400, body="bad token")
    delivery = queue(receiver.url_for("/v18.0/PIXEL/events") + "?access_token=EAAB-secret-42&x=1")
    with caplog.at_level("INFO", logger="tracker.delivery.queue"):
        assert sweep(delivery_app) == 1
    assert reload(delivery).status == "failed"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "tracker.delivery.queue")
    assert "access_token=***&x=1" in logged
    assert "EAAB-secret-42" not in logged
