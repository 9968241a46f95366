"""Flows, their postbacks and traffic sources: validation of what users send (by the API or
the dashboard), and saving. Saving anything a click reads makes the flow caches forget it."""

import re
import secrets
import string
from urllib.parse import urlparse

from .clickin.flow_cache import forget_flows
from .db import db
from .errors import ValidationError
from .masking import MASK
from .models import (
    PAYOUT_TYPES,
    STATUSES,
    TRIGGERS,
    VAR_NAMES,
    Flow,
    FlowEvent,
    Postback,
    TrafficSource,
    utcnow,
)
from .money import parse_money
from .postbacks import templates

KEY_ALPHABET = string.ascii_letters + string.digits
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
    return value


def _url(data, name, required=False):
    value = _text(data, name, required=required, limit=4000)
    if value:
        parsed = urlparse(value.split("|", 1)[0] if name == "url" else value)
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


def clean_flow(data, partial=False):
    """Validate a flow body (all of it, or only the given fields when ``partial``)."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    unknown = set(data) - {
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
    }
    if unknown:
        raise ValidationError("unknown field %r" % sorted(unknown)[0])
    out = {}
    if not partial or "name" in data:
        out["name"] = _text(data, "name", required=True, limit=200)
    if not partial or "offer_url" in data:
        out["offer_url"] = _url(data, "offer_url", required=True)
    if "payout" in data:
        out["payout"] = parse_money(data["payout"] if data["payout"] is not None else 0, "flow payout")
    if "currency" in data:
        currency = _text(data, "currency", default="USD", limit=3).upper() or "USD"
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError("currency must be an ISO 4217 code such as USD")
        out["currency"] = currency
    if "attribution_days" in data:
        days = data["attribution_days"]
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650
        ):
            raise ValidationError("attribution_days must be a whole number of days from 1 to 3650")
        out["attribution_days"] = days
    if "fallback_url" in data:
        out["fallback_url"] = _url(data, "fallback_url")
    if "traffic_source_id" in data:
        source_id = data["traffic_source_id"]
        if source_id is not None:
            if isinstance(source_id, bool) or not isinstance(source_id, int):
                raise ValidationError("traffic_source_id must be an id")
            if TrafficSource.get_or_none(TrafficSource.id == source_id) is None:
                raise ValidationError("traffic source %s does not exist" % source_id)
        out["traffic_source"] = source_id
    if "paused" in data:
        out["paused"] = _bool(data, "paused", False)
    if "events" in data:
        out["events"] = clean_events(data["events"] or [])
    if "postbacks" in data:
        out["postbacks"] = clean_postbacks(data["postbacks"] or [])
    return out


def save_flow(fields, flow=None):
    """Create (``flow`` None) or update a flow from cleaned fields; events and postbacks
    given are replaced as a whole. Returns the flow."""
    events = fields.pop("events", None)
    postbacks = fields.pop("postbacks", None)
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
            Postback.delete().where(Postback.flow == flow).execute()
            for postback in postbacks:
                Postback.create(flow=flow, **postback)
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
    if source is None:
        return TrafficSource.create(**fields)
    for name, value in fields.items():
        setattr(source, name, value)
    source.updated_at = utcnow()
    source.save()
    forget_flows()
    return source


def save_postback(fields, flow, postback=None):
    """Add a cleaned postback to ``flow``, or update ``postback`` in place (its id stays,
    so the deliveries it made still point at it). Returns the postback."""
    if "headers" in fields:
        old = [postback] if postback is not None else list(flow.postbacks)
        fields["headers"] = keep_masked_headers(fields["headers"], old)
    if postback is None:
        postback = Postback.create(flow=flow, **fields)
    else:
        for name, value in fields.items():
            setattr(postback, name, value)
        postback.save()
    forget_flows()
    return postback


def delete_postback(postback):
    """Remove a postback of a flow (its deliveries stay in the log)."""
    postback.delete_instance()
    forget_flows()


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
