"""The read path: clicks and conversions aggregated in the database, by one dimension.

Two GROUP BY queries, one over clicks and one over approved conversions joined to their
clicks, are merged by key. A conversion counts in its click's group: on the click's day,
in the click's flow, country and sub ids (a cohort report), so CR and EPC compare the
conversions of exactly the clicks they are divided by. Pending and declined conversions
count nowhere until approved. The dashboard's reports and ``GET /api/v1/stats`` both use
``run_report``, so they always agree.
"""

import datetime
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

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
]
ALIASES = {"device": "device_type", "date": "day", "flow_id": "flow", "campaign": "flow"}
TIME_DIMENSIONS = ("day", "hour")
METRICS = ["clicks", "unique_clicks", "conversions", "revenue", "cost", "profit", "cr", "epc", "roi"]


@dataclass(frozen=True)
class ReportQuery:
    """What to report: a dimension, and filters on the clicks (dates are UTC, inclusive)."""

    group_by: str = "day"
    date_from: datetime.date = None
    date_to: datetime.date = None
    flow_id: int = None
    country: str = ""


@dataclass
class Row:
    """One group's numbers; money as Decimal. The ratios are None where they divide by zero."""

    key: object
    clicks: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    cost: Decimal = field(default_factory=Decimal)

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
    return ReportQuery(group_by, date_from, date_to, flow_id, country)


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
    return conditions or [True]


def click_totals(query):
    """``(key, clicks, unique_clicks, cost in millionths)`` per group."""
    key = dimension_expression(query.group_by)
    return (
        Click.select(
            key.alias("key"),
            fn.COUNT(Click.click_id),
            fn.SUM(Case(None, [(Click.is_unique == True, 1)], 0)),  # noqa: E712
            fn.SUM(Click.cost),
        )
        .where(*_click_filters(query))
        .group_by(key)
        .tuples()
    )


def conversion_totals(query):
    """``(key, approved conversions, revenue in millionths)`` per group of their clicks; only
    events that count as conversions (DESIGN §4.3)."""
    key = dimension_expression(query.group_by)
    return (
        Conversion.select(key.alias("key"), fn.COUNT(Conversion.id), fn.SUM(Conversion.payout))
        .join(Click, on=(Conversion.click == Click.click_id))
        .where(Conversion.status == "approved", Conversion.is_conversion, *_click_filters(query))
        .group_by(key)
        .tuples()
    )


def run_report(query):
    """The rows of ``query``: time dimensions in time order, others by clicks, most first."""
    rows = {}
    for key, clicks, unique, cost in click_totals(query):
        rows[key] = Row(key, int(clicks), int(unique or 0), cost=money_from_db(cost or 0))
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
    return out


def chart_series(query, today):
    """Clicks and conversions over the query's dates, a point per day (per hour for a single
    day), gaps filled with zeros: ``[(label, clicks, conversions), ...]``."""
    step = "hour" if query.date_from and query.date_from == query.date_to else "day"
    by_key = {
        row.key: row
        for row in run_report(ReportQuery(step, query.date_from, query.date_to, query.flow_id, query.country))
    }
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
