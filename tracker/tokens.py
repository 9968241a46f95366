"""The token registry: every ``{token}`` name and alias, and how to read each from a
click, its flow and (for postbacks) a conversion.

One place knows the names. The offer URL (``offer_url``, ``fill_url``) and the outgoing
postback templates both resolve tokens through ``resolve``.
"""

import datetime
import functools
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlsplit

from .models import CONVERSION_TRIGGERS, SUB_NAMES, TRIGGERS, UTM_NAMES, VAR_NAMES
from .money import money_text
from .postbacks.platforms import TEMPLATE_FILTERS as PHONE_FILTERS

# {name} or <name>, with optional filters: {phone|digits|sha256}
TOKEN_RE = re.compile(
    r"\{(?P<a>[A-Za-z_][\w.:\-]*)(?P<fa>(?:\|[A-Za-z0-9]+)*)\}"
    r"|<(?P<b>[A-Za-z_][\w.:\-]*)(?P<fb>(?:\|[A-Za-z0-9]+)*)>"
)


@dataclass
class TokenContext:
    """What a token can be read from. Any part may be missing (a preview, a click postback).

    ``lead`` is the click's lead profile (DESIGN §4.2); None reads the conversion's own data.
    """

    click: object = None
    flow: object = None
    conversion: object = None
    traffic_source: object = None
    now: datetime.datetime = None
    landing_url: str = ""
    public_url: str = ""  # the tracker's base URL, for {click_url}
    lead: dict = None

    def lead_data(self):
        """The lead data tokens read: the click's lead profile, else the conversion's data."""
        if self.lead is not None:
            return self.lead
        return self.conversion.data if self.conversion is not None else {}


@dataclass(frozen=True)
class Token:
    name: str
    aliases: tuple
    read: object  # function(TokenContext) -> str | Decimal | int | None
    doc: str
    triggers: tuple = TRIGGERS


REGISTRY = {}  # lower-case name or alias -> Token
TOKENS = []  # in documentation order


def register(name, aliases, read, doc, triggers=TRIGGERS):
    """Add a token under its name and every alias (case-insensitive)."""
    token = Token(name, tuple(aliases), read, doc, tuple(triggers))
    TOKENS.append(token)
    for spelling in (name, *aliases):
        REGISTRY[spelling.lower()] = token
    return token


def _click(attr):
    return lambda ctx: getattr(ctx.click, attr) if ctx.click is not None else None


def _conv(attr):
    return lambda ctx: getattr(ctx.conversion, attr) if ctx.conversion is not None else None


def _unix(value):
    if value is None:
        return None
    return int(value.replace(tzinfo=datetime.timezone.utc).timestamp())


def _flow_id(ctx):
    if ctx.flow is not None:
        return ctx.flow.id
    return ctx.click.flow_id if ctx.click is not None else None


def _referrer_domain(ctx):
    ref = _click("referrer")(ctx)
    if not ref:
        return None
    try:
        return urlsplit(ref).hostname or ""
    except ValueError:  # a visitor's Referer may be anything: "http://[::1/" does not split
        return ""


def _lead(*names):
    """Read lead data (any of ``names``), else the click's parameters."""

    def read(ctx):
        data = ctx.lead_data()
        for name in names:
            if data.get(name) not in (None, ""):
                return data[name]
        params = ctx.click.params if ctx.click is not None else {}
        for name in names:
            if params.get(name) not in (None, ""):
                return params[name]
        return None

    return read


def _lead_or_geo(attr, *names):
    """The lead's own value (any of ``names``) wins over the click's GeoIP ``attr``."""

    def read(ctx):
        data = ctx.lead_data()
        for name in names:
            if data.get(name) not in (None, ""):
                return data[name]
        return getattr(ctx.click, attr) if ctx.click is not None else None

    return read


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _device(ctx):
    return _click("device_type")(ctx)


register(
    "click_id",
    ["click.id", "clickid", "click", "subid", "sessionid", "id"],
    _click("click_id"),
    "our click id",
)
register("externalid", ["external_id"], _click("external_id"), "the traffic source's click id")
for _i, _name in enumerate(VAR_NAMES, 1):
    register(_name, [], _click(_name), "custom variable %d from the click" % _i)
for _i, _name in enumerate(SUB_NAMES, 1):
    register(_name, ["subid%d" % _i], _click(_name), "sub id %d from the click" % _i)
for _name in UTM_NAMES:
    register(_name, [], _click(_name), "%s from the click" % _name)
register("flow.id", ["campaign.id", "campaignid", "campaign_id"], _flow_id, "the flow's id")
register(
    "flow.name",
    ["campaign.name"],
    lambda ctx: ctx.flow.name if ctx.flow is not None else None,
    "the flow's name",
)


def _offer_id(ctx):
    offer_id = getattr(ctx.click, "offer_id", None) if ctx.click is not None else None
    return offer_id if offer_id is not None else _flow_id(ctx)


def _click_url(ctx):
    click_id = _click("click_id")(ctx)
    if click_id is None:
        return None
    return ctx.public_url.rstrip("/") + "/click?click_id=" + click_id


register("offer.id", [], _offer_id, "the offer's id (routes' offers; the flow's id for a flow without)")
register(
    "lander.id", [], _click("lander_id"), "the lander's id (empty for a click sent straight to an offer)"
)
register(
    "click_url", [], _click_url, "the lander's link on to the offer: <tracker>/click?click_id=<click id>"
)
register(
    "trafficsource.id",
    ["traffic_source.id"],
    lambda ctx: ctx.flow.traffic_source_id if ctx.flow is not None else None,
    "the traffic source's id",
)
register("ip", ["ipaddress"], _click("ip"), "the visitor's IP address")
register("ua", ["useragent", "user_agent"], _click("user_agent"), "the visitor's user agent")
register("referrer", ["refererUrl", "referer"], _click("referrer"), "the referring page")
register("referrerdomain", [], _referrer_domain, "the referring page's host")
register("locationurl", [], lambda ctx: ctx.landing_url or None, "the offer page the visitor was sent to")
register("language", [], _click("language"), "the first Accept-Language tag")
register(
    "country",
    ["geo"],
    _lead_or_geo("country", "country", "country_code"),
    "ISO country code (the lead's own, else GeoIP's)",
)
register("countryname", ["country_name"], _click("country_name"), "country name")
register(
    "region",
    ["state"],
    _lead_or_geo("region", "state", "region"),
    "region / state (the lead's own, else GeoIP's)",
)
register("city", [], _lead_or_geo("city", "city"), "city (the lead's own, else GeoIP's)")
register(
    "zip",
    ["postal"],
    _lead_or_geo("zip", "zip", "zip_code", "zipcode", "postal_code", "postal"),
    "postal code (the lead's own, else GeoIP's)",
)
register("isp", [], _click("isp"), "ISP")
register("asn", [], _click("asn"), "autonomous system number")
register("carrier", [], _click("carrier"), "mobile carrier")
register("connection.type", ["connection_type"], _click("connection_type"), "connection type")
register("os", [], _click("os"), "operating system")
register("osversion", ["os_version"], _click("os_version"), "operating system version")
register("browser", [], _click("browser"), "browser")
register("browserversion", ["browser_version"], _click("browser_version"), "browser version")
register("device", ["device_type"], _device, "device type: desktop, mobile, tablet, bot, other")
register("brand", [], _click("brand"), "device brand")
register("model", [], _click("model"), "device model")
register(
    "cost",
    ["conversion.cost", "campaign.cpa"],
    _click("cost"),
    "the click's cost ({campaign.cpa} is deprecated)",
)
register(
    "now", ["timestamp", "event_time"], lambda ctx: _unix(ctx.now), "the time of the event, unix seconds"
)
register(
    "event_time_iso",
    [],
    lambda ctx: _iso(ctx.now),
    "the time of the event, ISO 8601 UTC (TikTok's timestamp)",
)
register("click_time", [], lambda ctx: _unix(_click("created_at")(ctx)), "the click's time, unix seconds")
register(
    "conversion_time",
    ["conversion.time"],
    lambda ctx: _unix(_conv("created_at")(ctx)),
    "the conversion's time, unix seconds",
    CONVERSION_TRIGGERS,
)
register("event", ["goal"], _conv("event"), "the conversion's event", CONVERSION_TRIGGERS)
register(
    "payout",
    ["publisherrevenue", "revenue", "cash", "conversion.payout"],
    _conv("payout"),
    "the conversion's payout",
    CONVERSION_TRIGGERS,
)
register(
    "currency",
    [],
    lambda ctx: (
        ctx.conversion.currency
        if ctx.conversion is not None
        else ctx.flow.currency
        if ctx.flow is not None
        else None
    ),
    "ISO 4217 currency",
)
register("status", ["stage"], _conv("status"), "approved, pending or declined", CONVERSION_TRIGGERS)
register(
    "txid",
    ["transaction.id", "transaction_id", "externalidentifier"],
    _conv("txid"),
    "the advertiser's transaction id",
    CONVERSION_TRIGGERS,
)
register("conversion.id", ["conversion_id"], _conv("id"), "our conversion id", CONVERSION_TRIGGERS)
for _name in ("email", "phone", "first_name", "last_name", "gender", "dob"):
    register(_name, [], _lead(_name), "lead data: %s" % _name.replace("_", " "), CONVERSION_TRIGGERS)
register(
    "advertisername",
    ["advertiser"],
    _lead("advertisername", "advertiser"),
    "the advertiser's name",
    CONVERSION_TRIGGERS,
)
register("pixelCode", ["pixel_code"], _lead("pixelCode", "pixel_code"), "the TikTok pixel code")

FAMILIES = {
    "var:": "a click query parameter by name (as a custom variable)",
    "req.qs.": "a click query parameter by name",
    "req.cookie.": "a click cookie (_fbc, _fbp, ttclid, _ttp, _scid; URL click ids stand in)",
    "req.sessiondata.": "the click's lead profile (dotted paths reach nested values)",
    "req.session.": "the click's lead profile (same as req.sessionData)",
}


def _lookup(mapping, name):
    """Exact key, then dotted path into nested dicts, then a case-insensitive key."""
    if not mapping:
        return None
    if name in mapping:
        return mapping[name]
    node = mapping
    for part in name.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            node = None
            break
    if node is not None and not isinstance(node, (dict, list)):
        return node
    lowered = name.lower()
    for key, value in mapping.items():
        if key.lower() == lowered:
            return value
    return None


def _family(prefix, rest, ctx):
    click_params = ctx.click.params if ctx.click is not None else {}
    if prefix in ("var:", "req.qs."):
        return _lookup(click_params, rest)
    if prefix == "req.cookie.":
        return _lookup(ctx.click.cookies if ctx.click is not None else {}, rest)
    return _lookup(ctx.lead_data(), rest)


def is_builtin(name):
    """True when ``name`` is a registered token or one of the prefixed families."""
    lowered = name.lower()
    return lowered in REGISTRY or any(lowered.startswith(p) and len(lowered) > len(p) for p in FAMILIES)


def resolve(name, ctx):
    """The raw value of token ``name`` (str, Decimal, int or None) in ``ctx``.

    A name that is no built-in token is read from the click's query parameters, then
    from the lead data: AlterCPA's ``{adid}``, ``{name}``.
    """
    lowered = name.lower()
    token = REGISTRY.get(lowered)
    if token is not None:
        return token.read(ctx)
    for prefix in FAMILIES:
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            return _family(prefix, name[len(prefix) :], ctx)
    value = _lookup(ctx.click.params if ctx.click is not None else {}, name)
    if value is None:
        value = _lookup(ctx.lead_data(), name)
    return value


def to_text(value):
    """A token value as text: None → '', Decimal without exponent, bool → 1/0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return money_text(value)  # "12.50", not the stored "12.500000"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


# Filters of one text value. ``digits`` and ``e164`` are phones (PHONE_FILTERS, which also
# take the country that completes a number without its code); ``required`` fails an outgoing
# delivery whose value is empty (postbacks.templates) and changes nothing.
FILTERS = {
    "sha256": lambda s: hashlib.sha256(s.strip().lower().encode("utf-8")).hexdigest() if s.strip() else "",
    "digits": PHONE_FILTERS["digits"],
    "e164": PHONE_FILTERS["e164"],
    "lower": str.lower,
    "upper": str.upper,
    "trim": str.strip,
    "raw": lambda s: s,
    "required": lambda s: s,
}


def parse_filters(spec):
    """``"|digits|sha256"`` → ``["digits", "sha256"]``; unknown names raise ValueError."""
    names = [part.lower() for part in spec.split("|") if part]
    unknown = [n for n in names if n not in FILTERS]
    if unknown:
        raise ValueError("unknown filter %r (known: %s)" % (unknown[0], ", ".join(FILTERS)))
    return names


def apply_filters(text, names, region=""):
    """Run the filters left to right over a text value; ``region`` (a country) completes
    phone numbers written without their country code."""
    for name in names:
        text = PHONE_FILTERS[name](text, region) if name in PHONE_FILTERS else FILTERS[name](text)
    return text


def phone_region(names, ctx):
    """The country that completes phones for filters ``names``: ``{country}`` (the lead's, else
    the click's); '' when no phone filter asks (the click path does not pay for the lookup)."""
    if not any(name in PHONE_FILTERS for name in names):
        return ""
    return to_text(resolve("country", ctx))


def iter_tokens(template):
    """Yield ``(match, name, filters)`` for every token in ``template``."""
    for match in TOKEN_RE.finditer(template):
        name = match.group("a") or match.group("b")
        spec = match.group("fa") if match.group("a") else match.group("fb")
        yield match, name, spec or ""


@functools.lru_cache(maxsize=1024)
def url_parts(template):
    """``template`` as a tuple of literal texts and ``(name, filters)`` tokens, parsed once
    (every click fills its flow's offer URL). A token with an unknown filter stays as written."""
    parts, last = [], 0
    for match, name, spec in iter_tokens(template):
        try:
            token = (name, tuple(parse_filters(spec)))
        except ValueError:
            continue
        parts += [template[last : match.start()], token]
        last = match.end()
    parts.append(template[last:])
    return tuple(parts)


def fill_url(template, ctx):
    """Fill every token of a URL template, each value percent-encoded (``raw`` skips that)."""
    out = []
    for part in url_parts(template):
        if isinstance(part, str):
            out.append(part)
            continue
        name, names = part
        text = to_text(resolve(name, ctx))
        if names:
            text = apply_filters(text, names, phone_region(names, ctx))
        out.append(text if "raw" in names else quote(text, safe=""))
    return "".join(out)


def offer_url(flow, click):
    """The flow's offer URL with the click's tokens filled, values percent-encoded."""
    return fill_url(flow.offer_url, TokenContext(click=click, flow=flow, now=click.created_at))
