"""Exactly once under concurrency: identical requests at the same instant against a real
``tracker serve`` with two gunicorn workers (SQLite here; PostgreSQL under TRACKER_TEST_DATABASE_URL)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import requests

from tracker.db import db
from tracker.models import LeadProfile


def serve_flow_and_click(start_server, **flow_fields):
    server = start_server("serve", workers=2)
    body = {"name": "Concurrency", "offer_url": "https://offer.example/?cid={clickid}", **flow_fields}
    flow = server.api("POST", "/api/v1/flows", json=body).json()
    response = requests.get(flow["link"], allow_redirects=False, timeout=10)
    click_id = parse_qs(urlparse(response.headers["Location"]).query)["cid"][0]
    return server, flow, click_id


def send_together(count, threads, send):
    """Call ``send()`` ``count`` times from ``threads`` threads, released together; its results."""
    barrier = threading.Barrier(threads)

    def one(index):
        if index < threads:
            barrier.wait(10)
        return send()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def test_forty_identical_postbacks_make_one_conversion(start_server):
    server, flow, click_id = serve_flow_and_click(start_server)
    url = server.url + "/postback?click_id=%s&event=purchase&payout=49.99&txid=ORD-1" % click_id

    def send():
        response = requests.get(url, timeout=30)
        return response.status_code, response.json()["status"], response.json()["conversion_id"]

    results = send_together(40, 20, send)
    assert Counter(status for status, _, _ in results) == {200: 40}
    assert Counter(answer for _, answer, _ in results) == {"ok": 1, "duplicate": 39}
    assert len({conversion_id for _, _, conversion_id in results}) == 1
    conversions = server.api("GET", "/api/v1/conversions?flow_id=%d" % flow["id"]).json()["items"]
    assert [(c["event"], c["payout"], c["txid"]) for c in conversions] == [("purchase", "49.99", "ORD-1")]
    assert len(conversions[0]["history"]) == 1
    log = server.api("GET", "/api/v1/postbacks?flow_id=%d&limit=100" % flow["id"]).json()["items"]
    assert Counter(entry["reason"] for entry in log) == {
        "recorded": 1,
        "duplicate: already recorded, nothing new counted": 39,
    }


def test_identical_events_in_flight_fire_once(start_server):
    server, flow, click_id = serve_flow_and_click(start_server, events=[{"name": "sale"}])
    body = {"cid": flow["key"], "event_id": "sale", "transaction_id": click_id, "revenue": "10"}

    def send():
        return requests.post(server.url + "/api/v1/events", json=body, timeout=30).status_code

    results = send_together(20, 20, send)
    counts = Counter(results)
    assert counts[200] == 1
    assert counts[200] + counts[403] + counts[400] == 20
    conversions = server.api("GET", "/api/v1/conversions?flow_id=%d" % flow["id"]).json()["items"]
    assert len(conversions) == 1
    log = server.api("GET", "/api/v1/postbacks?flow_id=%d&limit=100" % flow["id"]).json()["items"]
    assert Counter(entry["http_status"] for entry in log) == counts


def test_sixteen_identical_events_at_once_count_once_even_when_duplicates_are_allowed(start_server):
    """Issue 9, point 4: the claim covers events that allow duplicates (16 at once stored 14–15)."""
    events = [{"name": "upsell", "conversion": True, "allow_duplicates": True}]
    server, flow, click_id = serve_flow_and_click(start_server, events=events)
    body = {"cid": flow["key"], "event_id": "upsell", "transaction_id": click_id, "revenue": "10"}

    def send():
        return requests.post(server.url + "/api/v1/events", json=body, timeout=30).status_code

    assert Counter(send_together(16, 16, send)) == {200: 1, 403: 15}
    conversions = server.api("GET", "/api/v1/conversions?flow_id=%d" % flow["id"]).json()["items"]
    assert len(conversions) == 1


def test_concurrent_conversions_of_one_click_all_land_in_its_lead_profile(start_server):
    """Two workers merging one click's lead profile at the same instant lose nothing."""
    server, flow, click_id = serve_flow_and_click(start_server)
    fields = iter(range(24))

    def send():
        n = next(fields)
        url = server.url + "/postback?click_id=%s&event=e%d&field%d=v%d" % (click_id, n, n, n)
        return requests.get(url, timeout=30).status_code

    assert Counter(send_together(24, 12, send)) == {200: 24}
    with db.connection_context():
        profile = LeadProfile.get_by_id(click_id).data
    assert profile == {"field%d" % n: "v%d" % n for n in range(24)}
