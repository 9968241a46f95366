"""Spend spread over clicks (``POST /api/v1/costs``, the dashboard's "update costs"), as
Voluum's and Prosper202's cost updates do: a period's amount, divided evenly over the
matching clicks of a flow (bots included: the money was spent on them too), replacing their
cost. The shares are rounded to the stored precision and the rounding rest goes a millionth
at a time to the first clicks, so the clicks' costs add up to the amount exactly.
"""

import datetime
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from ..config import time_zone
from ..currency import convert, is_iso4217, rate_of
from ..db import db
from ..errors import FieldErrors, NotFound, ValidationError
from ..models import Click, Flow
from ..money import MONEY_SCALE, parse_money
from . import rollups

# What a cost may be limited to: the click's own fields that reports group by.
FILTERS = (
    "country",
    "region",
    "city",
    "device_type",
    "os",
    "browser",
    "isp",
    "connection_type",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "external_id",
    "route",
    "lander",
    "offer",
)
ID_FILTERS = {"route": "route_id", "lander": "lander_id", "offer": "offer_id"}


@dataclass
class CostUpdate:
    flow_id: int
    start: datetime.datetime  # naive UTC, inclusive
    end: datetime.datetime  # naive UTC, exclusive
    amount: Decimal  # in the report currency
    filters: dict


def _moment(value, name, zone, end=False):
    """A date (its whole day) or a time, in ``zone``, as naive UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("%s must be a date like 2024-05-31 or a time like 2024-05-31 14:00" % name)
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time())
            if end:
                moment += datetime.timedelta(days=1)
        else:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            "%s must be a date like 2024-05-31 or a time like 2024-05-31 14:00" % name
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def clean_cost(data, base, default_tz="UTC"):
    """Validate ``{flow_id, from, to, amount, currency?, filter?, tz?}``; every refused field at
    once (422, naming each). Dates are whole days in ``tz`` (default TRACKER_TIMEZONE), ``to`` inclusive."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    errors = FieldErrors()
    out = {}
    with errors.field("flow_id"):
        flow_id = data.get("flow_id")
        if isinstance(flow_id, str) and flow_id.strip().isdigit():
            flow_id = int(flow_id)
        if isinstance(flow_id, bool) or not isinstance(flow_id, int) or not 0 < flow_id < 2**63:
            raise ValidationError("flow_id must be a flow's id")
        out["flow_id"] = flow_id
    zone = None
    with errors.field("tz"):
        try:
            zone = time_zone(str(data.get("tz") or default_tz))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    zone = zone or datetime.timezone.utc
    with errors.field("from"):
        out["start"] = _moment(data.get("from"), "from", zone)
    with errors.field("to"):
        out["end"] = _moment(data.get("to"), "to", zone, end=True)
    with errors.field("amount"):
        amount = parse_money(data.get("amount"), "amount")
        if amount < 0:
            raise ValidationError("amount must not be negative")
        out["amount"] = amount
    with errors.field("currency"):
        currency = data.get("currency") or base
        if not isinstance(currency, str) or not is_iso4217(currency.strip()):
            raise ValidationError("currency must be an ISO 4217 code such as USD")
        out["currency"] = currency.strip().upper()
    with errors.field("filter"):
        out["filters"] = _filters(data.get("filter"))
    errors.raise_any()
    if out["start"] >= out["end"]:
        raise ValidationError("to must not be before from", fields={"to": "to must not be before from"})
    return out


def _filters(value):
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise ValidationError('filter must be an object like {"country": "US"}')
    out = {}
    for name, wanted in value.items():
        if name not in FILTERS:
            raise ValidationError("filter: %r is not one of %s" % (str(name)[:40], ", ".join(FILTERS)))
        if name in ID_FILTERS:
            if isinstance(wanted, bool) or not isinstance(wanted, int):
                raise ValidationError("filter: %s must be an id" % name)
        elif not isinstance(wanted, str) or len(wanted) > 255:
            raise ValidationError("filter: %s must be a text of at most 255 characters" % name)
        out[name] = wanted.upper() if name == "country" else wanted
    return out


def spread_cost(cleaned, base):
    """Spread the cost; returns ``(clicks, amount in the report currency)``. 404 for an unknown
    flow, 422 when the currency has no stored rate or the period has no matching click."""
    flow = Flow.get_or_none(Flow.id == cleaned["flow_id"])
    if flow is None:
        raise NotFound("flow %d" % cleaned["flow_id"])
    rate = rate_of(cleaned["currency"], base)
    if rate is None:
        raise ValidationError(
            "no rate for %s into %s: set it with PUT /api/v1/currency-rates" % (cleaned["currency"], base),
            422,
        )
    amount = convert(cleaned["amount"], rate)
    where = [Click.flow == flow.id, Click.created_at >= cleaned["start"], Click.created_at < cleaned["end"]]
    for name, wanted in cleaned["filters"].items():
        where.append(getattr(Click, ID_FILTERS.get(name, name)) == wanted)
    with db.atomic():
        count = Click.select().where(*where).count()
        if not count:
            raise ValidationError("no click of flow %d matches in that period" % flow.id, 422)
        share = (amount / count).quantize(MONEY_SCALE, rounding=ROUND_DOWN)
        rest = int((amount - share * count) / MONEY_SCALE)
        Click.update(cost=share).where(*where).execute()
        if rest:
            first = Click.select(Click.click_id).where(*where).order_by(Click.click_id).limit(rest)
            Click.update(cost=share + MONEY_SCALE).where(Click.click_id.in_(first)).execute()
        rollups.mark_period(cleaned["start"], cleaned["end"], [flow.id])
    return count, amount
