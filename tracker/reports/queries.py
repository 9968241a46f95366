"""The read path: clicks and conversions aggregated in the database, by one dimension.

Two GROUP BY queries, one over clicks and one over approved conversions joined to their
clicks, are merged by key. A conversion counts in its click's group: on the click's day,
in the click's flow, country and sub ids (a cohort report), so CR and EPC compare the
conversions of exactly the clicks they are divided by. Pending and declined conversions
count nowhere until approved. The dashboard's reports and ``GET /api/v1/stats`` both use
``run_report``, so they always agree.

Bot clicks (DESIGN §4.7) are counted in ``bot_clicks`` and left out of every other figure
(with their conversions) unless the query includes them; their cost stays in cost, profit
and ROI. ``lp_views`` are clicks sent to a lander, ``lp_clicks`` those that went on to the
offer through ``/click``.
"""

import dataclasses
import datetime
import logging
import operator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import reduce

from peewee import Case, fn

from ..db import is_postgres
from ..errors import ValidationError
from ..models import SUB_NAMES, UTM_NAMES, Click, Conversion
from ..money import money_from_db
from ..web import MAX_ID

logger = logging.getLogger(__name__)

DIMENSIONS = [
    "day",
    "hour",
    "flow",
    "country",
    "region",
    "city",
    "device_type",
    "os",
    "browser",
    "isp",
    "connection_type",
    *SUB_NAMES,
    *UTM_NAMES,
    "external_id",
    "route",
    "lander",
    "offer",
]
ALIASES = {
    "device": "device_type",
    "date": "day",
    "flow_id": "flow",
    "campaign": "flow",
    "route_id": "route",
    "lander_id": "lander",
    "offer_id": "offer",
}
ID_DIMENSIONS = {"route": Click.route_id, "lander": Click.lander_id, "offer": Click.offer_id}
TIME_DIMENSIONS = ("day", "hour")
METRICS = [
    "clicks",
    "unique_clicks",
    "conversions",
    "revenue",
    "cost",
    "profit",
    "cr",
    "epc",
    "roi",
    "lp_views",
    "lp_clicks",
    "lp_ctr",
    "bot_clicks",
]


@dataclass(frozen=True)
class ReportQuery:
    """What to report: a dimension, and filters on the clicks (dates are UTC, inclusive)."""

    group_by: str = "day"
    date_from: datetime.date = None
    date_to: datetime.date = None
    flow_id: int = None
    country: str = ""
    include_bots: bool = False
    route_id: int = None
    lander_id: int = None
    offer_id: int = None


@dataclass
class Row:
    """One group's numbers; money as Decimal. The ratios are None where they divide by zero."""

    key: object
    clicks: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    cost: Decimal = field(default_factory=Decimal)
    lp_views: int = 0
    lp_clicks: int = 0
    bot_clicks: int = 0

    @property
    def profit(self):
        return self.revenue - self.cost

    @property
    def cr(self):
        """Conversions per 100 clicks."""
        return _ratio(Decimal(self.conversions) * 100, self.clicks, "0.01")

    @property
    def epc(self):
        """Revenue per click."""
        return _ratio(self.revenue, self.clicks, "0.0001")

    @property
    def roi(self):
        """Profit per 100 of cost."""
        return _ratio(self.profit * 100, self.cost, "0.01")

    @property
    def lp_ctr(self):
        """Lander clicks per 100 lander views."""
        return _ratio(Decimal(self.lp_clicks) * 100, self.lp_views, "0.01")


def _ratio(numerator, denominator, places):
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


def _parse_date(value, name):
    if value in (None, ""):
        return None
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError("%s must be a date like 2024-05-31 (UTC)" % name, 400) from None


def parse_query(args, default_group="day"):
    """A ``ReportQuery`` from request-like ``args`` (``group_by, from, to, flow_id, country``);
    a 400 ValidationError names what is wrong."""
    group_by = (args.get("group_by") or default_group).strip().lower()
    group_by = ALIASES.get(group_by, group_by)
    if group_by not in DIMENSIONS:
        raise ValidationError("group_by must be one of %s" % ", ".join(DIMENSIONS), 400)
    date_from, date_to = _parse_date(args.get("from"), "from"), _parse_date(args.get("to"), "to")
    if date_from and date_to and date_from > date_to:
        raise ValidationError("from must not be after to", 400)
    flow_id = args.get("flow_id") or None
    if flow_id is not None:
        try:
            flow_id = int(flow_id)
        except ValueError:
            raise ValidationError("flow_id must be a whole number", 400) from None
        if not 0 < flow_id <= MAX_ID:  # the database refuses ids beyond 64 bits (a 500)
            raise ValidationError("flow_id must be an id from 1 to %d" % MAX_ID, 400)
    country = (args.get("country") or "").strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise ValidationError("country must be a two-letter ISO code such as US", 400)
    include_bots = (args.get("include_bots") or "").strip().lower()
    if include_bots not in ("", "0", "1", "true", "false"):
        raise ValidationError("include_bots must be 1 or 0", 400)
    ids = {name: _id_arg(args, name) for name in ("route_id", "lander_id", "offer_id")}
    return ReportQuery(group_by, date_from, date_to, flow_id, country, include_bots in ("1", "true"), **ids)


def _id_arg(args, name):
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ValidationError("%s must be a whole number" % name, 400)
    return int(value)


def dimension_expression(group_by):
    """The SQL expression of a dimension, on the click table."""
    if group_by in TIME_DIMENSIONS:
        # coerce(False): the key is text; the column's datetime converter must not parse it.
        if is_postgres():
            return fn.to_char(
                Click.created_at, "YYYY-MM-DD" if group_by == "day" else "YYYY-MM-DD HH24:00"
            ).coerce(False)
        return fn.strftime("%Y-%m-%d" if group_by == "day" else "%Y-%m-%d %H:00", Click.created_at).coerce(
            False
        )
    if group_by == "flow":
        return Click.flow
    if group_by in ID_DIMENSIONS:
        return ID_DIMENSIONS[group_by]
    return getattr(Click, group_by)


def _click_filters(query):
    conditions = []
    if query.date_from:
        conditions.append(Click.created_at >= datetime.datetime.combine(query.date_from, datetime.time()))
    if query.date_to:
        end = datetime.datetime.combine(query.date_to + datetime.timedelta(days=1), datetime.time())
        conditions.append(Click.created_at < end)
    if query.flow_id is not None:
        conditions.append(Click.flow == query.flow_id)
    if query.country:
        conditions.append(Click.country == query.country)
    for name, column in (
        ("route_id", Click.route_id),
        ("lander_id", Click.lander_id),
        ("offer_id", Click.offer_id),
    ):
        if getattr(query, name) is not None:
            conditions.append(column == getattr(query, name))
    return conditions or [True]


def _count(*conditions):
    """SUM of 1 over the rows where every condition holds."""
    return fn.SUM(
        Case(None, [(conditions[0] if len(conditions) == 1 else reduce(operator.and_, conditions), 1)], 0)
    )


def click_totals(query):
    """``(key, clicks, unique_clicks, cost in millionths, lp_views, lp_clicks, bot_clicks)``
    per group; bots out of the counts unless ``include_bots``, their cost in."""
    key = dimension_expression(query.group_by)
    counted = [] if query.include_bots else [Click.is_bot == False]  # noqa: E712
    landed = [Click.lander_id.is_null(False), *counted]
    return (
        Click.select(
            key.alias("key"),
            _count(*counted) if counted else fn.COUNT(Click.click_id),
            _count(Click.is_unique == True, *counted),  # noqa: E712
            fn.SUM(Click.cost),
            _count(*landed),
            _count(Click.lp_clicked_at.is_null(False), *landed),
            _count(Click.is_bot == True),  # noqa: E712
        )
        .where(*_click_filters(query))
        .group_by(key)
        .tuples()
    )


def conversion_totals(query):
    """``(key, approved conversions, revenue in millionths)`` per group of their clicks; only
    events that count as conversions (DESIGN §4.3), and not those of bot clicks unless the
    query includes bots."""
    key = dimension_expression(query.group_by)
    bots = [] if query.include_bots else [Click.is_bot == False]  # noqa: E712
    return (
        Conversion.select(key.alias("key"), fn.COUNT(Conversion.id), fn.SUM(Conversion.payout))
        .join(Click, on=(Conversion.click == Click.click_id))
        .where(Conversion.status == "approved", Conversion.is_conversion, *bots, *_click_filters(query))
        .group_by(key)
        .tuples()
    )


def run_report(query):
    """The rows of ``query``: time dimensions in time order, others by clicks, most first."""
    rows = {}
    for key, clicks, unique, cost, lp_views, lp_clicks, bots in click_totals(query):
        rows[key] = Row(
            key,
            int(clicks or 0),
            int(unique or 0),
            cost=money_from_db(cost or 0),
            lp_views=int(lp_views or 0),
            lp_clicks=int(lp_clicks or 0),
            bot_clicks=int(bots or 0),
        )
    for key, conversions, revenue in conversion_totals(query):
        row = rows.setdefault(key, Row(key))
        row.conversions, row.revenue = int(conversions), money_from_db(revenue or 0)
    if query.group_by in TIME_DIMENSIONS:
        return sorted(rows.values(), key=lambda r: r.key)
    return sorted(rows.values(), key=lambda r: (-r.clicks, -r.conversions, str(r.key)))


def total(rows):
    """The sum of ``rows``, as one row keyed ``None``."""
    out = Row(None)
    for row in rows:
        out.clicks += row.clicks
        out.unique_clicks += row.unique_clicks
        out.conversions += row.conversions
        out.revenue += row.revenue
        out.cost += row.cost
        out.lp_views += row.lp_views
        out.lp_clicks += row.lp_clicks
        out.bot_clicks += row.bot_clicks
    return out


def chart_series(query, today):
    """Clicks and conversions over the query's dates, a point per day (per hour for a single
    day), gaps filled with zeros: ``[(label, clicks, conversions), ...]``."""
    step = "hour" if query.date_from and query.date_from == query.date_to else "day"
    by_key = {row.key: row for row in run_report(dataclasses.replace(query, group_by=step))}
    first = query.date_from or _first_day(by_key) or today
    last = query.date_to or today
    if step == "hour":
        labels = ["%s %02d:00" % (first.isoformat(), hour) for hour in range(24)]
    else:
        days = min((last - first).days, 366)
        labels = [(first + datetime.timedelta(days=n)).isoformat() for n in range(days + 1)]
    return [
        (
            label,
            by_key[label].clicks if label in by_key else 0,
            by_key[label].conversions if label in by_key else 0,
        )
        for label in labels
    ]


def _first_day(by_key):
    return datetime.date.fromisoformat(min(by_key)) if by_key else None


def flow_numbers(today):
    """Each flow's numbers for ``today`` and for the last 7 days (today included):
    ``{flow_id: (today_row, week_row)}``; flows without clicks get empty rows."""
    week_start = today - datetime.timedelta(days=6)
    day = {row.key: row for row in run_report(ReportQuery("flow", today, today))}
    week = {row.key: row for row in run_report(ReportQuery("flow", week_start, today))}
    return {key: (day.get(key) or Row(key), week[key]) for key in week}
