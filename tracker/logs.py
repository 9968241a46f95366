"""The log queries, one base query per log (clicks, conversions, inbound requests,
deliveries), shared by the API's lists and the dashboard's log pages, so both doors filter
alike. Each returns an unordered peewee query; the caller pages it with ``db.keyset_page``."""

from peewee import fn

from .errors import ValidationError
from .models import DELIVERY_STATUSES, STATUSES, Click, Conversion, Delivery, InboundRequest

MAX_TEXT_FILTER = 64


def _choice(name, value, allowed):
    if value and value not in allowed:
        raise ValidationError("%s must be one of %s" % (name, ", ".join(allowed)), 400)
    return value or None


def clicks(flow_id=None, columns=(), click_id="", sub="", ip="", country=""):
    """Clicks, of one flow when ``flow_id`` is given; only ``columns`` when given; found by
    click id, a sub id (any of sub1…sub5), IP or country (the click log's search)."""
    query = Click.select(*columns)
    if flow_id is not None:
        query = query.where(Click.flow == flow_id)
    if click_id:
        query = query.where(Click.click_id == click_id.strip().lower()[:MAX_TEXT_FILTER])
    if sub:
        value = sub[:255]
        query = query.where(
            (Click.sub1 == value)
            | (Click.sub2 == value)
            | (Click.sub3 == value)
            | (Click.sub4 == value)
            | (Click.sub5 == value)
        )
    if ip:
        query = query.where(Click.ip == ip.strip()[:45])
    if country:
        country = country.strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise ValidationError("country must be a two-letter ISO code such as US", 400)
        query = query.where(Click.country == country)
    return query


def conversions(flow_id=None, click_id=None, status=None):
    """Conversions, filtered by flow, click and status (a 400 for an unknown status)."""
    query = Conversion.select()
    if flow_id is not None:
        query = query.where(Conversion.flow == flow_id)
    if click_id:
        query = query.where(Conversion.click == click_id[:MAX_TEXT_FILTER])
    status = _choice("status", status, STATUSES)
    if status:
        query = query.where(Conversion.status == status)
    return query


def inbound(flow_id=None, accepted=None, endpoint=None, click_id=None):
    """Inbound /postback and /api/v1/events requests, accepted or refused."""
    query = InboundRequest.select()
    if flow_id is not None:
        # a request refused before its flow was known (no flow_id) still belongs to the flow
        # of its click, when the click is one of ours
        of_the_flow = Click.select(Click.click_id).where(
            Click.click_id == InboundRequest.click_id, Click.flow == flow_id
        )
        query = query.where(
            (InboundRequest.flow_id == flow_id) | (InboundRequest.flow_id.is_null() & fn.EXISTS(of_the_flow))
        )
    if accepted is not None:
        query = query.where(InboundRequest.accepted == accepted)
    if endpoint:
        query = query.where(InboundRequest.endpoint == endpoint[:MAX_TEXT_FILTER])
    if click_id:
        query = query.where(InboundRequest.click_id == click_id[:MAX_TEXT_FILTER])
    return query


def deliveries(flow_id=None, conversion_id=None, click_id=None, status=None, test=None):
    """Outgoing deliveries, filtered by flow, conversion, click, status and test."""
    query = Delivery.select()
    if flow_id is not None:
        query = query.where(Delivery.flow_id == flow_id)
    if conversion_id is not None:
        query = query.where(Delivery.conversion_id == conversion_id)
    if click_id:
        query = query.where(Delivery.click_id == click_id[:MAX_TEXT_FILTER])
    status = _choice("status", status, DELIVERY_STATUSES)
    if status:
        query = query.where(Delivery.status == status)
    if test is not None:
        query = query.where(Delivery.test == test)
    return query
