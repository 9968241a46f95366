"""The outbox: which outgoing postbacks a click or a conversion enqueues.

Deliveries are saved by the caller's transaction, together with the click or conversion that
triggered them, so a crash can never lose one. Each is rendered here, once: every retry
resends exactly this request (a stable ``{now}``, stable event ids).
"""

import logging

from ..db import Prepared, PreparedInsert, Rows
from ..models import CONVERSION_TRIGGERS, Delivery, Postback, utcnow
from . import templates
from .samples import sample_conversion

logger = logging.getLogger(__name__)


def enqueue_for_click(click, flow, now=None):
    """Save and return the Delivery rows of ``flow``'s click postbacks for ``click``."""
    now = now or click.created_at or utcnow()
    postbacks = getattr(flow, "click_postbacks", None)
    if postbacks is None:
        postbacks = list(flow.postbacks.where(Postback.trigger == "click", Postback.enabled == True))  # noqa: E712
    ctx = templates.context(click, flow, None, now, lead={})  # a new click has no lead yet
    deliveries = [_delivery(p.url, "click", ctx, p, now) for p in postbacks]
    for delivery in deliveries:
        delivery.save(force_insert=True)
    return deliveries


def fires(postback, conversion, previous):
    """True when ``postback`` (a flow's) fires for this new (``previous`` None) or changed
    conversion: its trigger happened, and every filter it sets holds (DESIGN §4.4)."""
    if postback.events and conversion.event not in postback.events:
        return False
    if postback.statuses and conversion.status not in postback.statuses:
        return False
    if not payout_matches(postback.payout_type, conversion.payout):
        return False
    if postback.trigger == "conversion":
        return previous is None
    if postback.trigger == "status":
        return previous is None or previous[0] != conversion.status
    if postback.trigger == "payout":
        return conversion.payout != 0 if previous is None else previous[1] != conversion.payout
    return False


def payout_matches(payout_type, payout):
    """The payout filter: ``all``, ``payout`` (> 0) or ``debit`` (< 0)."""
    if payout_type == "payout":
        return payout > 0
    if payout_type == "debit":
        return payout < 0
    return True


def source_fires(source, conversion, previous):
    """True when the traffic source's own postback fires: a new conversion of a listed event."""
    return (
        source is not None
        and source.active
        and bool(source.postback_url)
        and previous is None
        and (not source.postback_events or conversion.event in source.postback_events)
    )


# A conversion's postbacks and the INSERT of a delivery, their SQL made once per engine.
CONVERSION_POSTBACKS = Prepared(
    lambda slot: (
        Postback.select()
        .where(
            Postback.flow == slot("flow"),
            Postback.enabled == True,  # noqa: E712
            Postback.trigger.in_(CONVERSION_TRIGGERS),
        )
        .order_by(Postback.id)
    )
)
POSTBACK_ROWS = Rows(Postback)
INSERT_DELIVERY = PreparedInsert(Delivery)


def conversion_postbacks(flow_id):
    """The enabled postbacks of flow ``flow_id`` that a conversion may trigger, by id."""
    rows = CONVERSION_POSTBACKS.execute({"flow": flow_id}).fetchall()
    return [postback for (postback,) in map(POSTBACK_ROWS.build, rows)]


def enqueue_for_conversion(conversion, previous=None, now=None, lead=None, postbacks=None, ids=True):
    """Save and return the Delivery rows that ``conversion`` triggers.

    ``previous`` is None for a new conversion, else ``(status, payout)`` before this change.
    ``lead`` is the click's lead profile (None: read it); ``postbacks`` the flow's
    (``conversion_postbacks``; None: read them). ``ids`` False: the rows are written
    with the transaction's next statement or its commit (``db.Prepared.defer``), their ids
    unknown. A delivery identical (same method,
    URL, headers and body) to the last one of the same conversion and postback is saved as
    ``skipped``: the receiver has that state already.
    """
    now = now or utcnow()
    flow, click = conversion.flow, conversion.click
    if postbacks is None:
        postbacks = conversion_postbacks(flow.id)
    if lead is None:
        lead = templates.stored_lead(click, conversion)
    ctx = templates.context(click, flow, conversion, now, lead)
    deliveries = [
        _delivery(p.url, p.trigger, ctx, p, now) for p in postbacks if fires(p, conversion, previous)
    ]
    if source_fires(ctx.traffic_source, conversion, previous):
        deliveries.append(_delivery(ctx.traffic_source.postback_url, "conversion", ctx, None, now))
    for delivery in deliveries:
        delivery.conversion_id = conversion.id
        if previous is not None:  # a new conversion has no delivery yet to repeat
            _skip_if_identical_to_last(delivery)
        (INSERT_DELIVERY.run if ids else INSERT_DELIVERY.defer)(delivery)
    return deliveries


def _delivery(template, trigger, ctx, postback, now):
    """An unsaved Delivery: the rendered request, or a failed row saying why it can't be."""
    fields = {
        "flow_id": ctx.flow.id,
        "click_id": ctx.click.click_id,
        "postback": postback,
        "trigger": trigger,
        "success_body": postback.success_body if postback else "",
        "retry_4xx": postback.retry_4xx if postback else False,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    try:
        request = templates.render(template, ctx, postback.headers if postback else None)
    except templates.TemplateError as exc:
        logger.warning(
            "postback %s of flow %s cannot be rendered: %s",
            postback.id if postback else "(traffic source)",
            ctx.flow.id,
            exc.message,
        )
        request = exc.request or templates.Request("GET", template, {}, "")
        fields.update(status="failed", last_error=exc.message)
    return Delivery(
        method=request.method, url=request.url, headers=request.headers, body=request.body, **fields
    )


def _skip_if_identical_to_last(delivery):
    """Mark ``delivery`` skipped when the last delivery of its conversion and postback (one that
    did not fail) is the same request: the same state sent twice. One identical to an older
    delivery but not to the last is sent (approved, declined, then approved again)."""
    if delivery.status == "failed":
        return
    same_postback = (
        Delivery.postback == delivery.postback_id
        if delivery.postback_id is not None
        else Delivery.postback.is_null()
    )
    last = (
        Delivery.select()
        .where(Delivery.conversion_id == delivery.conversion_id, same_postback, Delivery.status != "failed")
        .order_by(Delivery.id.desc())
        .first()
    )
    if last is None or (last.method, last.url, last.headers, last.body) != (
        delivery.method,
        delivery.url,
        delivery.headers,
        delivery.body,
    ):
        return
    delivery.status = "skipped"
    delivery.last_error = "identical to delivery %d, the last one of this postback" % last.id
    logger.info("skipped a repeat of delivery %d for conversion %s", last.id, delivery.conversion_id)


def enqueue_test(template, flow=None, click=None, conversion=None, now=None, options=None):
    """Queue a real delivery of ``template``, marked ``test``; sample values stand in for a
    missing click or conversion (a given conversion lends its values only: the delivery is
    not linked to it). ``options`` are the postback's ``headers``, ``success_body``,
    ``retry_4xx`` and ``test_event_code`` (which the test sends). Raises
    ``templates.TemplateError``."""
    now, options, lead = now or utcnow(), options or {}, None
    if click is not None and flow is None:
        flow = click.flow
    if click is not None:
        conversion = conversion if conversion is not None else sample_conversion(click, flow)
        lead = templates.stored_lead(click, conversion)
    request = templates.preview(
        template,
        click=click,
        conversion=conversion,
        flow=flow,
        now=now,
        headers=options.get("headers"),
        test_event_code=options.get("test_event_code", ""),
        lead=lead,
    )
    return Delivery.create(
        flow_id=flow.id if flow is not None else None,
        click_id=click.click_id if click is not None else None,
        trigger="test",
        test=True,
        success_body=options.get("success_body", ""),
        retry_4xx=options.get("retry_4xx", False),
        status="queued",
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        **request,
    )
