"""What an advertiser sends, read into plain values: the ``Inbound`` request and its ``Claim``.

``/postback`` (DESIGN §4.2) and ``/api/v1/events`` (§4.3) name their fields differently;
both are read here into one ``Claim`` that ``record.record_conversion`` records.
Every refusal is a ``Refused`` carrying the HTTP status and a reason the sender can act on.
"""

import datetime
import hmac
import ipaddress
import logging
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import unquote

from ..clickin.visitor import clean_params, clean_text
from ..config import parse_networks
from ..currency import is_iso4217
from ..errors import ValidationError
from ..models import STATUSES
from ..money import parse_money

logger = logging.getLogger(__name__)

POSTBACK_ALIASES = {
    "click_id": ("click_id", "clickid", "click", "subid"),
    "event": ("event", "goal"),
    "payout": ("payout", "revenue", "price", "amount", "sum"),
    "txid": ("txid", "transaction_id", "tid", "uid"),
    "status": ("status", "stage"),
    "currency": ("currency",),
    "measurement": ("measurement",),
}
EVENT_FIELDS = ("cid", "event_id", "transaction_id", "pid", "revenue", "amount", "cost", "cost_operation")
REVENUE_NAMES = ("revenue", "amount")  # the event API's revenue, and the seed's "amount"
TIME_NAMES = ("conversion_date", "conversion_timezone")
SECRET_PARAM = "secret"
POSTBACK_NAMES = frozenset(
    [name for names in POSTBACK_ALIASES.values() for name in names] + [SECRET_PARAM, *TIME_NAMES]
)
EVENT_NAMES = frozenset(EVENT_FIELDS + ("currency", SECRET_PARAM, *TIME_NAMES))
CONTRACT_NAMES = POSTBACK_NAMES | EVENT_NAMES

STATUS_ALIASES = {
    "approved": "approved",
    "approve": "approved",
    "sale": "approved",
    "pending": "pending",
    "new": "pending",
    "hold": "pending",
    "lead": "pending",
    "declined": "declined",
    "decline": "declined",
    "cancel": "declined",
    "reject": "declined",
    "rejected": "declined",
    "trash": "declined",
}
COST_OPERATIONS = {"add": "add", "subtract": "subtract", "substract": "subtract", "override": "override"}
# Pingtree's conversion_timezone values: fixed offsets from UTC, in hours (seed 001).
FIXED_ZONES = {"PST": -8, "EST": -5, "CST": -6, "MST": -7, "AKST": -9, "SST": -11, "HST": -10, "AST": -4}
DATE_FORMATS = (("%Y-%m-%d %H:%M:%S", False), ("%Y-%m-%dT%H:%M:%S", False), ("%Y-%m-%d", True))

CLICK_ID_RE = re.compile(r"[0-9a-z]{1,64}")
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
NON_FINITE = {"nan", "snan", "inf", "infinity"}
# What an unreplaced macro looks like in the trade's template languages:
# {x} {{x}} <x> [x] [[x]] $x ${x} %x% #x#
MACRO_RE = re.compile(
    r"\{\{?\s*[A-Za-z_][^{}\s]*\s*\}?\}|<[A-Za-z_][^<>\s]*>|\[\[?[A-Za-z_][^\[\]\s]*\]?\]"
    r"|\$\{?[A-Za-z_][\w.\-]*\}?|%[A-Za-z_][\w.\-]*%|#[A-Za-z_][\w.\-]*#"
)
MAX_EVENT = 100
MAX_TXID = 255


class Refused(Exception):
    """A request we do not record: ``status`` is the HTTP code, ``reason`` says why."""

    def __init__(self, status, reason, conversion_id=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.conversion_id = conversion_id


@dataclass(frozen=True)
class Inbound:
    """An inbound request free of any HTTP framework: who sent which parameters where."""

    endpoint: str  # postback | events
    method: str = "GET"
    ip: str = ""
    params: dict = field(default_factory=dict)
    body_error: tuple = ()  # (status, reason) when the body could not be read


@dataclass(frozen=True)
class ConversionTime:
    """When the sender says the conversion happened (``conversion_date``), in UTC."""

    at: datetime.datetime  # naive UTC
    date_only: bool  # a day without a time: its midnight in the sender's zone
    text: str  # as sent, for the log


@dataclass
class Claim:
    """A conversion as the sender claims it, validated but not yet attributed."""

    click_id: str
    event: str = None  # None: not given
    payout: Decimal = None  # None: not given
    currency: str = None
    status: str = None  # None: not given (approved for a new conversion)
    txid: str = ""
    data: dict = field(default_factory=dict)
    flow_key: str = None  # the event API's cid
    source: str = None  # the event API's pid: a traffic source's id or name
    occurred: ConversionTime = None  # conversion_date (+ conversion_timezone), None: now
    cost: Decimal = None
    cost_operation: str = None


@dataclass(frozen=True)
class SenderRules:
    """Who may send conversions: the shared secret, the allowed networks, the default window,
    and how long the event API claims a transaction_id + event_id pair."""

    secret: str = None
    allowed_networks: tuple = ()
    attribution_days: int = 30
    claim_seconds: float = 2.0
    report_currency: str = "USD"  # TRACKER_CURRENCY: a conversion stores its rate into it


def make_inbound(endpoint, method, ip, pairs, body_error=()):
    """Build an ``Inbound`` from raw ``(name, value)`` pairs, cleaned like a click's.

    The contract's names go first, so a flood of other parameters cannot push them out.
    """
    pairs = sorted(pairs, key=lambda pair: pair[0] not in CONTRACT_NAMES)
    params, _ = clean_params(pairs)
    ip, _ = clean_text(ip or "", 45)
    return Inbound(
        endpoint=endpoint, method=(method or "GET")[:10], ip=ip, params=params, body_error=tuple(body_error)
    )


def rules_from_config(config):
    """The ``SenderRules`` of an app's config; a bad ``TRACKER_POSTBACK_ALLOWED_IPS`` raises."""
    return SenderRules(
        secret=config.get("TRACKER_POSTBACK_SECRET") or None,
        allowed_networks=parse_networks(
            config.get("TRACKER_POSTBACK_ALLOWED_IPS"), "TRACKER_POSTBACK_ALLOWED_IPS"
        ),
        attribution_days=int(config.get("TRACKER_ATTRIBUTION_DAYS") or 30),
        claim_seconds=float(config.get("TRACKER_EVENT_CLAIM_SECONDS", 2)),
        report_currency=config.get("TRACKER_CURRENCY") or "USD",
    )


def check_sender(inbound, rules):
    """Refuse (403) a sender outside the allowed networks or without the right secret."""
    if rules.allowed_networks and not ip_allowed(inbound.ip, rules.allowed_networks):
        raise Refused(
            403,
            "IP address %s is not allowed to send conversions "
            "(TRACKER_POSTBACK_ALLOWED_IPS)" % (inbound.ip or "(unknown)"),
        )
    if rules.secret:
        given = inbound.params.get(SECRET_PARAM, "")
        if not given:
            raise Refused(403, "the secret parameter is missing")
        if not hmac.compare_digest(given.encode("utf-8"), rules.secret.encode("utf-8")):
            raise Refused(403, "the secret is wrong")


def ip_allowed(ip, networks):
    """True when ``ip`` (IPv4-mapped IPv6 counts as IPv4) is in one of ``networks``."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def first(params, names):
    """The first non-empty value among ``names`` (aliases), stripped, or None."""
    for name in names:
        value = params.get(name, "").strip()
        if value:
            return value
    return None


def find_macro(value, whole=False):
    """The unreplaced macro in ``value`` (also when percent-encoded once or twice), or None.

    ``whole``: only when the macro is the entire value (a txid may contain a ``#``).
    """
    for text in (value, unquote(value), unquote(unquote(value))):
        text = text.strip()
        match = MACRO_RE.fullmatch(text) if whole else MACRO_RE.search(text)
        if match:
            return match.group(0)
    return None


def refuse_macro(name, value, whole=True):
    """Refuse (400) a value that is an unreplaced macro: the sender's template is broken."""
    macro = find_macro(value, whole)
    if macro:
        raise Refused(
            400,
            "%s is %r, an unreplaced macro: the sender did not replace %s with the "
            "real value; fix the postback URL on the sender's side" % (name, value[:80], macro),
        )


def parse_click_id(value, name="click_id", aliases=""):
    """Our click id: required, not a macro, at most 64 characters of 0-9 and a-z."""
    if value is None:
        raise Refused(400, "%s is required%s" % (name, aliases))
    refuse_macro(name, value, whole=False)
    if not CLICK_ID_RE.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise Refused(
            400, "%s %r is malformed: a click id is at most 64 characters of 0-9 and a-z" % (name, shown)
        )
    return value


def parse_payout(value, name="payout"):
    """A payout text → Decimal (None when absent); refuses (400) anything but a plain number."""
    if value is None:
        return None
    refuse_macro(name, value)
    shown = value if len(value) <= 80 else value[:80] + "…"
    if "," in value:
        raise Refused(
            400,
            "%s %r is ambiguous: a comma may be a decimal or a thousands separator; "
            "send a plain number with a dot, such as 1.5" % (name, shown),
        )
    if value.lstrip("+-").lower() in NON_FINITE:
        raise Refused(400, "%s %r is not a finite number" % (name, shown))
    if not NUMBER_RE.fullmatch(value):
        raise Refused(400, "%s %r is not a number" % (name, shown))
    try:
        return parse_money(value, name)
    except ValidationError as exc:
        raise Refused(400, "%s %r is out of range: %s" % (name, shown, exc.message)) from None


def parse_name(value, name, limit):
    """An event name or a txid: not a macro, at most ``limit`` characters (None when absent)."""
    if value is None:
        return None
    refuse_macro(name, value)
    if len(value) > limit:
        raise Refused(400, "%s is longer than %d characters" % (name, limit))
    return value


def parse_status(value):
    """``approved``, ``pending``, ``declined`` or one of their aliases; None when absent."""
    if value is None:
        return None
    refuse_macro("status", value)
    status = STATUS_ALIASES.get(value.lower())
    if status is None:
        raise Refused(
            400,
            "status %r is not one of %s (aliases: %s)"
            % (value[:80], ", ".join(STATUSES), ", ".join(sorted(STATUS_ALIASES))),
        )
    return status


def parse_currency(value):
    """An ISO 4217 code, upper-cased (None when absent)."""
    if value is None:
        return None
    refuse_macro("currency", value)
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not is_iso4217(value):
        raise Refused(400, "currency %r is not an ISO 4217 code such as USD" % value[:80])
    return value.upper()


def lead_data(params, contract_names):
    """Every parameter that is not part of the contract: lead data kept for tokens."""
    return {name: value for name, value in params.items() if name not in contract_names}


def parse_postback(params):
    """Read ``/postback`` parameters (DESIGN §4.2) into a ``Claim``, or raise ``Refused``."""
    click_id = parse_click_id(
        first(params, POSTBACK_ALIASES["click_id"]),
        aliases=" (or clickid, click, subid): the click id we gave you",
    )
    event = parse_name(first(params, POSTBACK_ALIASES["event"]), "event", MAX_EVENT)
    payout = parse_payout(first(params, POSTBACK_ALIASES["payout"]))
    if first(params, ("measurement",)) == "1" and (event is None or payout is None):
        raise Refused(400, "measurement=1 requires both event and payout")
    return Claim(
        click_id=click_id,
        event=event,
        payout=payout,
        currency=parse_currency(first(params, POSTBACK_ALIASES["currency"])),
        status=parse_status(first(params, POSTBACK_ALIASES["status"])),
        txid=parse_name(first(params, POSTBACK_ALIASES["txid"]), "txid", MAX_TXID) or "",
        data=lead_data(params, POSTBACK_NAMES),
        occurred=parse_conversion_time(params),
    )


def parse_event_request(params):
    """Read ``/api/v1/events`` fields (DESIGN §4.3, the Pingtree contract) into a ``Claim``."""
    flow_key = first(params, ("cid",))
    if flow_key is None:
        raise Refused(400, "cid is required: the campaign (flow) key")
    refuse_macro("cid", flow_key)
    event = parse_name(first(params, ("event_id",)), "event_id", MAX_EVENT)
    if event is None:
        raise Refused(400, "event_id is required: an event defined on the flow")
    click_id = parse_click_id(
        first(params, ("transaction_id",)), "transaction_id", ": the click id of the lead"
    )
    cost, operation = parse_cost(first(params, ("cost",)), first(params, ("cost_operation",)))
    return Claim(
        click_id=click_id,
        event=event,
        flow_key=flow_key[:32],
        payout=parse_payout(first(params, REVENUE_NAMES), "revenue"),
        currency=parse_currency(first(params, POSTBACK_ALIASES["currency"])),
        source=parse_source(first(params, ("pid",))),
        cost=cost,
        cost_operation=operation,
        data=lead_data(params, EVENT_NAMES),
        occurred=parse_conversion_time(params),
    )


def parse_source(value):
    """``pid``: a traffic source's id or name, or None (organic) when absent."""
    if value is None or value.lower() == "organic":
        return None
    refuse_macro("pid", value)
    if len(value) > 200:
        raise Refused(400, "pid is longer than 200 characters: it is a traffic source's id or name")
    return value


def parse_zone(value):
    """``conversion_timezone``: Pingtree's fixed offsets (PST, EST, …) or an IANA name; UTC
    when absent."""
    if value is None:
        return datetime.timezone.utc
    hours = FIXED_ZONES.get(value.upper())
    if hours is not None:
        return datetime.timezone(datetime.timedelta(hours=hours), value.upper())
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Refused(
            400,
            "conversion_timezone %r is not one of %s nor an IANA time zone such as America/New_York"
            % (value[:80], ", ".join(FIXED_ZONES)),
        ) from None


def parse_conversion_time(params):
    """``conversion_date`` (``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS``) in ``conversion_timezone``,
    as a ``ConversionTime`` in UTC; None when no date is given."""
    text = first(params, ("conversion_date",))
    zone = parse_zone(first(params, ("conversion_timezone",)))
    if text is None:
        return None
    refuse_macro("conversion_date", text)
    for pattern, date_only in DATE_FORMATS:
        try:
            local = datetime.datetime.strptime(text, pattern)
        except ValueError:
            continue
        at = local.replace(tzinfo=zone).astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return ConversionTime(at, date_only, text)
    raise Refused(400, "conversion_date %r is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS" % text[:80])


def parse_cost(value, operation):
    """``cost`` and ``cost_operation`` (add, subtract — or the seed's ``substract`` — override)."""
    if value is None:
        if operation is not None:
            raise Refused(400, "cost_operation is given without cost")
        return None, None
    cost = parse_payout(value, "cost")
    if cost < 0:
        raise Refused(400, "cost %r is negative: use cost_operation=subtract" % value)
    op = COST_OPERATIONS.get((operation or "override").lower())
    if op is None:
        raise Refused(400, "cost_operation %r is not one of add, subtract, override" % operation[:80])
    return cost, op
