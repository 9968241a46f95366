"""Traffic distribution (DESIGN §4.7): a flow's routes, their rules and their weighted landers
and offers.

A rule ``{"field": F, "op": OP, "values": [...]}`` is checked once, on save (``clean_rule``),
and compiled once, when the flow cache loads the flow (``load_router``), into a plain test
on the captured click's values. A click then takes the first enabled route whose tests all
hold, else the default route, else the flow's ``offer_url``; its lander and offer are drawn by
weight. No database read happens here, except the visitor's previous click on the flow, and
only for flows that bind visitors or have an ``is_unique`` rule (an indexed lookup).
"""

import bisect
import datetime
import functools
import itertools
import logging
import random
from dataclasses import dataclass
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ..enrichment.bots import NetworkSet, clean_networks
from ..errors import ValidationError
from ..models import SUB_NAMES, UTM_NAMES, VAR_NAMES, Lander, Offer, Route
from ..tokens import TokenContext, fill_url, offer_url
from .visitor import is_text

logger = logging.getLogger(__name__)

# Click fields a rule may read as text (DESIGN §4.1), compared case-insensitively.
TEXT_FIELDS = (
    "country",
    "country_name",
    "region",
    "city",
    "zip",
    "language",
    "device_type",
    "os",
    "os_version",
    "browser",
    "browser_version",
    "brand",
    "model",
    "isp",
    "carrier",
    "connection_type",
    "referrer",
    "user_agent",
    "external_id",
    *SUB_NAMES,
    *UTM_NAMES,
    *VAR_NAMES,
)
FLAG_FIELDS = ("is_bot", "is_unique")
CLOCK_FIELDS = ("hour", "weekday")
FIELDS = (*TEXT_FIELDS, "asn", "ip", *FLAG_FIELDS, *CLOCK_FIELDS)
PARAM_PREFIX = "param:"
OPS = ("in", "not_in", "contains", "not_contains", "empty", "not_empty")
MATCH_OPS = ("in", "not_in")
NO_VALUE_OPS = ("empty", "not_empty")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_VALUES = 1000
MAX_VALUE = 500
NO_PARAMS = {}
FIELD_HINT = "a click field such as country, device_type, os, isp, ip, sub1, utm_source, param:NAME, hour"


class RuleError(ValueError):
    """A rule that cannot be saved; the message says why."""


# ---- checking and compiling one rule ------------------------------------------------------


def clean_rule(rule):
    """The rule as stored, ``{"field", "op", "values"}`` with values as trimmed texts; a
    ``RuleError`` says what is wrong. Compiling it (``compile_rule``) then cannot fail."""
    if not isinstance(rule, dict):
        raise RuleError("a rule must be an object {field, op, values}")
    unknown = sorted(set(rule) - {"field", "op", "values"})
    if unknown:
        raise RuleError("unknown key %r (a rule has field, op, values)" % str(unknown[0])[:60])
    field, op = rule.get("field"), rule.get("op")
    if not isinstance(field, str) or not field.strip():
        raise RuleError("field is required (%s)" % FIELD_HINT)
    field = field.strip()
    if field.lower().startswith(PARAM_PREFIX):
        name = field[len(PARAM_PREFIX) :].strip()
        if not name or len(name) > 100 or "\x00" in name or not is_text(name):
            raise RuleError("param: needs a query parameter name, like param:zoneid")
        field = PARAM_PREFIX + name
    elif field.lower() in FIELDS:
        field = field.lower()
    else:
        raise RuleError("unknown field %r (%s)" % (field[:60], FIELD_HINT))
    if not isinstance(op, str) or op.strip().lower() not in OPS:
        raise RuleError("op must be one of %s" % ", ".join(OPS))
    op = op.strip().lower()
    if field in FLAG_FIELDS + CLOCK_FIELDS and op not in MATCH_OPS:
        raise RuleError("%s takes the ops in and not_in" % field)
    values = [] if op in NO_VALUE_OPS else _clean_values(field, rule.get("values"))
    compile_rule({"field": field, "op": op, "values": values})  # the field's own checks
    return {"field": field, "op": op, "values": values}


def _clean_values(field, values):
    if not isinstance(values, list) or not values:
        raise RuleError("values must be a non-empty list")
    if len(values) > MAX_VALUES:
        raise RuleError("values holds more than %d entries" % MAX_VALUES)
    out = []
    for value in values:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise RuleError("values must be texts")
        value = value.strip()
        if not value or len(value) > MAX_VALUE or "\x00" in value or not is_text(value):
            raise RuleError("each value must be a non-empty text of at most %d characters" % MAX_VALUE)
        out.append(value)
    return list(dict.fromkeys(out))


def compile_rule(rule):
    """A cleaned rule as ``(key, test)``: ``test(facts) -> bool`` reads ``facts[key]``, the
    click's value the rule is about as ``read_facts`` gives it. A ``RuleError`` for values the
    field cannot hold."""
    field, op, values = rule["field"], rule["op"], rule["values"]
    if field in CLOCK_FIELDS:
        wanted = frozenset(_hours(values) if field == "hour" else _weekdays(values))
    elif field in FLAG_FIELDS:
        flags = {value.lower() for value in values}
        if not flags <= {"true", "false"}:
            raise RuleError('%s takes the values "true" and "false"' % field)
        wanted = {flag == "true" for flag in flags}
    elif field == "ip" and op in MATCH_OPS:
        wanted = networks(tuple(values))
    elif field == "asn" and op in MATCH_OPS:
        wanted = frozenset(value.upper().removeprefix("AS").strip() for value in values)
    elif op in MATCH_OPS:
        wanted = frozenset(value.lower() for value in values)
    else:
        wanted = tuple(value.lower() for value in values)
    return field, _test(field, op, wanted)


@functools.lru_cache(maxsize=256)
def networks(values):
    """The ``NetworkSet`` of an ``ip`` rule's values; one for the same values, so that the
    routes checking a click against the same list share its last answer."""
    try:
        return NetworkSet(clean_networks(values, "values"))
    except ValidationError as exc:
        raise RuleError(exc.message) from None


def _test(key, op, wanted):
    """One closure a rule, as the click path runs twenty of them: ``wanted`` is what
    ``facts[key]`` is tested against (a set, a NetworkSet, or the substrings)."""
    if op == "in":
        return lambda facts: facts[key] in wanted
    if op == "not_in":
        return lambda facts: facts[key] not in wanted
    if op == "empty":
        return lambda facts: not facts[key].strip()
    if op == "not_empty":
        return lambda facts: bool(facts[key].strip())

    def contains(facts):
        text = facts[key]
        for value in wanted:  # str's own search beats a regex alternation threefold
            if value in text:
                return True
        return False

    return contains if op == "contains" else lambda facts: not contains(facts)


def fact_reader(key):
    """How the fact ``key`` is read from the click's values: a text field (``ip`` too) or a
    query parameter lowercased, ``asn`` as text, ``is_bot`` and ``is_unique`` as booleans.
    (``hour`` and ``weekday`` come from the clock.)"""
    if key.startswith(PARAM_PREFIX):
        name = key[len(PARAM_PREFIX) :]
        return lambda data: ((data.get("params") or NO_PARAMS).get(name) or "").lower()
    if key == "asn":
        return lambda data: "" if data.get("asn") is None else str(data["asn"])
    if key in FLAG_FIELDS:
        return lambda data: bool(data.get(key))
    return lambda data: (data.get(key) or "").lower()


def fact_readers(keys):
    """``((key, reader), …)`` for the facts ``keys`` (but the clock's: ``read_facts`` adds them)."""
    return tuple((key, fact_reader(key)) for key in sorted(set(keys) - set(CLOCK_FIELDS)))


def read_facts(readers, data, clock=None):
    """The click's values its flow's rules read, each once: ``readers`` is ``[(key, reader)]``;
    ``clock`` is ``(hour, isoweekday)`` in the flow's zone, when a rule needs it."""
    facts = {key: read(data) for key, read in readers}
    if clock is not None:
        facts["hour"], facts["weekday"] = clock
    return facts


def _hours(values):
    hours = set()
    for value in values:
        first, dash, last = value.partition("-")
        try:
            start, end = int(first), int(last) if dash else int(first)
        except ValueError:
            raise RuleError('hour takes hours 0 to 23 or ranges like "9-17", not %r' % value[:60]) from None
        if not (0 <= start <= 23 and 0 <= end <= 23):
            raise RuleError('hour takes hours 0 to 23 or ranges like "9-17", not %r' % value[:60])
        span = range(start, end + 1) if start <= end else itertools.chain(range(start, 24), range(end + 1))
        hours.update(span)
    return hours


def _weekdays(values):
    days = set()
    for value in values:
        word = value.lower()
        if word in WEEKDAYS:
            days.add(WEEKDAYS.index(word) + 1)
        elif word in FULL_WEEKDAYS:
            days.add(FULL_WEEKDAYS.index(word) + 1)
        elif word in ("1", "2", "3", "4", "5", "6", "7"):
            days.add(int(word))
        else:
            raise RuleError("weekday takes mon…sun (or 1 = Monday … 7 = Sunday), not %r" % value[:60])
    return days


def local_clock(created_at, zone):
    """``(hour, isoweekday)`` of a stored (naive UTC) time in ``zone``."""
    local = created_at.replace(tzinfo=datetime.timezone.utc).astimezone(zone)
    return local.hour, local.isoweekday()


# ---- the compiled routes of a flow ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A lander or an offer as the click path needs it."""

    id: int
    url: str
    payout: object = None
    currency: str = ""


class Weighted:
    """Items drawn by integer weight (0 pauses one), with ``rand`` in [0, 1)."""

    def __init__(self, pairs):
        self.items, self.bounds, total = [], [], 0
        for item, weight in pairs:
            if weight > 0:
                total += weight
                self.items.append(item)
                self.bounds.append(total)
        self.total = total
        self.ids = {item.id: item for item in self.items}

    def pick(self, rand, keep=None):
        """The item of id ``keep`` while it is still drawn here, else one drawn by weight;
        None when every weight is 0."""
        if keep is not None and keep in self.ids:
            return self.ids[keep]
        if not self.items:
            return None
        return self.items[bisect.bisect_right(self.bounds, rand() * self.total)]


@dataclass(frozen=True)
class CompiledRoute:
    id: int
    name: str
    tests: tuple
    landers: Weighted
    offers: Weighted
    offer_list: tuple  # every offer, in the route's order (GET /click/<n>)
    not_found: bool


@dataclass(frozen=True)
class Router:
    """A flow's routes, compiled: ``routes`` the enabled ones in order, ``default`` the
    enabled default route (or None), ``by_id`` every route of the flow (for ``/click``),
    ``readers`` what the rules read of a click (``read_facts``)."""

    routes: tuple
    default: CompiledRoute
    readers: tuple
    by_id: dict
    zone: ZoneInfo
    bind_visitors: bool
    needs_clock: bool
    needs_history: bool
    window: datetime.timedelta


class Decision(NamedTuple):
    """Where one click goes: its route, and the lander and offer drawn (either may be None)."""

    route: CompiledRoute = None
    lander: Target = None
    offer: Target = None


def load_router(flow, default_zone="UTC"):
    """Read and compile ``flow``'s routes (with their landers' and offers' URLs); None for a
    flow without routes. A route that no longer compiles is skipped, and logged."""
    routes = list(Route.live().where(Route.flow == flow.id).order_by(Route.position))
    if not routes:
        return None
    lander_ids = {item["lander_id"] for route in routes for item in route.landers}
    offer_ids = {item["offer_id"] for route in routes for item in route.offers}
    landers = {row.id: Target(row.id, row.url) for row in Lander.select().where(Lander.id.in_(lander_ids))}
    offers = {
        row.id: Target(row.id, row.url, row.payout, row.currency)
        for row in Offer.select().where(Offer.id.in_(offer_ids))
    }
    return compile_router(flow, routes, landers, offers, default_zone)


def compile_router(flow, routes, landers, offers, default_zone="UTC"):
    """Compile ``routes`` (Route rows, in order) of ``flow`` with ``landers`` and ``offers``
    (``{id: Target}``)."""
    compiled = {}
    for route in routes:
        try:
            compiled[route.id] = _compile_route(route, landers, offers)
        except (RuleError, KeyError, TypeError) as exc:
            logger.error("flow %s: route %s (%r) is skipped: %s", flow.id, route.id, route.name, exc)
    enabled = [r for r in routes if r.enabled and r.id in compiled]
    keys = {rule["field"] for r in enabled if not r.is_default for rule in r.rules}
    default = next((compiled[r.id] for r in enabled if r.is_default), None)
    return Router(
        routes=tuple(compiled[r.id] for r in enabled if not r.is_default),
        default=default,
        readers=fact_readers(keys),
        by_id=compiled,
        zone=ZoneInfo(flow.timezone or default_zone),
        bind_visitors=flow.bind_visitors,
        needs_clock=bool(keys & set(CLOCK_FIELDS)),
        needs_history=flow.bind_visitors or "is_unique" in keys,
        window=datetime.timedelta(hours=flow.unique_window_hours),
    )


def _compile_route(route, landers, offers):
    offer_list = tuple(offers[item["offer_id"]] for item in route.offers)
    return CompiledRoute(
        id=route.id,
        name=route.name,
        tests=tuple(compile_rule(rule)[1] for rule in route.rules),
        landers=Weighted((landers[item["lander_id"]], item["weight"]) for item in route.landers),
        offers=Weighted(zip(offer_list, (item["weight"] for item in route.offers), strict=True)),
        offer_list=offer_list,
        not_found=route.action == "not_found",
    )


def route_click(flow, click, recall=None, rand=random.random):
    """Choose where ``click`` goes by ``flow``'s routes, and note it on the click (its
    ``route_id``, ``lander_id``, ``offer_id``). ``recall(click, window)`` reads the visitor's
    previous click on the flow (``(lander_id, offer_id)`` or None), asked only when the flow
    binds visitors or a rule reads ``is_unique``. Returns the ``Decision``, or None when the
    flow has no routes (its ``offer_url`` then), or when routing failed (logged: the click
    still goes on, to the flow's ``offer_url``)."""
    router = getattr(flow, "router", None)
    if router is None:
        return None
    try:
        return _route(router, click, recall, rand)
    except Exception:
        logger.exception("flow %s: could not route click %s", flow.id, click.click_id)
        click.route_id = click.lander_id = click.offer_id = None
        return None


def _route(router, click, recall, rand):
    previous = None
    if router.needs_history and recall is not None:
        previous = recall(click, router.window)
        click.is_unique = previous is None
    clock = local_clock(click.created_at, router.zone) if router.needs_clock else None
    facts = read_facts(router.readers, click.__data__, clock)
    route = router.default
    for candidate in router.routes:
        for test in candidate.tests:
            if not test(facts):
                break
        else:
            route = candidate
            break
    if route is None:
        return Decision()
    click.route_id = route.id
    if route.not_found:
        return Decision(route)
    keep_lander, keep_offer = previous if (previous and router.bind_visitors) else (None, None)
    lander = route.landers.pick(rand, keep_lander)
    offer = route.offers.pick(rand, keep_offer)
    click.lander_id = lander.id if lander is not None else None
    click.offer_id = offer.id if offer is not None else None
    return Decision(route, lander, offer)


def destination_url(flow, click, decision, public_url=""):
    """Where the click's 302 goes: its lander's URL, else its offer's, else the flow's
    ``offer_url``; tokens filled. None for a ``not_found`` route (or no URL at all)."""
    if decision is not None and decision.route is not None and decision.route.not_found:
        return None
    target = (decision.lander or decision.offer) if decision is not None else None
    return target_url(flow, click, target, public_url)


def target_url(flow, click, target, public_url=""):
    """``target``'s URL (a lander's or an offer's) with the click's tokens filled, or the
    flow's ``offer_url`` when there is none; None when that is empty too."""
    if target is not None:
        context = TokenContext(click=click, flow=flow, now=click.created_at, public_url=public_url)
        return fill_url(target.url, context)
    return offer_url(flow, click) if flow.offer_url else None


def choose_lander_offer(flow, click, position=None):
    """The offer a lander click goes on to, made the click's offer: the ``position``-th
    (1-based) of the click's route when given and there, else the click's own offer. None
    when neither is known (the flow's ``offer_url`` then)."""
    router = getattr(flow, "router", None)
    route = router.by_id.get(click.route_id) if router is not None else None
    offer = None
    if route is not None and position is not None and 1 <= position <= len(route.offer_list):
        offer = route.offer_list[position - 1]
    elif click.offer_id is not None:
        offer = next((o for o in (route.offer_list if route else ()) if o.id == click.offer_id), None)
        if offer is None:  # a route since changed or removed: the offer itself
            row = Offer.get_or_none(Offer.id == click.offer_id)
            offer = Target(row.id, row.url, row.payout, row.currency) if row is not None else None
    if offer is not None:
        click.offer_id = offer.id
    return offer
