"""Log pages, newest first, a page at a time: clicks, conversions, inbound postbacks and
outgoing deliveries, each with a detail page. The queries are ``tracker.logs``', shared
with the API's lists."""

from flask import flash, redirect, render_template, request, url_for

from .. import logs
from ..db import keyset_page
from ..delivery.queue import retry
from ..errors import ValidationError, found
from ..flows import flow_link
from ..models import (
    DELIVERY_STATUSES,
    STATUSES,
    Click,
    Conversion,
    ConversionChange,
    Delivery,
    DeliveryAttempt,
    Flow,
    InboundRequest,
    utcnow,
)
from ..web import base_url, bool_arg, int_arg, text_arg, url_with_query
from . import bp

PAGE_SIZE = 50
CLICK_COLUMNS = (
    Click.click_id,
    Click.flow,
    Click.created_at,
    Click.ip,
    Click.country,
    Click.city,
    Click.device_type,
    Click.os,
    Click.browser,
    Click.sub1,
    Click.utm_source,
    Click.external_id,
    Click.is_unique,
    Click.is_bot,
)


def _flows():
    return {flow.id: flow for flow in Flow.select(Flow.id, Flow.name, Flow.key, Flow.deleted)}


def _page(query, key_field, cursor):
    """One page of rows and the URL of the next one (None on the last page)."""
    rows, next_cursor = keyset_page(query, key_field, cursor, int_arg("limit", PAGE_SIZE, 1, 500))
    next_url = None
    if next_cursor is not None:
        next_url = url_with_query(request.endpoint, {**request.args.to_dict(), "cursor": next_cursor})
    return rows, next_url


@bp.get("/logs/clicks")
def clicks():
    flow_id = int_arg("flow_id")
    query = logs.clicks(flow_id, columns=CLICK_COLUMNS)
    rows, next_url = _page(query, Click.click_id, (text_arg("cursor") or "")[:64] or None)
    flows = _flows()
    first = next((f for f in flows.values() if not f.deleted), None)
    return render_template(
        "logs/clicks.html",
        rows=rows,
        next_url=next_url,
        flows=flows,
        flow_id=flow_id,
        example_link=flow_link(first, base_url()) if first else None,
    )


@bp.get("/logs/clicks/<click_id>")
def click(click_id):
    """Everything captured on one click, with its conversions and deliveries."""
    row = found(Click, Click.click_id == click_id[:64], what="click %s" % click_id[:64])
    conversions = list(logs.conversions(click_id=row.click_id).order_by(Conversion.id))
    deliveries = list(logs.deliveries(click_id=row.click_id).order_by(Delivery.id))
    return render_template(
        "logs/click.html", click=row, flow=row.flow, conversions=conversions, deliveries=deliveries
    )


@bp.get("/logs/conversions")
def conversions():
    flow_id, status = int_arg("flow_id"), text_arg("status") or None
    rows, next_url = _page(logs.conversions(flow_id, status=status), Conversion.id, int_arg("cursor"))
    return render_template(
        "logs/conversions.html",
        rows=rows,
        next_url=next_url,
        flows=_flows(),
        flow_id=flow_id,
        status=status,
        statuses=STATUSES,
    )


@bp.get("/logs/conversions/<int:conversion_id>")
def conversion(conversion_id):
    """One conversion: its fields, lead data, history, the requests behind it, its deliveries."""
    row = found(Conversion, Conversion.id == conversion_id, what="conversion %d" % conversion_id)
    changes = list(row.changes.order_by(ConversionChange.at, ConversionChange.id))
    inbound = list(
        InboundRequest.select().where(InboundRequest.conversion == row.id).order_by(InboundRequest.id)
    )
    deliveries = list(logs.deliveries(conversion_id=row.id).order_by(Delivery.id))
    return render_template(
        "logs/conversion.html",
        conversion=row,
        flow=row.flow,
        changes=changes,
        inbound=inbound,
        deliveries=deliveries,
    )


@bp.get("/logs/postbacks")
def inbound():
    """Inbound postbacks and events, accepted and rejected, with the reason."""
    flow_id, accepted = int_arg("flow_id"), bool_arg("accepted")
    rows, next_url = _page(logs.inbound(flow_id, accepted), InboundRequest.id, int_arg("cursor"))
    return render_template(
        "logs/inbound.html",
        rows=rows,
        next_url=next_url,
        flows=_flows(),
        flow_id=flow_id,
        accepted=accepted,
        base=base_url(),
    )


@bp.get("/logs/deliveries")
def deliveries():
    flow_id, status = int_arg("flow_id"), text_arg("status") or None
    rows, next_url = _page(logs.deliveries(flow_id, status=status), Delivery.id, int_arg("cursor"))
    return render_template(
        "logs/deliveries.html",
        rows=rows,
        next_url=next_url,
        flows=_flows(),
        flow_id=flow_id,
        status=status,
        statuses=DELIVERY_STATUSES,
    )


def _delivery_or_404(delivery_id):
    return found(Delivery, Delivery.id == delivery_id, what="delivery %d" % delivery_id)


@bp.get("/logs/deliveries/<int:delivery_id>")
def delivery(delivery_id):
    """One outgoing request as rendered (method, URL, headers, body) and every attempt."""
    row = _delivery_or_404(delivery_id)
    attempts = list(row.attempts.order_by(DeliveryAttempt.at, DeliveryAttempt.id))
    return render_template("logs/delivery.html", delivery=row, attempts=attempts, flows=_flows())


@bp.post("/logs/deliveries/<int:delivery_id>/resend")
def resend_delivery(delivery_id):
    """Queue the delivery again now: the same request, a fresh retry schedule."""
    row = _delivery_or_404(delivery_id)
    try:
        retry(row.id, now=utcnow())
    except ValidationError as exc:
        flash("Not resent: %s." % exc.message, "error")
    else:
        flash("Delivery %d is queued to be sent again." % row.id)
    return redirect(url_for("dashboard.delivery", delivery_id=row.id))
