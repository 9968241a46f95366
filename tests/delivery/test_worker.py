"""The delivery worker as real processes: killed mid-send, two at once on one database,
stopped with SIGTERM, and the whole product through ``tracker serve``: a click, a real
``/postback``, both deliveries at a loopback receiver and their attempts in the API."""

import collections
import signal
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug import Response

from tracker.db import db
from tracker.models import Delivery, DeliveryAttempt, utcnow

from postback_helpers import catch_all, received

FAST = {
    "TRACKER_WORKER_INTERVAL": "0.2",
    "TRACKER_DELIVERY_CONNECT_TIMEOUT": "1",
    "TRACKER_DELIVERY_READ_TIMEOUT": "2",
    "TRACKER_DELIVERY_LEASE": "4",
    "TRACKER_RETRY_DELAYS": "0.2,0.2",
}


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def queue(url):
    now = utcnow()
    return Delivery.create(trigger="conversion", url=url, next_attempt_at=now, created_at=now)


def status_of(delivery):
    db.close()  # a fresh connection sees other processes' commits at once
    return Delivery.get_by_id(delivery.id).status


def test_a_worker_killed_mid_send_is_resent_after_its_lease_expires(start_server, receiver):
    release = threading.Event()
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            release.wait(20)  # the first worker dies while this request is in flight
        return Response("ok")

    receiver.expect_request("/pb").respond_with_handler(handler)
    delivery = queue(receiver.url_for("/pb"))
    try:
        first = start_server("worker", env=FAST)
        wait_for(lambda: calls, 15, "the first send")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        assert status_of(delivery) == "sending"
        start_server("worker", env=FAST)
        wait_for(lambda: status_of(delivery) == "delivered", 20, "the resend")
    finally:
        release.set()
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 3  # not before the 4 s lease ran out
    attempts = list(
        DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery.id).order_by(DeliveryAttempt.id)
    )
    assert [(a.status_code, a.error.split(":")[0]) for a in attempts] == [
        (None, "no answer recorded"),
        (200, ""),
    ]
    assert Delivery.select().where(Delivery.status == "sending").count() == 0


def test_two_workers_send_each_of_500_deliveries_exactly_once(start_server, receiver):
    seen = collections.Counter()
    lock = threading.Lock()

    def handler(request):
        with lock:
            seen[request.args["n"]] += 1
        return Response("ok")

    receiver.expect_request("/pb").respond_with_handler(handler)
    now = utcnow()
    with db.atomic():
        Delivery.insert_many(
            [
                {
                    "trigger": "conversion",
                    "url": receiver.url_for("/pb") + "?n=%d" % i,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(500)
            ]
        ).execute()
    env = dict(FAST, TRACKER_DELIVERY_BATCH="25", TRACKER_DELIVERY_CONCURRENCY="4")
    workers = [start_server("worker", env=env), start_server("worker", env=env)]

    def delivered():
        db.close()
        return Delivery.select().where(Delivery.status == "delivered").count() == 500

    wait_for(delivered, 90, "500 deliveries")
    assert seen == collections.Counter({str(i): 1 for i in range(500)})
    assert DeliveryAttempt.select().count() == 500
    assert all(w.process.poll() is None for w in workers)
    assert all("Traceback" not in w.log() for w in workers)


def test_sigterm_stops_the_worker_after_its_in_flight_send(start_server, receiver):
    arrived = threading.Event()

    def handler(request):
        arrived.set()
        time.sleep(1)
        return Response("done")

    receiver.expect_request("/slow").respond_with_handler(handler)
    delivery = queue(receiver.url_for("/slow"))
    worker = start_server("worker", env=FAST)
    assert arrived.wait(15)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(15) == 0
    assert status_of(delivery) == "delivered"
    assert "delivery worker stopped" in worker.log()


def test_serve_delivers_click_and_conversion_postbacks_and_shows_the_attempts(start_server, receiver):
    catch_all(receiver)
    server = start_server("serve", workers=1)
    flow = server.api(
        "POST",
        "/api/v1/flows",
        json={
            "name": "E2E",
            "offer_url": "https://offer.example/?cid={clickid}",
            "postbacks": [
                {
                    "trigger": "click",
                    "url": receiver.url_for("/session") + "?sid={sessionid}&src={utm_source}",
                },
                {
                    "trigger": "conversion",
                    "url": receiver.url_for("/conv") + '|JSON|{"click":"{clickid}","payout":{payout}}',
                },
            ],
        },
    ).json()
    response = requests.get(flow["link"] + "?utm_source=push", allow_redirects=False, timeout=10)
    click_id = parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0]
    wait_for(lambda: len(received(receiver)) == 1, 15, "the click postback")
    assert received(receiver)[0].args.to_dict() == {"sid": click_id, "src": "push"}

    answer = requests.get(
        server.url + "/postback", params={"click_id": click_id, "payout": "12.5", "txid": "T-1"}, timeout=10
    )
    assert (answer.status_code, answer.json()["status"]) == (200, "ok")
    wait_for(lambda: len(received(receiver)) == 2, 15, "the conversion postback")
    assert received(receiver)[1].get_json() == {"click": click_id, "payout": 12.5}

    def listed():
        return server.api("GET", "/api/v1/deliveries?click_id=" + click_id).json()["items"]

    wait_for(lambda: all(d["status"] == "delivered" and d["attempts"] for d in listed()), 10, "the attempts")
    items = listed()
    assert [(d["trigger"], d["status"], d["method"]) for d in items] == [
        ("conversion", "delivered", "POST"),
        ("click", "delivered", "GET"),
    ]
    assert [[a["status_code"] for a in d["attempts"]] for d in items] == [[200], [200]]
    assert items[0]["attempts"][0]["response"] == "ok"
    assert items[0]["conversion_id"] == answer.json()["conversion_id"]

    retried = server.api("POST", "/api/v1/deliveries/%d/retry" % items[1]["id"]).json()
    assert retried["status"] == "queued"
    wait_for(lambda: len(received(receiver)) == 3, 15, "the resend")
    assert received(receiver)[2].full_path == received(receiver)[0].full_path
