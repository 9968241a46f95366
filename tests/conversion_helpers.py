"""Helpers shared by the conversion tests: clicks to convert, and reading rows back."""

import datetime
from urllib.parse import parse_qs, urlparse

from tracker.clickin.record import new_click_id
from tracker.db import db
from tracker.models import Click, Conversion, ConversionChange, InboundRequest, utcnow
from tracker.money import money_text


def click_on(client, flow):
    """A real click on ``flow`` through ``/r/<key>``; its id (the flow's offer URL has ``cid={clickid}``)."""
    response = client.get("/r/" + flow["key"])
    assert response.status_code == 302
    return parse_qs(urlparse(response.headers["Location"]).query)["cid"][0]


def old_click(flow, days_ago, now=None):
    """A click row on ``flow`` made ``days_ago`` days before ``now``; its id."""
    created = (now or utcnow()) - datetime.timedelta(days=days_ago)
    click_id = new_click_id()
    with db.connection_context():
        Click.create(click_id=click_id, flow=flow["id"], created_at=created)
    return click_id


def conversions():
    """Every conversion, oldest first."""
    with db.connection_context():
        return list(Conversion.select().order_by(Conversion.id))


def inbound_log():
    """Every inbound log row, oldest first."""
    with db.connection_context():
        return list(InboundRequest.select().order_by(InboundRequest.id))


def last_log():
    return inbound_log()[-1]


def history(conversion_id):
    """``[(status, payout text)]`` of a conversion's changes, oldest first."""
    with db.connection_context():
        rows = (
            ConversionChange.select()
            .where(ConversionChange.conversion == conversion_id)
            .order_by(ConversionChange.id)
        )
        return [(row.status, money_text(row.payout)) for row in rows]
