"""Every object of the management API as JSON (DESIGN §4.5): clicks, conversions, inbound
log entries, deliveries, flows with their routes, offers, landers, traffic sources, bot
rules and stats rows. Times are ISO 8601 UTC with
a ``Z``, money is a decimal string, counts are integers, flags are booleans."""

from flask import current_app, g, has_app_context

from ..delivery.destinations import allowed_networks
from ..masking import mask_headers, mask_mapping, mask_secrets
from ..models import (
    SUB_NAMES,
    UTM_NAMES,
    VAR_NAMES,
    ConversionChange,
    DeliveryAttempt,
    FlowEvent,
    Postback,
    Route,
)
from ..money import money_text
from ..postbacks import templates


def revealed():
    """True when this API request asked for secrets unmasked with a token that may; outside
    a request (the shapes used elsewhere), secrets stay masked."""
    return has_app_context() and bool(g.get("reveal"))


def shown(text):
    """A URL or body as the API shows it: secret-looking values masked unless ``?reveal=1``."""
    return text if revealed() else mask_secrets(text)


def shown_headers(headers):
    """Headers as the API shows them: secret-looking ones masked unless ``?reveal=1``."""
    return dict(headers or {}) if revealed() else mask_headers(headers)


def shown_mapping(mapping):
    """Parameters as the API shows them: secret-named ones masked unless ``?reveal=1``."""
    return mapping if revealed() else mask_mapping(mapping)


FINAL_DELIVERY_STATUSES = ("delivered", "failed", "skipped")
CLICK_FIELDS = [
    "click_id",
    "flow_id",
    "created_at",
    "ip",
    "user_agent",
    "referrer",
    "language",
    "country",
    "country_name",
    "region",
    "city",
    "zip",
    "isp",
    "asn",
    "carrier",
    "connection_type",
    "device_type",
    "brand",
    "model",
    "os",
    "os_version",
    "browser",
    "browser_version",
    "is_bot",
    "is_unique",
    "external_id",
    *SUB_NAMES,
    *UTM_NAMES,
    *VAR_NAMES,
    "cost",
    "params",
    "cookies",
    "cut",
    "route_id",
    "lander_id",
    "offer_id",
]


def iso(value):
    """A stored (naive UTC) time as ``2024-05-01T10:15:03Z``; None stays None."""
    return value.isoformat() + "Z" if value is not None else None


def money_or_none(value):
    return None if value is None else money_text(value)


def click_to_dict(click):
    """A click: every captured field of DESIGN §4.1."""
    out = {name: getattr(click, name) for name in CLICK_FIELDS}
    out["created_at"] = iso(click.created_at)
    out["cost"] = money_text(click.cost)
    out["lp_clicked_at"] = iso(click.lp_clicked_at)
    out["params"] = shown_mapping(click.params)
    out["referrer"] = shown(click.referrer)
    return out


def change_to_dict(change):
    """One row of a conversion's history."""
    return {
        "at": iso(change.at),
        "status": change.status,
        "payout": money_text(change.payout),
        "inbound_id": change.inbound,
    }


def conversion_to_dict(conversion):
    """A conversion, with its history oldest first."""
    history = (
        ConversionChange.select()
        .where(ConversionChange.conversion == conversion.id)
        .order_by(ConversionChange.id)
    )
    return {
        "id": conversion.id,
        "click_id": conversion.click_id,
        "flow_id": conversion.flow_id,
        "event": conversion.event,
        "payout": money_text(conversion.payout),
        "currency": conversion.currency,
        "status": conversion.status,
        "txid": conversion.txid,
        "data": conversion.data,
        "created_at": iso(conversion.created_at),
        "updated_at": iso(conversion.updated_at),
        "history": [change_to_dict(change) for change in history],
    }


def inbound_to_dict(row):
    """An inbound log entry: a /postback or /api/v1/events request and what became of it."""
    return {
        "id": row.id,
        "at": iso(row.at),
        "endpoint": row.endpoint,
        "ip": row.ip,
        "method": row.method,
        "params": shown_mapping(row.params),
        "http_status": row.http_status,
        "accepted": row.accepted,
        "reason": row.reason,
        "result": row.result,
        "flow_id": row.flow_id,
        "click_id": row.click_id,
        "conversion_id": row.conversion_id,
    }


def attempt_to_dict(attempt):
    """One attempt of a delivery."""
    return {
        "at": iso(attempt.at),
        "status_code": attempt.status_code,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
        "response": attempt.response,
    }


def delivery_to_dict(delivery):
    """A delivery, with every attempt, oldest first."""
    attempts = (
        DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery.id).order_by(DeliveryAttempt.id)
    )
    final = delivery.status in FINAL_DELIVERY_STATUSES
    return {
        "id": delivery.id,
        "flow_id": delivery.flow_id,
        "click_id": delivery.click_id,
        "conversion_id": delivery.conversion_id,
        "postback_id": delivery.postback_id,
        "trigger": delivery.trigger,
        "method": delivery.method,
        "url": shown(delivery.url),
        "headers": shown_headers(delivery.headers),
        "body": shown(delivery.body),
        "status": delivery.status,
        "test": delivery.test,
        "error": delivery.last_error,
        "attempts_count": delivery.attempts_count,
        "next_attempt_at": None if final else iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "updated_at": iso(delivery.updated_at),
        "attempts": [attempt_to_dict(a) for a in attempts],
    }


def postback_to_dict(postback):
    """An outgoing postback of a flow, with the warnings its template raises."""
    return {
        "id": postback.id,
        "trigger": postback.trigger,
        "name": postback.name,
        "url": shown(postback.url),
        "headers": shown_headers(postback.headers),
        "success_body": postback.success_body,
        "retry_4xx": postback.retry_4xx,
        "test_event_code": postback.test_event_code,
        "events": postback.events,
        "statuses": postback.statuses,
        "payout_type": postback.payout_type,
        "enabled": postback.enabled,
        "warnings": templates.check(postback.url, postback.headers, _allowed())[1],
    }


def _allowed():
    """The allow-list of outgoing addresses, for the save-time warnings (None: no app)."""
    return allowed_networks(current_app.config) if has_app_context() else None


def flow_to_dict(flow, link):
    """A flow; ``link`` is its full tracking link."""
    return {
        "id": flow.id,
        "name": flow.name,
        "key": flow.key,
        "link": link,
        "offer_url": shown(flow.offer_url),
        "payout": money_text(flow.payout),
        "currency": flow.currency,
        "attribution_days": flow.attribution_days,
        "fallback_url": shown(flow.fallback_url),
        "traffic_source_id": flow.traffic_source_id,
        "paused": flow.paused,
        "unique_window_hours": flow.unique_window_hours,
        "timezone": flow.timezone or None,
        "bind_visitors": flow.bind_visitors,
        "events": [
            {"name": e.name, "conversion": e.conversion, "allow_duplicates": e.allow_duplicates}
            for e in flow.events.order_by(FlowEvent.id)
        ],
        "postbacks": [postback_to_dict(p) for p in flow.postbacks.order_by(Postback.id)],
        "routes": [
            route_to_dict(r) for r in Route.live().where(Route.flow == flow.id).order_by(Route.position)
        ],
        "created_at": iso(flow.created_at),
        "updated_at": iso(flow.updated_at),
    }


def route_to_dict(route):
    """A route of a flow (DESIGN §4.7)."""
    return {
        "id": route.id,
        "name": route.name,
        "enabled": route.enabled,
        "default": route.is_default,
        "action": route.action,
        "rules": route.rules,
        "landers": route.landers,
        "offers": route.offers,
    }


def offer_to_dict(offer):
    """An offer."""
    return {
        "id": offer.id,
        "name": offer.name,
        "url": shown(offer.url),
        "payout": money_text(offer.payout),
        "currency": offer.currency,
        "created_at": iso(offer.created_at),
        "updated_at": iso(offer.updated_at),
    }


def lander_to_dict(lander):
    """A lander."""
    return {
        "id": lander.id,
        "name": lander.name,
        "url": shown(lander.url),
        "created_at": iso(lander.created_at),
        "updated_at": iso(lander.updated_at),
    }


def source_to_dict(source):
    """A traffic source."""
    return {
        "id": source.id,
        "name": source.name,
        "click_id_param": source.click_id_param,
        "vars": source.vars,
        "postback_url": shown(source.postback_url),
        "postback_events": source.postback_events,
        "active": source.active,
        "created_at": iso(source.created_at),
    }


def stats_row(row, previous=True):
    """A report row (DESIGN §4.5): decimals as strings, ratios that divide by zero as null;
    ``previous`` (with ``compare=previous``) carries the same figures."""
    out = {
        "key": row.key,
        "keys": list(row.keys),
        "clicks": row.clicks,
        "unique_clicks": row.unique_clicks,
        "conversions": row.conversions,
        "revenue": money_text(row.revenue),
        "cost": money_text(row.cost),
        "profit": money_text(row.profit),
        "cr": _number(row.cr),
        "epc": money_or_none(row.epc),
        "roi": _number(row.roi),
        "events": row.events,
        "pending": row.pending,
        "declined": row.declined,
        "lp_views": row.lp_views,
        "lp_clicks": row.lp_clicks,
        "lp_ctr": _number(row.lp_ctr),
        "cpa": money_or_none(row.cpa),
        "cpc": money_or_none(row.cpc),
        "bot_clicks": row.bot_clicks,
        "currency": row.currency,
        "unconverted": {code: money_text(amount) for code, amount in sorted(row.unconverted.items())},
    }
    if previous and row.previous is not None:
        out["previous"] = stats_row(row.previous, previous=False)
        del out["previous"]["key"], out["previous"]["keys"]
    return out


def _number(value):
    return None if value is None else format(value, "f")
