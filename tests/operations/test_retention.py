"""``TRACKER_RETENTION_DAYS``: old clicks and their logs go in small batches, conversions (and
so their clicks) stay, and clicks keep being answered fast while a purge runs."""

import datetime
import statistics
import threading
import time

import pytest
import requests
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from tracker import create_app
from tracker.db import db
from tracker.models import (
    Click,
    Conversion,
    ConversionChange,
    Delivery,
    DeliveryAttempt,
    InboundRequest,
    OrphanVisit,
)
from tracker.operations.retention import FIRST_RUN_DELAY, purge_old_rows, schedule_purge

from factories import add_click, add_conversion, add_flow

NOW = datetime.datetime(2026, 11, 28, 12, 0)
OLD, RECENT = "2026-09-01 10:00", "2026-11-20 10:00"  # 30 days before NOW: 2026-10-29 12:00


def add_delivery(click, attempts=1, conversion=None):
    delivery = Delivery.create(
        flow_id=click.flow_id,
        click_id=click.click_id,
        conversion_id=conversion.id if conversion else None,
        trigger="conversion" if conversion else "click",
        url="https://pb.example/",
        status="delivered",
    )
    for _ in range(attempts):
        DeliveryAttempt.create(delivery=delivery, status_code=200)
    return delivery


@pytest.fixture
def data(app):
    with db.connection_context():
        a, b = add_flow("A"), add_flow("B", deleted=True)  # a deleted flow's clicks age out too
        old = [add_click(flow, OLD) for flow in (a, a, a, b, b)]
        converted = add_click(a, OLD)
        conversion = add_conversion(converted, "2.00")
        ConversionChange.create(conversion=conversion, status="approved", payout=2)
        recent = [add_click(a, RECENT), add_click(b, RECENT)]
        for click in old[:2]:
            add_delivery(click, attempts=2)
        add_delivery(converted, conversion=conversion)
        add_delivery(recent[0])
        OrphanVisit.create(key="gone", reason="unknown", created_at=datetime.datetime(2026, 9, 1))
        OrphanVisit.create(key="stays", reason="unknown", created_at=datetime.datetime(2026, 11, 27))
        InboundRequest.create(at=datetime.datetime(2026, 9, 1), endpoint="postback", http_status=404)
        InboundRequest.create(
            at=datetime.datetime(2026, 9, 2), endpoint="postback", http_status=200, conversion=conversion
        )
        InboundRequest.create(at=datetime.datetime(2026, 11, 27), endpoint="postback", http_status=400)
        yield {"old": old, "converted": converted, "recent": recent, "conversion": conversion}


def test_old_clicks_and_their_logs_go_conversions_and_their_clicks_stay(data):
    with db.connection_context():
        counts = purge_old_rows(30, now=NOW, batch=2, pause=0)
        assert counts == {
            "clicks": 5,
            "deliveries": 2,
            "delivery attempts": 4,
            "orphan visits": 1,
            "inbound requests": 1,
        }
        kept = {c.click_id for c in Click.select()}
        assert kept == {data["converted"].click_id} | {c.click_id for c in data["recent"]}
        assert [c.id for c in Conversion.select()] == [data["conversion"].id]
        assert ConversionChange.select().count() == 1
        assert {d.click_id for d in Delivery.select()} == {
            data["converted"].click_id,
            data["recent"][0].click_id,
        }
        assert DeliveryAttempt.select().count() == 2
        assert [o.key for o in OrphanVisit.select()] == ["stays"]
        assert sorted(r.http_status for r in InboundRequest.select()) == [200, 400]
        # Nothing more is old enough the second time.
        assert set(purge_old_rows(30, now=NOW, batch=2, pause=0).values()) == {0}


def test_clicks_of_the_same_instant_are_all_purged_across_batches(app):
    with db.connection_context():
        flow = add_flow()
        clicks = [add_click(flow, OLD, click_id="same%02d" % n) for n in range(7)]
        add_conversion(clicks[3], "1.00")
        assert purge_old_rows(30, now=NOW, batch=2, pause=0)["clicks"] == 6
        assert [c.click_id for c in Click.select()] == ["same03"]


def test_a_stop_ends_the_purge_between_batches(app):
    stop = threading.Event()
    stop.set()
    with db.connection_context():
        add_click(add_flow(), OLD)
        assert set(purge_old_rows(30, now=NOW, stop=stop).values()) == {0}
        assert Click.select().count() == 1


def test_the_worker_schedules_the_purge_daily_only_when_retention_is_set(tmp_path):
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(1), "retention": ThreadPoolExecutor(1)},
        timezone=datetime.timezone.utc,
    )
    start = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.timezone.utc)
    assert schedule_purge(scheduler, {"TRACKER_RETENTION_DAYS": None}, threading.Event(), now=start) is None
    job = schedule_purge(scheduler, {"TRACKER_RETENTION_DAYS": 30}, threading.Event(), now=start)
    assert job.executor == "retention"
    assert job.trigger.interval == datetime.timedelta(days=1)
    assert job.next_run_time == start + datetime.timedelta(seconds=FIRST_RUN_DELAY)


@pytest.mark.parametrize("value, days", [("30", 30), ("", None), (None, None)])
def test_retention_days_setting(tmp_path, value, days):
    app = create_app({"INSTANCE_PATH": str(tmp_path), "TRACKER_RETENTION_DAYS": value})
    assert app.config["TRACKER_RETENTION_DAYS"] == days


@pytest.mark.parametrize("value", ["0", "-3"])
def test_retention_days_below_one_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match="TRACKER_RETENTION_DAYS must be at least 1"):
        create_app({"INSTANCE_PATH": str(tmp_path), "TRACKER_RETENTION_DAYS": value})


def latencies(link, stop, out):
    with requests.Session() as session:
        while not stop.is_set():
            started = time.monotonic()
            response = session.get(link, allow_redirects=False, timeout=10)
            out.append((started, time.monotonic() - started, response.status_code))


def test_clicks_are_answered_fast_while_a_purge_runs(start_server):
    server = start_server("web", workers=2)
    flow = server.api("POST", "/api/v1/flows", json={"name": "R", "offer_url": "https://o.example/"}).json()
    old = datetime.datetime(2026, 1, 1)
    with db.connection_context(), db.atomic():
        for first in range(0, 20_000, 500):
            Click.insert_many(
                {
                    "click_id": "0old%021d" % n,
                    "flow": flow["id"],
                    "created_at": old,
                    "params": {},
                    "cookies": {},
                }
                for n in range(first, first + 500)
            ).execute()
    answers, stop = [], threading.Event()
    thread = threading.Thread(target=latencies, args=(flow["link"], stop, answers))
    thread.start()
    try:
        time.sleep(1.0)
        began = time.monotonic()
        with db.connection_context():
            counts = purge_old_rows(30)
        ended = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    assert counts["clicks"] == 20_000
    during = [seconds for at, seconds, _ in answers if began <= at <= ended]
    assert {status for _, _, status in answers} == {302}
    assert len(during) >= 20, (len(during), ended - began)
    # A purge batch holds SQLite's write lock for milliseconds, so no click waits for the purge
    # as a whole (seconds): the bounds leave room for a machine busy with other work.
    assert max(during) < 3.0 and statistics.median(during) < 0.2, (statistics.median(during), max(during))
    with db.connection_context():
        assert Click.select().count() == len(answers)
