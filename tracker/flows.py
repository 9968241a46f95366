"""Flows, their postbacks, routes and traffic sources, offers and landers, the bot lists:
validation of what users send (by the API or the dashboard), and saving. Saving anything a
click reads makes the flow caches forget it."""

import re
import secrets
import string
from urllib.parse import urlsplit

from .clickin.flow_cache import forget_flows
from .clickin.routing import RuleError, clean_rule
from .clickin.visitor import is_text
from .config import time_zone
from .currency import is_iso4217
from .db import db
from .enrichment.bots import clean_networks, store_bot_rules
from .errors import FieldErrors, ValidationError
from .masking import MASK, keep_masked
from .models import (
    PAYOUT_TYPES,
    ROUTE_ACTIONS,
    STATUSES,
    TRIGGERS,
    VAR_NAMES,
    Flow,
    FlowEvent,
    Lander,
    Offer,
    Postback,
    Route,
    TrafficSource,
    utcnow,
)
from .money import parse_money
from .postbacks import templates

KEY_ALPHABET = string.ascii_letters + string.digits
MAX_WINDOW_HOURS = 24 * 365
MAX_ROUTES = 100
MAX_RULES = 50
MAX_WEIGHT = 1_000_000
MAX_BOT_ENTRIES = 10000
MAX_BOT_AGENT = 500
ROUTE_KEYS = ("id", "name", "enabled", "rules", "landers", "offers", "action", "default")
# The seeds' words for the contract's (DESIGN §4.4): LendingTree's "session" postback is ours on click.
TRIGGER_ALIASES = {"session": "click"}
MAX_HEADERS = 20


def new_flow_key():
    """A random 10-character key for ``/r/<key>``."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(10))


def _text(data, name, required=False, limit=2000, default=""):
    value = data.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ValidationError("%s must be a string" % name)
    value = value.strip()
    if required and not value:
        raise ValidationError("%s is required" % name)
    if len(value) > limit:
        raise ValidationError("%s is longer than %d characters" % (name, limit))
    if "\x00" in value:
        raise ValidationError("%s contains a NUL character" % name)
    if not is_text(value):
        raise ValidationError("%s is not valid Unicode text" % name)
    return value


def _url(data, name, required=False):
    value = _text(data, name, required=required, limit=4000)
    if value:
        try:
            parsed = urlsplit(value.split("|", 1)[0] if name == "url" else value)
        except ValueError as exc:  # "http://[::1/": a bracket left open
            raise ValidationError("%s is not a valid URL: %s" % (name, exc)) from None
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError("%s must be an http:// or https:// URL" % name)
    return value


def _bool(data, name, default):
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError("%s must be true or false" % name)
    return value


def _string_list(data, name, allowed=None, fold=False):
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError("%s must be a list of names" % name)
    value = [v.strip().lower() if fold else v.strip() for v in value]
    if allowed is not None:
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValidationError("%s: %r is not one of %s" % (name, bad[0], ", ".join(allowed)))
    return value


def clean_events(value):
    """Validate ``events: [{name, conversion?, allow_duplicates?}]``; ``isDuplicate`` (the
    Pingtree seed's word) is accepted for ``allow_duplicates``. An event is a conversion only
    when marked ``conversion: true``."""
    if not isinstance(value, list):
        raise ValidationError("events must be a list")
    events, seen = [], set()
    for item in value:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise ValidationError("each event must be an object with a name")
        name = _text(item, "name", required=True, limit=100)
        if name in seen:
            raise ValidationError("event %r is listed twice" % name)
        seen.add(name)
        duplicates_name = "isDuplicate" if "isDuplicate" in item and "allow_duplicates" not in item else None
        events.append(
            {
                "name": name,
                "conversion": _bool(item, "conversion", False),
                "allow_duplicates": _bool(item, duplicates_name or "allow_duplicates", False),
            }
        )
    return events


def clean_postback(item):
    """Validate one postback ``{trigger, url, headers?, success_body?, retry_4xx?,
    test_event_code?, events?, statuses?, payout_type?, enabled?, name?}``. The seeds' words
    are taken in any case: ``Session`` for the click trigger, ``All``/``Payout``/``Debit``."""
    if not isinstance(item, dict):
        raise ValidationError("each postback must be an object")
    trigger = _text(item, "trigger", required=True, limit=16).lower()
    trigger = TRIGGER_ALIASES.get(trigger, trigger)
    if trigger not in TRIGGERS:
        raise ValidationError("trigger must be one of %s (or session, for click)" % ", ".join(TRIGGERS))
    payout_type = (_text(item, "payout_type", default="all", limit=8) or "all").lower()
    if payout_type not in PAYOUT_TYPES:
        raise ValidationError("payout_type must be one of %s" % ", ".join(PAYOUT_TYPES))
    url = _url(item, "url", required=True)
    options = clean_request_options(item)
    _check_template(url, "postback url", options["headers"])
    return {
        "trigger": trigger,
        "url": url,
        **options,
        "name": _text(item, "name", limit=200),
        "events": _string_list(item, "events"),
        "statuses": _string_list(item, "statuses", STATUSES, fold=True),
        "payout_type": payout_type,
        "enabled": _bool(item, "enabled", True),
    }


def clean_request_options(item):
    """Validate what a postback adds to its template: ``headers``, ``success_body``,
    ``retry_4xx``, ``test_event_code`` (defaults for those absent)."""
    return {
        "headers": _headers(item),
        "success_body": _regex(item, "success_body"),
        "retry_4xx": _bool(item, "retry_4xx", False),
        "test_event_code": _text(item, "test_event_code", limit=100),
    }


def _headers(item):
    """``headers: {"Name": "template"}``: header names HTTP allows, values one line of text."""
    value = item.get("headers") or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError('headers must be an object of names and texts, like {"Access-Token": "…"}')
    if len(value) > MAX_HEADERS:
        raise ValidationError("headers: at most %d" % MAX_HEADERS)
    headers = {}
    for name, template in value.items():
        name = name.strip()
        if not templates.HEADER_NAME.fullmatch(name):
            raise ValidationError("headers: %r is not a valid HTTP header name" % name[:100])
        if len(template) > 4000 or any(c in template for c in "\r\n\x00"):
            raise ValidationError(
                "headers: the value of %s must be one line of at most 4000 characters" % name
            )
        headers[name] = template.strip()
    return headers


def _regex(item, name):
    """A regular expression (``success_body``), checked to compile; '' for none."""
    value = _text(item, name, limit=500)
    if value:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError("%s is not a valid regular expression: %s" % (name, exc)) from None
    return value


def _check_template(url, name, headers=None):
    """Refuse a postback template that cannot render (a JSON body that won't parse, ...)."""
    errors, _ = templates.check(url, headers)
    if errors:
        raise ValidationError("%s: %s" % (name, errors[0]))


def keep_masked_url(name, url, stored):
    """``url`` with the secrets the API masked restored from ``stored`` (the row's texts), or a
    422 naming the masked value nothing stored matches."""
    try:
        return keep_masked(url, stored)
    except ValueError as exc:
        raise ValidationError("%s: %s" % (name, exc)) from None


def keep_masked_fields(fields, row, names):
    """``keep_masked_url`` for each of ``names`` present in ``fields`` (``row``: the stored one)."""
    for name in names:
        if isinstance(fields.get(name), str):
            fields[name] = keep_masked_url(name, fields[name], [getattr(row, name, "")] if row else [])
    return fields


def keep_masked_headers(headers, old_postbacks):
    """``headers`` with each value the API showed masked (``***``) replaced by the stored one
    of the same name, so a flow read and sent back keeps its secrets; a masked value nothing
    stored matches is refused."""
    kept = {}
    for name, value in headers.items():
        if value == MASK:
            stored = [
                v for p in old_postbacks for n, v in (p.headers or {}).items() if n.lower() == name.lower()
            ]
            if not stored:
                raise ValidationError("headers: %s is %s (masked): send its real value" % (name, MASK))
            value = stored[0]
        kept[name] = value
    return kept


def clean_postbacks(value):
    """Validate a list of postbacks."""
    if not isinstance(value, list):
        raise ValidationError("postbacks must be a list")
    return [clean_postback(item) for item in value]


FLOW_FIELDS = {
    "name",
    "offer_url",
    "payout",
    "currency",
    "attribution_days",
    "fallback_url",
    "traffic_source_id",
    "events",
    "postbacks",
    "paused",
    "timezone",
    "bind_visitors",
    "unique_window_hours",
    "routes",
}


def clean_flow(data, partial=False, flow=None):
    """Validate a flow body (all of it, or only the given fields when ``partial``; ``flow``
    is the saved one a partial body changes). Every refused field is named at once."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    unknown = set(data) - FLOW_FIELDS
    if unknown:
        raise ValidationError("unknown field %r" % sorted(unknown)[0])
    out, errors = {}, FieldErrors()
    with errors.field("name"):
        if not partial or "name" in data:
            out["name"] = _text(data, "name", required=True, limit=200)
    with errors.field("offer_url"):
        if not partial or "offer_url" in data:
            out["offer_url"] = _url(data, "offer_url")
    with errors.field("payout"):
        if "payout" in data:
            out["payout"] = parse_money(data["payout"] if data["payout"] is not None else 0, "flow payout")
    with errors.field("currency"):
        if "currency" in data:
            out["currency"] = _currency(data)
    with errors.field("attribution_days"):
        if "attribution_days" in data:
            days = data["attribution_days"]
            if days is not None and (
                isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650
            ):
                raise ValidationError("attribution_days must be a whole number of days from 1 to 3650")
            out["attribution_days"] = days
    with errors.field("fallback_url"):
        if "fallback_url" in data:
            out["fallback_url"] = _url(data, "fallback_url")
    with errors.field("traffic_source_id"):
        if "traffic_source_id" in data:
            source_id = data["traffic_source_id"]
            if source_id is not None:
                if isinstance(source_id, bool) or not isinstance(source_id, int) or not 0 < source_id < 2**63:
                    raise ValidationError("traffic_source_id must be an id (from 1 to 2^63-1)")
                if TrafficSource.get_or_none(TrafficSource.id == source_id) is None:
                    raise ValidationError("traffic source %s does not exist" % source_id)
            out["traffic_source"] = source_id
    with errors.field("paused"):
        if "paused" in data:
            out["paused"] = _bool(data, "paused", False)
    with errors.field("events"):
        if "events" in data:
            out["events"] = clean_events(data["events"] or [])
    with errors.field("postbacks"):
        if "postbacks" in data:
            out["postbacks"] = clean_postbacks(data["postbacks"] or [])
    _clean_distribution(data, out, errors)
    if not partial or "offer_url" in data or "routes" in data:
        _check_destination(out, flow, errors)
    errors.raise_any()
    return out


def _currency(data, name="currency"):
    currency = _text(data, name, default="USD", limit=3).upper() or "USD"
    if len(currency) != 3 or not currency.isalpha() or not is_iso4217(currency):
        raise ValidationError("%s must be an ISO 4217 code such as USD" % name)
    return currency


def _clean_distribution(data, out, errors):
    """The fields of DESIGN §4.7 on a flow: time zone, unique window, binding, routes."""
    with errors.field("timezone"):
        if "timezone" in data:
            zone = _text(data, "timezone", limit=64)
            if zone:
                try:
                    time_zone(zone)
                except ValueError:
                    raise ValidationError(
                        "timezone %r is not an IANA time zone such as Europe/Berlin" % zone
                    ) from None
            out["timezone"] = zone
    with errors.field("unique_window_hours"):
        if "unique_window_hours" in data:
            hours = data["unique_window_hours"]
            if hours is None:
                hours = 24
            if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_WINDOW_HOURS:
                raise ValidationError(
                    "unique_window_hours must be a whole number of hours from 1 to %d" % MAX_WINDOW_HOURS
                )
            out["unique_window_hours"] = hours
    with errors.field("bind_visitors"):
        if "bind_visitors" in data:
            out["bind_visitors"] = _bool(data, "bind_visitors", False)
    with errors.field("routes"):
        if "routes" in data:
            out["routes"] = clean_routes(data["routes"] or [])


def _check_destination(out, flow, errors):
    """A click must have somewhere to go: the offer URL, or a default route."""
    offer_url = out["offer_url"] if "offer_url" in out else (flow.offer_url if flow is not None else "")
    if offer_url or "offer_url" in errors.fields:
        return
    if "routes" in out:
        has_default = any(route["default"] for route in out["routes"])
    else:
        has_default = flow is not None and Route.live().where(Route.flow == flow, Route.is_default).exists()
    if not has_default and "routes" not in errors.fields:
        errors.add("offer_url", "offer_url is required unless a route is the default")


def save_flow(fields, flow=None):
    """Create (``flow`` None) or update a flow from cleaned fields; events, postbacks and
    routes given are replaced as a whole. Returns the flow."""
    events = fields.pop("events", None)
    postbacks = fields.pop("postbacks", None)
    routes = fields.pop("routes", None)
    keep_masked_fields(fields, flow, ("offer_url", "fallback_url"))
    with db.atomic():
        if flow is None:
            flow = Flow.create(key=new_flow_key(), **fields)
        else:
            for name, value in fields.items():
                setattr(flow, name if name != "traffic_source" else "traffic_source_id", value)
            flow.updated_at = utcnow()
            flow.save()
        if events is not None:
            FlowEvent.delete().where(FlowEvent.flow == flow).execute()
            for event in events:
                FlowEvent.create(flow=flow, **event)
        if postbacks is not None:
            old = list(Postback.select().where(Postback.flow == flow))
            for postback in postbacks:
                postback["headers"] = keep_masked_headers(postback["headers"], old)
                postback["url"] = keep_masked_url("postback url", postback["url"], [p.url for p in old])
            Postback.delete().where(Postback.flow == flow).execute()
            for postback in postbacks:
                Postback.create(flow=flow, **postback)
        if routes is not None:
            save_routes(flow, routes)
    forget_flows()
    return flow


def flow_link(flow, base_url):
    """The full tracking link of a flow."""
    return base_url.rstrip("/") + "/r/" + flow.key


def clean_source(data, partial=False):
    """Validate a traffic source body."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    unknown = set(data) - {"name", "click_id_param", "vars", "postback_url", "postback_events", "active"}
    if unknown:
        raise ValidationError("unknown field %r" % sorted(unknown)[0])
    out = {}
    if not partial or "name" in data:
        out["name"] = _text(data, "name", required=True, limit=200)
    if not partial or "click_id_param" in data:
        out["click_id_param"] = _text(data, "click_id_param", limit=100)
    if "vars" in data:
        mapping = data["vars"] or {}
        if not isinstance(mapping, dict) or not all(
            k in VAR_NAMES and isinstance(v, str) and v.strip() for k, v in mapping.items()
        ):
            raise ValidationError('vars maps var1…var10 to parameter names, like {"var1": "zoneid"}')
        out["vars"] = {k: v.strip() for k, v in mapping.items()}
    if "postback_url" in data:
        out["postback_url"] = _url({"url": data["postback_url"] or ""}, "url")
        if out["postback_url"]:
            _check_template(out["postback_url"], "postback_url")
    if "postback_events" in data:
        out["postback_events"] = _string_list(data, "postback_events")
    if "active" in data:
        out["active"] = _bool(data, "active", True)
    return out


def save_source(fields, source=None):
    """Create or update a traffic source from cleaned fields."""
    return _save_row(TrafficSource, keep_masked_fields(fields, source, ("postback_url",)), source)


def save_postback(fields, flow, postback=None):
    """Add a cleaned postback to ``flow``, or update ``postback`` in place (its id stays,
    so the deliveries it made still point at it). Returns the postback."""
    if "headers" in fields:
        old = [postback] if postback is not None else list(flow.postbacks)
        fields["headers"] = keep_masked_headers(fields["headers"], old)
    if "url" in fields:
        old = [postback] if postback is not None else list(flow.postbacks)
        fields["url"] = keep_masked_url("postback url", fields["url"], [p.url for p in old])
    with db.atomic():
        if postback is None:
            postback = Postback.create(flow=flow, **fields)
        else:
            for name, value in fields.items():
                setattr(postback, name, value)
            postback.save()
        touch_flow(postback.flow_id)
    forget_flows()
    return postback


def delete_postback(postback):
    """Remove a postback of a flow (its deliveries stay in the log)."""
    with db.atomic():
        postback.delete_instance()
        touch_flow(postback.flow_id)
    forget_flows()


def touch_flow(flow_id):
    """Move the flow's ``updated_at``: its postbacks changed, and the other processes' caches of
    them (``conversions.record.flow_rules``) go by it."""
    Flow.update(updated_at=utcnow()).where(Flow.id == flow_id).execute()


def soft_delete_flow(flow):
    """Soft delete: the link stops working, its clicks and conversions stay in the reports."""
    Flow.update(deleted=True, updated_at=utcnow()).where(Flow.id == flow.id).execute()
    forget_flows()


def source_link(flow, base_url):
    """The tracking link to paste into the traffic source: the flow's link plus the source's
    click id parameter and mapped vars, each as ``name={name}``, a placeholder to replace
    with the source's own macro (``?clickid={clickid}&zoneid={zoneid}``)."""
    link = flow_link(flow, base_url)
    source = flow.traffic_source if flow.traffic_source_id else None
    if source is None:
        return link
    names = [source.click_id_param] if source.click_id_param else []
    mapped = sorted((source.vars or {}).items(), key=lambda item: int(item[0][3:]))
    names += [param for _, param in mapped if param not in names]
    if not names:
        return link
    return link + "?" + "&".join("%s={%s}" % (name, name) for name in names)


# ---- routes (DESIGN §4.7) -------------------------------------------------------------------


def clean_routes(value):
    """Validate a flow's ``routes``: every mistake is named at once, by route and rule
    (``ValidationError.fields``: ``routes.0.rules.1`` and so on)."""
    if not isinstance(value, list):
        raise ValidationError("routes must be a list")
    if len(value) > MAX_ROUTES:
        raise ValidationError("a flow has at most %d routes" % MAX_ROUTES)
    errors = FieldErrors()
    live = {
        "lander": set(Lander.live(Lander.id).scalars()) if value else set(),
        "offer": set(Offer.live(Offer.id).scalars()) if value else set(),
    }
    routes = [_clean_route(item, index, live, errors) for index, item in enumerate(value)]
    defaults = [index + 1 for index, route in enumerate(routes) if route["default"]]
    if len(defaults) > 1:
        errors.add(
            "routes", "only one route can be the default (routes %s are)" % ", ".join(map(str, defaults))
        )
    errors.raise_any()
    return routes


def _clean_route(item, index, live, errors):
    key = "routes.%d" % index
    if not isinstance(item, dict):
        errors.add(key, "route %d must be an object {name, rules, offers, …}" % (index + 1))
        return {"default": False}
    name = item.get("name")
    label = "route %d" % (index + 1) + (
        " %r" % name.strip()[:60] if isinstance(name, str) and name.strip() else ""
    )

    def check(field, reason, separator=": "):
        errors.add(key + field, label + separator + reason)

    route = {"id": None, "name": "", "enabled": True, "rules": [], "landers": [], "offers": []}
    route.update(action="redirect", default=False)
    unknown = sorted(set(item) - set(ROUTE_KEYS))
    if unknown:
        check("", "unknown key %r (a route has %s)" % (str(unknown[0])[:60], ", ".join(ROUTE_KEYS)))
    for field, clean in (
        ("id", lambda: _route_id(item.get("id"))),
        ("name", lambda: _text(item, "name", required=True, limit=200)),
        ("enabled", lambda: _bool(item, "enabled", True)),
        ("default", lambda: _bool(item, "default", False)),
        ("action", lambda: _action(item.get("action"))),
    ):
        try:
            route[field] = clean()
        except ValidationError as exc:
            check("." + field, exc.message)
    route["rules"] = _clean_rules(item.get("rules"), check)
    if route["default"] and route["rules"]:
        check(".rules", "the default route takes the clicks no other route takes, so it has no rules")
    for kind in ("lander", "offer"):
        try:
            route[kind + "s"] = _clean_weights(item.get(kind + "s"), kind, live[kind])
        except ValidationError as exc:
            check("." + kind + "s", exc.message)
    if route["action"] == "redirect" and not any(offer["weight"] > 0 for offer in route["offers"]):
        if "%s.offers" % key not in errors.fields:
            check(".offers", "needs at least one offer with a weight above 0 (or the action not_found)")
    return route


def _route_id(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ValidationError("id must be the id of one of the flow's routes")
    return value


def _action(value):
    action = "redirect" if value in (None, "") else value
    if action not in ROUTE_ACTIONS:
        raise ValidationError("action must be one of %s" % ", ".join(ROUTE_ACTIONS))
    return action


def _clean_rules(value, check):
    if value is None:
        return []
    if not isinstance(value, list):
        check(".rules", "rules must be a list of {field, op, values}")
        return []
    if len(value) > MAX_RULES:
        check(".rules", "a route has at most %d rules" % MAX_RULES)
        return []
    rules = []
    for number, rule in enumerate(value, 1):
        try:
            rules.append(clean_rule(rule))
        except RuleError as exc:
            check(".rules.%d" % (number - 1), "rule %d: %s" % (number, exc), ", ")
    return rules


def _clean_weights(value, kind, live):
    """``[{<kind>_id, weight}]``: existing landers or offers, each once, whole weights."""
    if value is None:
        return []
    id_key = kind + "_id"
    if not isinstance(value, list):
        raise ValidationError("%ss must be a list of {%s, weight}" % (kind, id_key))
    out, seen = [], set()
    for item in value:
        if not isinstance(item, dict) or set(item) - {id_key, "weight"}:
            raise ValidationError("%ss must be a list of {%s, weight}" % (kind, id_key))
        item_id, weight = item.get(id_key), item.get("weight", 1)
        if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id not in live:
            raise ValidationError("%s %s does not exist" % (kind, str(item_id)[:40]))
        if item_id in seen:
            raise ValidationError("%s %d is listed twice" % (kind, item_id))
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ValidationError(
                "the weight of %s %d must be a whole number from 0 (paused) to %d"
                % (kind, item_id, MAX_WEIGHT)
            )
        seen.add(item_id)
        out.append({id_key: item_id, "weight": weight})
    return out


def save_routes(flow, routes):
    """Replace ``flow``'s routes by cleaned ``routes``, in order. A route given with the id
    of one of the flow's routes updates it in place (its clicks keep pointing at it); the
    routes left out are marked deleted, so reports still name them."""
    now = utcnow()
    existing = set(Route.live(Route.id).where(Route.flow == flow).scalars())
    kept = []
    for position, route in enumerate(routes):
        fields = {
            "position": position,
            "name": route["name"],
            "enabled": route["enabled"],
            "is_default": route["default"],
            "action": route["action"],
            "rules": route["rules"],
            "landers": route["landers"],
            "offers": route["offers"],
            "updated_at": now,
        }
        if route["id"] in existing and route["id"] not in kept:
            Route.update(**fields).where(Route.id == route["id"]).execute()
            kept.append(route["id"])
        else:
            kept.append(Route.create(flow=flow, created_at=now, **fields).id)
    left_out = Route.live(Route.id).where(Route.flow == flow, Route.id.not_in(kept or [0]))
    Route.update(deleted=True, updated_at=now).where(Route.id.in_(left_out)).execute()


def flow_routes(flow):
    """The flow's routes in order (not those removed)."""
    return list(Route.live().where(Route.flow == flow).order_by(Route.position))


def clone_flow(flow):
    """A new flow (its own key and link) with ``flow``'s settings, events, postbacks and
    routes; clicks and conversions stay with the original."""
    with db.atomic():
        copy = Flow.create(
            **_copied(flow, ("id", "key", "deleted", "created_at", "updated_at")),
            key=new_flow_key(),
        )
        copy.name = (flow.name + " (copy)")[:200]
        copy.save()
        for model, rows in (
            (FlowEvent, flow.events.order_by(FlowEvent.id)),
            (Postback, flow.postbacks.order_by(Postback.id)),
            (Route, flow_routes(flow)),
        ):
            for row in rows:
                model.create(**_copied(row, ("id", "flow", "created_at", "updated_at")), flow=copy)
    return copy


def _copied(row, leave_out):
    """The column values of ``row`` but ``leave_out`` (every column, those added later too)."""
    return {
        field.name: getattr(row, field.name)
        for field in row._meta.sorted_fields
        if field.name not in leave_out
    }


# ---- offers and landers ---------------------------------------------------------------------


def clean_offer(data, partial=False):
    """Validate an offer ``{name, url, payout?, currency?}``; every refused field at once."""
    return _clean_target(data, partial, {"name", "url", "payout", "currency"})


def clean_lander(data, partial=False):
    """Validate a lander ``{name, url}``; every refused field at once."""
    return _clean_target(data, partial, {"name", "url"})


def _clean_target(data, partial, fields):
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    unknown = set(data) - fields
    if unknown:
        raise ValidationError(
            "unknown field %r (known: %s)" % (sorted(unknown)[0], ", ".join(sorted(fields)))
        )
    out, errors = {}, FieldErrors()
    with errors.field("name"):
        if not partial or "name" in data:
            out["name"] = _text(data, "name", required=True, limit=200)
    with errors.field("url"):
        if not partial or "url" in data:
            out["url"] = _url(data, "url", required=True)
    with errors.field("payout"):
        if "payout" in data:
            out["payout"] = parse_money(data["payout"] if data["payout"] is not None else 0, "payout")
    with errors.field("currency"):
        if "currency" in data:
            out["currency"] = _currency(data)
    errors.raise_any()
    return out


def save_offer(fields, offer=None):
    """Create or update an offer from cleaned fields."""
    return _save_row(Offer, keep_masked_fields(fields, offer, ("url",)), offer)


def save_lander(fields, lander=None):
    """Create or update a lander from cleaned fields."""
    return _save_row(Lander, keep_masked_fields(fields, lander, ("url",)), lander)


def _save_row(model, fields, row):
    """Create a ``model`` row from cleaned fields, or update ``row`` (the flow caches forget
    what they read of it)."""
    if row is None:
        return model.create(**fields)
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.save()
    forget_flows()
    return row


def routes_using(kind, item_id):
    """``[(flow name, route name)]`` of the live routes sending clicks to lander or offer
    ``item_id`` (``kind`` is "lander" or "offer")."""
    rows = (
        Route.live(Route, Flow.name)
        .join(Flow)
        .where(Flow.deleted == False)  # noqa: E712
        .order_by(Flow.id, Route.position)
    )
    return [
        (route.flow.name, route.name)
        for route in rows
        if any(item[kind + "_id"] == item_id for item in getattr(route, kind + "s"))
    ]


def delete_target(kind, row):
    """Delete a lander or an offer that no route uses (409 naming one that does); it stays
    in the database for the reports' names."""
    users = routes_using(kind, row.id)
    if users:
        flow_name, route_name = users[0]
        raise ValidationError(
            "%s %d is used by route %r of flow %r: take it out of the route first"
            % (kind, row.id, route_name, flow_name),
            409,
        )
    type(row).update(deleted=True, updated_at=utcnow()).where(type(row).id == row.id).execute()
    forget_flows()


def clean_bot_rules(data):
    """Validate the bot lists ``{ips: [CIDR, …], user_agents: [substring, …]}``; every mistake
    is named at once (``ValidationError.fields`` by list). Duplicates are dropped, order kept."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    errors = FieldErrors()
    unknown = sorted(set(data) - {"ips", "user_agents"})
    if unknown:
        errors.add(unknown[0], "unknown field %r (bot rules have ips and user_agents)" % unknown[0])
    out = {"ips": [], "user_agents": []}
    with errors.field("ips"):
        out["ips"] = clean_networks(_bot_entries(data, "ips"), "ips")
    with errors.field("user_agents"):
        agents = [agent.strip() for agent in _bot_entries(data, "user_agents")]
        for agent in agents:
            if not agent or len(agent) > MAX_BOT_AGENT or "\x00" in agent or not is_text(agent):
                raise ValidationError(
                    "user_agents: %r must be a non-empty text of at most %d characters"
                    % (agent[:60], MAX_BOT_AGENT)
                )
        out["user_agents"] = list(dict.fromkeys(agents))
    errors.raise_any()
    return out


def _bot_entries(data, name):
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("%s must be a list of texts" % name)
    if len(value) > MAX_BOT_ENTRIES:
        raise ValidationError("%s holds more than %d entries" % (name, MAX_BOT_ENTRIES))
    return value


def save_bot_rules(rules):
    """Replace the bot lists with cleaned ``rules`` (``clean_bot_rules``)."""
    store_bot_rules(rules)
    forget_flows()
