"""``GET /metrics``: the Prometheus text format, the token, and each figure of DESIGN §4.9."""

import collections
import datetime
import os
import threading

import requests
from prometheus_client.parser import text_string_to_metric_families

from tracker.db import db
from tracker.models import Delivery
from tracker.operations.metrics import SPOOL_RENAMES, endpoint_of, folder_lock, scrape, spool_depth

from conftest import API_TOKEN

AUTH = {"Authorization": "Bearer " + API_TOKEN}


def samples(text):
    """``{(name, (label values sorted by label name)): value}`` of a scrape."""
    return {
        (s.name, tuple(v for _, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def read(client):
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return samples(response.get_data(as_text=True))


def test_metrics_need_the_api_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {"error": "a valid 'Authorization: Bearer <token>' header is required"}
    assert client.get("/metrics", headers=AUTH).status_code == 200


def test_metrics_are_public_with_tracker_metrics_public(make_app):
    client = make_app(TRACKER_METRICS_PUBLIC="1").test_client()
    assert client.get("/metrics").status_code == 200
    assert make_app(TRACKER_METRICS_PUBLIC="0").test_client().get("/metrics").status_code == 401


def test_clicks_conversions_and_latency_are_counted(client, make_flow):
    flow = make_flow(postbacks=[{"trigger": "conversion", "url": "https://tracking.example/pb?c={clickid}"}])
    before = read(client)
    for _ in range(3):
        assert client.get("/r/" + flow["key"]).status_code == 302
    assert client.get("/r/no-such-key").status_code == 404
    click_id = client.get("/r/" + flow["key"]).headers["Location"].rsplit("=", 1)[1]
    assert client.get("/postback?click_id=%s&payout=2" % click_id).status_code == 200
    assert client.get("/postback?click_id=%s&payout=2" % click_id).get_json()["status"] == "duplicate"
    assert client.get("/postback?click_id={clickid}").status_code == 400
    after = read(client)

    def grew(name, *labels):
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert grew("tracker_clicks_total", "recorded") == 4
    assert grew("tracker_clicks_total", "orphan") == 1
    assert grew("tracker_clicks_total", "failed") == 0
    assert grew("tracker_conversions_total", "postback", "ok") == 1
    assert grew("tracker_conversions_total", "postback", "duplicate") == 1
    assert grew("tracker_conversions_total", "postback", "error") == 1
    assert grew("tracker_request_duration_seconds_count", "click") == 5
    assert grew("tracker_request_duration_seconds_bucket", "click", "10.0") == 5
    assert grew("tracker_request_duration_seconds_count", "postback") == 3
    assert grew("tracker_responses_total", "click", "3xx") == 4
    assert grew("tracker_responses_total", "click", "4xx") == 1
    assert grew("tracker_responses_total", "postback", "2xx") == 2
    assert grew("tracker_responses_total", "postback", "4xx") == 1
    # The one conversion's delivery is queued and due: the shared figures, from the database.
    assert after[("tracker_deliveries", ("queued",))] == 1
    assert after[("tracker_deliveries", ("delivered",))] == 0
    assert after[("tracker_delivery_queue_depth", ())] == 1
    assert after[("tracker_click_spool_depth", ())] == 0


def test_queue_depth_and_oldest_due_age_at_a_given_time(app):
    now = datetime.datetime(2026, 11, 28, 12, 0, 0)
    rows = [
        ("queued", now - datetime.timedelta(seconds=90)),
        ("retrying", now - datetime.timedelta(seconds=30)),
        ("retrying", now + datetime.timedelta(seconds=600)),  # not due yet
        ("sending", now - datetime.timedelta(seconds=900)),  # claimed: not waiting
        ("delivered", now - datetime.timedelta(seconds=999)),
        ("failed", now - datetime.timedelta(seconds=999)),
    ]
    with db.connection_context():
        for status, due in rows:
            Delivery.create(
                trigger="conversion", url="https://x.example/", status=status, next_attempt_at=due
            )
        figures = samples(scrape(app, now=now).decode())
    assert figures[("tracker_delivery_queue_depth", ())] == 2
    assert figures[("tracker_delivery_queue_oldest_due_seconds", ())] == 90
    assert {
        status: figures[("tracker_deliveries", (status,))] for status in ("queued", "retrying", "sending")
    } == {
        "queued": 1,
        "retrying": 2,
        "sending": 1,
    }
    assert figures[("tracker_deliveries", ("skipped",))] == 0
    with db.connection_context():
        Delivery.delete().execute()
        figures = samples(scrape(app, now=now).decode())
    assert figures[("tracker_delivery_queue_depth", ())] == 0
    assert figures[("tracker_delivery_queue_oldest_due_seconds", ())] == 0


def test_spool_depth_counts_the_lines_of_the_spool_folder(make_app, tmp_path):
    spool = tmp_path / "spool"
    assert spool_depth(spool) == 0  # no folder yet: nothing waits
    spool.mkdir()
    (spool / "a.jsonl").write_text('{"click_id": "1"}\n{"click_id": "2"}\n')
    (spool / "b.jsonl").write_text('{"click_id": "3"}\n')
    (spool / "sub").mkdir()
    assert spool_depth(spool) == 3
    client = make_app(TRACKER_CLICK_SPOOL=str(spool)).test_client()
    assert read(client)[("tracker_click_spool_depth", ())] == 3


def test_spool_depth_counts_a_file_a_drain_renames_meanwhile(tmp_path):
    """A drain renames ``clicks.jsonl`` to ``batch-….jsonl`` (holding the folder's rename lock,
    as ``ClickSpool`` does) while the depth is read: the click is still waiting and is still
    counted (a depth of 0 told /healthz, and the tests waiting for a drain, that it was written
    while it was not). Unlocked, a listing taken mid-rename may show neither name: up to 15 %
    of these readings did."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "clicks.jsonl").write_text('{"click_id": "1"}\n')
    names = [spool / "clicks.jsonl", spool / "batch-1.jsonl"]
    stop = threading.Event()

    def drain_renames():
        turn = 0
        while not stop.is_set():
            with folder_lock(str(spool), SPOOL_RENAMES):
                os.rename(names[turn % 2], names[(turn + 1) % 2])
            turn += 1

    renamer = threading.Thread(target=drain_renames)
    renamer.start()
    try:
        depths = collections.Counter(spool_depth(spool) for _ in range(3000))
    finally:
        stop.set()
        renamer.join()
    assert depths == {1: 3000}


def test_endpoints_are_named_by_the_path():
    assert [
        endpoint_of(path)
        for path in ("/r/abc", "/click", "/click/2", "/postback", "/api/v1/events", "/api/v1/flows")
    ] == ["click", "lp_click", "lp_click", "postback", "events", "api"]
    assert [endpoint_of(path) for path in ("/metrics", "/healthz", "/", "/flows/1", "/reports")] == [
        "metrics",
        "healthz",
        "dashboard",
        "dashboard",
        "dashboard",
    ]


def test_served_metrics_add_up_every_gunicorn_worker(start_server):
    server = start_server("serve", workers=2)
    flow = server.api("POST", "/api/v1/flows", json={"name": "M", "offer_url": "https://o.example/"}).json()
    for _ in range(40):  # a new connection each: both workers take some
        assert requests.get(flow["link"], allow_redirects=False, timeout=10).status_code == 302
    for _ in range(5):  # whichever worker answers the scrape, it counts both workers' clicks
        figures = samples(server.api("GET", "/metrics").text)
        assert figures[("tracker_clicks_total", ("recorded",))] == 40
        assert figures[("tracker_request_duration_seconds_count", ("click",))] == 40


def test_a_drain_renames_the_active_file_only_while_no_count_reads_the_folder(tmp_path):
    """The spool's drain takes the folder's rename lock for its rename: while a count holds
    it (shared), the clicks stay under ``clicks.jsonl``; once released, the drain goes on
    and writes them."""
    from tracker.clickin.spool import ClickSpool

    spool = ClickSpool(str(tmp_path / "spool"))
    os.makedirs(spool.folder)
    with open(os.path.join(spool.folder, "clicks.jsonl"), "w") as f:
        f.write("not json\n")  # refused by the database: set aside, no database needed
    drained = []
    with folder_lock(spool.folder, SPOOL_RENAMES, shared=True):
        drain = threading.Thread(target=lambda: drained.append(spool.drain()))
        drain.start()
        drain.join(0.3)
        assert drain.is_alive() and sorted(os.listdir(spool.folder)) == [".drain", ".rename", "clicks.jsonl"]
    drain.join(10)
    assert drained == [0] and spool_depth(spool.folder) == 0  # the line, set aside in rejected/
    assert os.listdir(os.path.join(spool.folder, "rejected")) == ["clicks.jsonl"]


def test_spool_depth_waits_for_a_rename_in_progress(tmp_path):
    """Mid-rename, a listing may show the file under neither name: here the drain's side holds
    the rename lock with the file out of the folder altogether. The count waits for the lock,
    then finds the click under its new name; it never answers 0 meanwhile."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "moving").write_text('{"click_id": "1"}\n')
    depths = []
    with folder_lock(str(spool), SPOOL_RENAMES):
        count = threading.Thread(target=lambda: depths.append(spool_depth(spool)))
        count.start()
        count.join(0.3)
        assert count.is_alive() and depths == []  # waiting, not answering 0
        os.rename(tmp_path / "moving", spool / "batch-1.jsonl")
    count.join(10)
    assert depths == [1]
