"""Helpers for the outgoing-postback tests: clicks and conversions made with the models (the
inbound postback route belongs to the conversions module), a sweep, and the receiver's log."""

import datetime
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer

from tracker.clickin.record import new_click_id
from tracker.db import db
from tracker.delivery.queue import deliver_due
from tracker.models import Click, Conversion, Delivery, Flow, utcnow
from tracker.postbacks import outbox

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)
NOW_UNIX = 1714564800
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
LEAD = {
    "email": "  John_Smith@gmail.com ",
    "phone": "+1 (650) 555-1212",
    "first_name": "Mary",
    "last_name": 'O\'Brien "Jr"',
    "gender": "f",
    "dob": "1990-01-31",
    "name": "Jane Doe & Co",
    "advertisername": "Acme & Sons",
    "pixelCode": "C4PIXEL77",
    "contact": {"firstName": "Mary", "lastName": "O'Brien", "email": "mary@example.com"},
}
CLICK = {
    "ip": "198.51.100.23",
    "user_agent": UA,
    "referrer": "https://news.example/story?id=7&x=y",
    "language": "en-US",
    "country": "US",
    "country_name": "United States",
    "region": "CA",
    "city": "Mountain View",
    "zip": "94043",
    "isp": "Comcast Cable",
    "asn": 7922,
    "carrier": "T-Mobile",
    "connection_type": "Cellular",
    "device_type": "mobile",
    "brand": "Apple",
    "model": "iPhone",
    "os": "iOS",
    "os_version": "17.5",
    "browser": "Mobile Safari",
    "browser_version": "17.5",
    "external_id": "ts-7781",
    "var1": "zone 42",
    "var2": "creative#9",
    "var3": "",
    "sub1": "s1",
    "utm_source": "facebook",
    "cost": Decimal("0.35"),
    "params": {
        "clickid": "ts-7781",
        "utm_source": "facebook",
        "ScCid": "sc-5150",
        "adid": "ad-991",
        "variablename": "v=1&w",
        "zoneid": "zone 42",
    },
    "cookies": {
        "_fbc": "fb.1.1714560000.IwAR2abc",
        "_fbp": "fb.1.1714560000.987654321",
        "ttclid": "E.C.P.tt123",
        "_ttp": "ttp-456",
    },
}


@pytest.fixture(scope="session")
def receiver_server():
    """One real HTTP server on loopback for the session (stopping one takes half a second)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server):
    """A real HTTP receiver on loopback (threaded: a hanging handler blocks nobody else), with
    no expectation and an empty log at the start of each test."""
    receiver_server.clear()
    yield receiver_server
    receiver_server.clear()


@pytest.fixture
def delivery_app(make_app):
    """The app with short retry delays and timeouts, so fault tests run in seconds."""
    return make_app(
        TRACKER_RETRY_DELAYS="0.1,0.1",
        TRACKER_DELIVERY_CONNECT_TIMEOUT=2,
        TRACKER_DELIVERY_READ_TIMEOUT=2,
        TRACKER_DELIVERY_LEASE=5,
    )


def make_click(flow_id, now=NOW, **fields):
    """A click row with every field set (geo and device included), as the click-in would save it."""
    values = dict(CLICK, **fields)
    values["params"] = dict(values["params"])
    return Click.create(click_id=new_click_id(), flow=flow_id, created_at=now, **values)


def click_deliveries(click, now=NOW):
    """What the click-in does for a flow with click postbacks: enqueue them with the click."""
    flow = Flow.get_by_id(click.flow_id)
    with db.atomic():
        return outbox.enqueue_for_click(click, flow, now=now)


def convert(click, now=NOW, event="conversion", payout="49.99", status="approved", txid="TX-1001", data=None):
    """Insert a conversion and enqueue its deliveries in one transaction, as the conversions
    module does; returns ``(conversion, deliveries)``."""
    with db.atomic():
        conversion = Conversion.create(
            click=click.click_id,
            flow=click.flow_id,
            event=event,
            payout=Decimal(payout),
            status=status,
            txid=txid,
            dedup_key=txid,
            data=LEAD if data is None else data,
            created_at=now,
            updated_at=now,
        )
        return conversion, outbox.enqueue_for_conversion(conversion, None, now=now)


def change(conversion, now=NOW, status=None, payout=None):
    """Change a conversion's status and/or payout and enqueue what that triggers."""
    previous = (conversion.status, conversion.payout)
    with db.atomic():
        if status is not None:
            conversion.status = status
        if payout is not None:
            conversion.payout = Decimal(payout)
        conversion.updated_at = now
        conversion.save()
        return outbox.enqueue_for_conversion(conversion, previous, now=now)


def sweep(app, now=NOW, **kwargs):
    """One delivery sweep with the app's settings."""
    return deliver_due(now=now, config=app.config, **kwargs)


def statuses():
    return [d.status for d in Delivery.select().order_by(Delivery.id)]


def at_receiver(receiver, url):
    """``url`` with its scheme and host pointed at the loopback receiver, the rest verbatim."""
    parts = urlsplit(url)
    return receiver.url_for("/").rstrip("/") + url[len("%s://%s" % (parts.scheme, parts.netloc)) :]


def catch_all(receiver, status=200, body="ok", headers=None):
    """Answer every request with ``status``."""
    receiver.expect_request(re.compile(".*")).respond_with_data(body, status=status, headers=headers)


def received(receiver):
    """The requests the receiver got, oldest first."""
    return [request for request, _ in receiver.log]


def utc_from(seconds):
    return NOW + datetime.timedelta(seconds=seconds)


__all__ = [
    "receiver",
    "delivery_app",
    "NOW",
    "NOW_UNIX",
    "UA",
    "LEAD",
    "CLICK",
    "make_click",
    "click_deliveries",
    "convert",
    "change",
    "sweep",
    "statuses",
    "at_receiver",
    "catch_all",
    "received",
    "utc_from",
    "utcnow",
]
