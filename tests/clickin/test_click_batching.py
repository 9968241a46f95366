"""The click write-behind (``TRACKER_CLICK_BATCH_MS``): a click is answered once it is in the
node's spool file, and written with the other clicks of that time in one transaction. Each is
written once, counted unique as it would be at once, seen by every later request of the node,
and kept across a SIGKILL of the whole server."""

import os
import signal
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fault_helpers import FAULT_ENV, ClickLoad, column, spool_depth, wait_for

from tracker.db import db
from tracker.models import Click, Conversion, Delivery

from conftest import API_TOKEN

pytestmark = pytest.mark.xdist_group("waits")

AUTH = {"Authorization": "Bearer " + API_TOKEN}
LONG = 10_000  # ms: the drainer does not write meanwhile; only a request's settle does


@pytest.fixture
def batching_app(make_app, tmp_path):
    def make(batch_ms):
        return make_app(TRACKER_CLICK_BATCH_MS=batch_ms, TRACKER_CLICK_SPOOL=str(tmp_path / "spool"))

    return make


def make_flow(client, **fields):
    body = {"name": "Batched", "offer_url": "https://offer.example/?cid={clickid}", **fields}
    response = client.post("/api/v1/flows", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def click(client, flow, user_agent="ua-a"):
    response = client.get("/r/" + flow["key"], headers={"User-Agent": user_agent})
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["cid"][0]


def stored():
    with db.connection_context():
        return {c.click_id: c.is_unique for c in Click.select(Click.click_id, Click.is_unique)}


def test_batched_clicks_are_written_each_once_and_counted_unique_as_written_at_once(batching_app):
    app = batching_app(300)
    client = app.test_client()
    flow = make_flow(client)
    visitors = ["ua-a", "ua-b", "ua-a", "ua-a", "ua-b", "ua-c"]
    ids = [click(client, flow, user_agent) for user_agent in visitors]
    spool = app.extensions["tracker.spool"]
    wait_for(lambda: not spool.pending(), 30, "the write-behind to write its clicks")
    assert stored() == dict(zip(ids, [True, True, False, False, False, True], strict=True))
    assert spool.depth() == 0
    later = [click(client, flow, user_agent) for user_agent in ("ua-b", "ua-d", "ua-d")]
    wait_for(lambda: not spool.pending(), 30, "the write-behind to write its clicks")
    assert {k: v for k, v in stored().items() if k in later} == dict(
        zip(later, [False, True, False], strict=True)  # ua-b's click of the earlier batch counts
    )


def test_a_request_right_after_a_batched_click_finds_it_written(batching_app):
    app = batching_app(LONG)
    client = app.test_client()
    flow = make_flow(client)
    click_id = click(client, flow)
    assert stored() == {}  # in the spool file, not yet in the database
    assert app.extensions["tracker.spool"].depth() == 1
    postback = client.get("/postback?click_id=%s&payout=2.5" % click_id)
    assert postback.status_code == 200, postback.get_json()  # 503 (retry) without the settle
    assert stored() == {click_id: True}
    with db.connection_context():
        assert [c.click_id for c in Conversion.select()] == [click_id]
    second = click(client, flow, "ua-b")
    found = client.get("/api/v1/clicks/" + second, headers=AUTH)
    assert (found.status_code, found.get_json()["click_id"]) == (200, second)
    assert client.get("/healthz").get_json() == {"status": "ok", "spool_depth": 0}


@pytest.mark.postgres_only
def test_a_batch_is_written_with_one_insert_on_postgresql(batching_app, counted):
    """The drain sends the batch's spool lines as they are, for the server to parse, in one
    INSERT (clickin.record.insert_batch_sql): decoding them and sending 55 parameters a click
    was a fifth of a web worker's time. Counted unique as the click path would."""
    app = batching_app(LONG)
    client = app.test_client()
    flow = make_flow(client)
    visitors = ["ua-a", "ua-b", "ua-a", "ua-c", "ua-b"]
    ids = [click(client, flow, user_agent) for user_agent in visitors]
    counted.clear()
    assert client.get("/healthz").get_json() == {"status": "ok", "spool_depth": 0}  # its settle
    written = counted[: counted.index("COMMIT")]  # the transaction of the settle's drain
    assert len(written) == 1 and "INSERT INTO click " in written[0], counted  # five clicks, one text
    assert stored() == dict(zip(ids, [True, True, False, True, False], strict=True))


def test_a_flow_with_click_postbacks_writes_its_clicks_at_once_with_their_deliveries(batching_app):
    app = batching_app(LONG)
    client = app.test_client()
    flow = make_flow(client, postbacks=[{"trigger": "click", "url": "http://127.0.0.1:9/s?cid={clickid}"}])
    click_id = click(client, flow)
    assert stored() == {click_id: True}  # no request in between: written by the click itself
    with db.connection_context():
        assert Delivery.select().where(Delivery.click_id == click_id).count() == 1
    assert app.extensions["tracker.spool"].depth() == 0


def test_a_refused_batched_click_is_set_aside_and_the_others_are_written(batching_app):
    app = batching_app(LONG)
    client = app.test_client()
    flow = make_flow(client)
    spool = app.extensions["tracker.spool"]
    ids = [click(client, flow, "ua-%d" % n) for n in range(3)]
    with open(spool.active, "rb") as f:
        lines = f.read().splitlines()
    broken = lines[1].replace(b'"flow":%d,' % flow["id"], b'"flow":1000000000,')  # no such flow
    assert broken != lines[1]
    with open(spool.active, "wb") as f:
        f.write(b"".join(line + b"\n" for line in (lines[0], broken, lines[2])))
    assert client.get("/healthz").status_code == 200  # the request's settle writes them
    assert sorted(stored()) == sorted([ids[0], ids[2]])
    with open(os.path.join(spool.folder, "rejected", "clicks.jsonl"), "rb") as f:
        assert f.read().splitlines() == [broken]


def descendants(pid):
    """Every process started under ``pid``, children first found first."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True)
        children = [int(line) for line in out.stdout.split()]
        found += children
        queue += children
    return found


@pytest.mark.e2e
def test_batched_clicks_of_a_server_killed_with_sigkill_are_written_by_the_next(start_server, database_url):
    env = {**FAULT_ENV, "TRACKER_CLICK_BATCH_MS": str(LONG)}
    server = start_server("serve", workers=2, env=env)
    flow = server.api(
        "POST", "/api/v1/flows", json={"name": "Killed", "offer_url": "https://o.example/?cid={clickid}"}
    )
    # clicks for a second at least, and until there are 11 (a loaded machine answered 4 in the
    # second), within half the batch time: the drain must not have begun writing them
    load = ClickLoad(flow.json()["link"], threads=4).start()
    time.sleep(1.0)
    load.until(11, LONG / 2000).stop()
    assert load.failures == [] and len(load.answered) > 10, (load.failures[:3], len(load.answered))
    for pid in [server.process.pid] + descendants(server.process.pid):
        os.kill(pid, signal.SIGKILL)
    server.process.wait(10)
    written = column(database_url, "SELECT click_id FROM click")
    assert written == [], (len(written), len(load.answered), server.log()[-2000:])  # all in the spool
    again = start_server("serve", workers=2, env=env)
    wait_for(lambda: spool_depth(again) == 0, 60, "the spool to drain")
    stored_ids = column(database_url, "SELECT click_id FROM click")
    assert (len(stored_ids), sorted(stored_ids)) == (len(load.answered), sorted(load.answered)), again.log()[
        -2000:
    ]


@pytest.mark.parametrize("value", ["-1", "10001", "soon"])
def test_a_batch_time_out_of_range_is_refused_at_start(tmp_path, value):
    from tracker import create_app

    with pytest.raises(ValueError, match="TRACKER_CLICK_BATCH_MS|invalid literal"):
        create_app({"INSTANCE_PATH": str(tmp_path), "TRACKER_CLICK_BATCH_MS": value})
