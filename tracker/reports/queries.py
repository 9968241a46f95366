"""The read path: clicks and conversions aggregated by up to three dimensions.

A report covers a period of whole local days in its time zone (``tz``). It reads the hourly
rollups (``rollups.py``) for the whole hours they hold, and the raw rows for the rest: the
edges of the period that are not whole UTC hours, the hours since the last rolled-up point,
and hours marked dirty. Both give records of ``(keys, is_bot, figures)`` that are added up
per key here, so the figures equal a direct count of the raw rows. Reports by several of
the dimensions of few values of one kind (country, device, OS, browser, connection; or route,
lander, offer, country; with the flow and the UTC day), or by one filtered on another, read
the daily combination rollup the same way.
Other reports by more than one dimension, or filtered on a dimension other than the one
reported, read the raw rows (by the (flow, created_at) index). Reports by ``external_id`` or
``ip`` are paged in the order of the values along the click index (flow_id, <dimension>,
created_at), the page's rows read alone; ordered by a figure they group every click of the
period.

``basis=click`` (the default) counts a conversion in its click's group: on the click's hour,
in the click's flow, country and sub ids (a cohort report), so CR and EPC compare the
conversions of exactly the clicks they are divided by. ``basis=conversion`` counts it at its
own time (``conversion_date``), still in its click's groups. Pending and declined
conversions are counted apart (``pending``, ``declined``), in revenue only once approved.
Events that are not conversions count in ``events``.

Bot clicks (DESIGN §4.7) are counted in ``bot_clicks`` and left out of every other figure
(with their conversions) unless the query includes them; their cost stays in cost, profit
and ROI. ``lp_views`` are clicks sent to a lander, ``lp_clicks`` those that went on to the
offer through ``/click``.

Money is added in the report currency (TRACKER_CURRENCY): a conversion at the rate stored
with it, one recorded without a rate at the current stored rate; with no rate at all it is
reported apart in ``unconverted``, never summed as if it were in the report currency.
"""

import base64
import binascii
import copy
import dataclasses
import datetime
import functools
import logging
import operator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import reduce

from peewee import SQL, Case, Select, Tuple, Value, ValuesList, fn

from ..config import time_zone
from ..currency import stored_rates
from ..db import db, is_postgres
from ..errors import ValidationError
from ..models import SUB_NAMES, UTM_NAMES, Click, Conversion, Flow, RollupClick, RollupCombo
from ..money import money_from_db, to_money
from ..web import MAX_ID
from . import rollups

logger = logging.getLogger(__name__)

TIME_DIMENSIONS = ("day", "hour", "hour_of_day", "weekday")
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
    "ip",
    "route",
    "lander",
    "offer",
    "hour_of_day",
    "weekday",
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
# Nearly a value per click: paged (limit, order) instead of answered whole.
HIGH_CARDINALITY = frozenset(["external_id", "ip", "city", "isp", "region", *SUB_NAMES, *UTM_NAMES])
# About a value per click, nothing to roll up: a page of them in the order of the values
# (``order=key``; the dashboard's default for these) walks the click index
# (flow_id, <dimension>, created_at) (``_value_page``).
VALUE_PAGED = ("external_id", "ip")
# The orders by a figure of the clicks alone: the database can pick a page by them (_top_page).
CLICK_ORDERS = ("", "clicks", "unique_clicks", "cost", "bot_clicks", "lp_views", "lp_clicks")
DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_DIMENSIONS = 3
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
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
    "events",
    "pending",
    "declined",
    "lp_views",
    "lp_clicks",
    "lp_ctr",
    "cpa",
    "cpc",
    "bot_clicks",
]
BASES = ("click", "conversion")


@dataclass(frozen=True)
class ReportQuery:
    """What to report: up to three dimensions (``group_by``, comma-separated), the period in
    whole local days of ``tz`` (inclusive dates), and filters on the clicks."""

    group_by: str = "day"
    date_from: datetime.date = None
    date_to: datetime.date = None
    flow_id: int = None
    country: str = ""
    include_bots: bool = False
    route_id: int = None
    lander_id: int = None
    offer_id: int = None
    tz: str = "UTC"
    basis: str = "click"
    filters: tuple = ()  # ((dimension, value), ...) from f.<dimension>=<value>
    traffic_source_id: int = None
    order: str = ""
    limit: int = None
    offset: int = 0
    compare: str = ""
    currency: str = "USD"
    after: str = None  # a page in value order starts after this value (the cursor of the last)

    @property
    def dimensions(self):
        return tuple(self.group_by.split(","))

    def period(self):
        """``(start, end)`` in naive UTC, ``end`` exclusive; None where open."""
        zone = time_zone(self.tz)
        start = _utc_midnight(self.date_from, zone) if self.date_from else None
        end = _utc_midnight(self.date_to + datetime.timedelta(days=1), zone) if self.date_to else None
        return start, end

    def previous(self):
        """The query of the period of the same length just before."""
        days = (self.date_to - self.date_from).days + 1
        return dataclasses.replace(
            self,
            date_from=self.date_from - datetime.timedelta(days=days),
            date_to=self.date_from - datetime.timedelta(days=1),
            compare="",
            limit=None,
            offset=0,
            after=None,
        )


def _utc_midnight(day, zone):
    local = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
    return local.astimezone(datetime.timezone.utc).replace(tzinfo=None)


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
    events: int = 0
    pending: int = 0
    declined: int = 0
    keys: tuple = ()
    unconverted: dict = field(default_factory=dict)  # {currency: Decimal} without a rate
    currency: str = "USD"
    previous: object = None

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

    @property
    def cpa(self):
        """Cost per conversion."""
        return _ratio(self.cost, self.conversions, "0.0001")

    @property
    def cpc(self):
        """Cost per click."""
        return _ratio(self.cost, self.clicks, "0.0001")

    def add(self, other):
        for name in (
            "clicks",
            "unique_clicks",
            "conversions",
            "revenue",
            "cost",
            "lp_views",
            "lp_clicks",
            "bot_clicks",
            "events",
            "pending",
            "declined",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, amount in other.unconverted.items():
            self.unconverted[code] = self.unconverted.get(code, Decimal(0)) + amount


def _ratio(numerator, denominator, places):
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


# -- parsing a request ------------------------------------------------------------------------


def _parse_date(value, name):
    if value in (None, ""):
        return None
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError("%s must be a date like 2024-05-31" % name, 400) from None


def _dimension(name, what="group_by"):
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if name not in DIMENSIONS:
        raise ValidationError("%s must be one of %s" % (what, ", ".join(DIMENSIONS)), 400)
    return name


def parse_query(args, default_group="day", default_tz="UTC", currency="USD"):
    """A ``ReportQuery`` from request-like ``args`` (``group_by, from, to, tz, basis,
    flow_id, traffic_source_id, route_id, lander_id, offer_id, country, f.<dimension>,
    include_bots, compare, order, limit, cursor``); a 400 ValidationError names what is wrong."""
    names = [part for part in (args.get("group_by") or default_group).split(",")]
    if len(names) > MAX_DIMENSIONS:
        raise ValidationError("group_by takes at most %d dimensions" % MAX_DIMENSIONS, 400)
    dimensions = [_dimension(name) for name in names]
    if len(set(dimensions)) != len(dimensions):
        raise ValidationError("group_by names a dimension twice", 400)
    date_from, date_to = _parse_date(args.get("from"), "from"), _parse_date(args.get("to"), "to")
    if date_from and date_to and date_from > date_to:
        raise ValidationError("from must not be after to", 400)
    tz = (args.get("tz") or default_tz).strip()
    try:
        time_zone(tz)
    except ValueError:
        raise ValidationError("tz must be an IANA time zone such as Europe/Berlin", 400) from None
    basis = (args.get("basis") or "click").strip().lower()
    if basis not in BASES:
        raise ValidationError("basis must be click or conversion", 400)
    flow_id = _id_arg(args, "flow_id")
    country = (args.get("country") or "").strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise ValidationError("country must be a two-letter ISO code such as US", 400)
    include_bots = (args.get("include_bots") or "").strip().lower()
    if include_bots not in ("", "0", "1", "true", "false"):
        raise ValidationError("include_bots must be 1 or 0", 400)
    filters = []
    for name in _arg_names(args):
        if name.startswith("f."):
            dimension = _dimension(name[2:], name)
            if dimension in ("hour_of_day", "weekday"):
                raise ValidationError("%s cannot be filtered on; report by it instead" % name, 400)
            for value in _arg_values(args, name):
                filters.append((dimension, _filter_value(dimension, value, name)))
    compare = (args.get("compare") or "").strip().lower()
    if compare not in ("", "previous"):
        raise ValidationError("compare must be previous", 400)
    if compare and not (date_from and date_to):
        raise ValidationError("compare=previous needs from and to", 400)
    order = (args.get("order") or "").strip().lower()
    if order and order not in METRICS and order != "key":
        raise ValidationError("order must be key or one of %s" % ", ".join(METRICS), 400)
    limit = (args.get("limit") or "").strip()
    if limit:
        if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
            raise ValidationError("limit must be a whole number from 1 to %d" % MAX_PAGE, 400)
        limit = int(limit)
    elif HIGH_CARDINALITY.intersection(dimensions):
        limit = DEFAULT_PAGE
    else:
        limit = None
    cursor = (args.get("cursor") or "").strip()
    after = None
    if cursor.startswith("v"):
        after = _value_after(cursor)
        cursor = ""
    elif cursor and (not cursor.isascii() or not cursor.isdigit() or len(cursor) > 9):
        raise ValidationError("cursor must be the next of a previous answer", 400)
    return ReportQuery(
        group_by=",".join(dimensions),
        date_from=date_from,
        date_to=date_to,
        flow_id=flow_id,
        country=country,
        include_bots=include_bots in ("1", "true"),
        route_id=_id_arg(args, "route_id"),
        lander_id=_id_arg(args, "lander_id"),
        offer_id=_id_arg(args, "offer_id"),
        tz=tz,
        basis=basis,
        filters=tuple(filters),
        traffic_source_id=_id_arg(args, "traffic_source_id"),
        order=order,
        limit=limit,
        offset=int(cursor or 0),
        compare=compare,
        currency=currency,
        after=after,
    )


def value_cursor(value):
    """The cursor of a page in value order that ends at ``value``: ``v`` and the value in
    URL-safe base64 (any text, and still a plain token in a URL)."""
    return "v" + base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")


def _value_after(cursor):
    """The value a ``value_cursor`` names; a 400 ValidationError when it names none."""
    text = cursor[1:]
    try:
        if len(text) > 1400 or not text.isascii():
            raise ValueError
        value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
    except (ValueError, binascii.Error):
        raise ValidationError("cursor must be the next of a previous answer", 400) from None
    if value_cursor(value) != cursor or "\x00" in value:
        raise ValidationError("cursor must be the next of a previous answer", 400)
    return value


def _arg_names(args):
    return list(args.keys())


def _arg_values(args, name):
    if hasattr(args, "getlist"):
        return args.getlist(name)
    value = args.get(name)
    return value if isinstance(value, list) else [value]


def _filter_value(dimension, value, name):
    value = "" if value is None else str(value)
    if len(value) > 255:
        raise ValidationError("%s is longer than 255 characters" % name, 400)
    if dimension in ("flow", *ID_DIMENSIONS):
        value = value.strip()
        if value == "":
            return None
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
            raise ValidationError("%s must be an id" % name, 400)
        return int(value)
    if dimension == "day":
        return _parse_date(value, name)
    if dimension == "hour":
        try:
            return datetime.datetime.strptime(value.strip(), "%Y-%m-%d %H:00")
        except ValueError:
            raise ValidationError("%s must be an hour like 2024-05-31 14:00" % name, 400) from None
    if dimension == "country":
        return value.strip().upper()
    return value


def _id_arg(args, name):
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise ValidationError("%s must be a whole number" % name, 400)
    if not 0 < int(value) <= MAX_ID:  # the database refuses ids beyond 64 bits (a 500)
        raise ValidationError("%s must be an id from 1 to %d" % (name, MAX_ID), 400)
    return int(value)


# -- what to read ------------------------------------------------------------------------------


def dimension_expression(group_by):
    """The SQL expression of a (non-time) dimension, on the click table."""
    if group_by == "flow":
        return Click.flow
    if group_by in ID_DIMENSIONS:
        return ID_DIMENSIONS[group_by]
    return getattr(Click, group_by)


def _bucket(column, fine):
    """SQL: the UTC hour (or minute, for zones off whole hours) of ``column``, as text."""
    if is_postgres():
        return fn.to_char(column, "YYYY-MM-DD HH24:MI" if fine else "YYYY-MM-DD HH24:00").coerce(False)
    return fn.strftime("%Y-%m-%d %H:%M" if fine else "%Y-%m-%d %H:00", column).coerce(False)


def _whole_hours(zone, start, end):
    """Whether the zone's offset is whole hours over the period (so UTC hours map to local ones)."""
    moments = [m for m in (start, end) if m is not None] or [datetime.datetime(2000, 1, 1)]
    moments += [datetime.datetime(m.year, month, 1) for m in moments[:1] for month in (1, 7)]
    for moment in moments:
        offset = moment.replace(tzinfo=datetime.timezone.utc).astimezone(zone).utcoffset()
        if offset.total_seconds() % 3600:
            return False
    return True


def _utc_days(zone, start, end):
    """Whether the zone's days over ``[start, end)`` are UTC days (offset zero at each midnight),
    so that a rollup row of a UTC day is a row of one local day."""
    if start is None or end is None:
        return False
    moment = start
    while moment <= end:
        if moment.replace(tzinfo=datetime.timezone.utc).astimezone(zone).utcoffset():
            return False
        moment += rollups.DAY
    return True


class _Plan:
    """The flows, period, filters and the split between rollups and raw rows of a query."""

    def __init__(self, query):
        self.query = query
        self.zone = time_zone(query.tz)
        self.dims = query.dimensions
        start, end = query.period()
        self.filters = {}
        for dimension, value in _all_filters(query):
            self.filters.setdefault(dimension, set()).add(value)
        # a day or hour filter narrows the period
        for dimension in ("day", "hour"):
            for value in self.filters.pop(dimension, ()):
                if dimension == "day":
                    low = _utc_midnight(value, self.zone)
                    high = _utc_midnight(value + datetime.timedelta(days=1), self.zone)
                else:
                    low = (
                        value.replace(tzinfo=self.zone).astimezone(datetime.timezone.utc).replace(tzinfo=None)
                    )
                    high = low + rollups.HOUR
                start = low if start is None else max(start, low)
                end = high if end is None else min(end, high)
        self.start, self.end = start, end
        self.empty = start is not None and end is not None and start >= end
        self.fine = not _whole_hours(self.zone, start, end)
        self.flow_ids = self._flows()
        if self.flow_ids == []:
            self.empty = True
        self.shares = {}  # _day_shares

    def _flows(self):
        """The ids of the flows reported (flow filters, the traffic source), every flow's when
        none is named: the raw queries then use the (flow, created_at) index."""
        query = self.query
        wanted = self.filters.pop("flow", None)
        if query.flow_id is not None:
            wanted = {query.flow_id} if wanted is None else wanted & {query.flow_id}
        select = Flow.select(Flow.id)
        self.every_flow = wanted is None and query.traffic_source_id is None
        if wanted is not None:
            wanted = sorted(flow_id for flow_id in wanted if flow_id is not None)
            if not wanted:
                return []
            select = select.where(Flow.id.in_(wanted))
        if query.traffic_source_id is not None:
            select = select.where(Flow.traffic_source == query.traffic_source_id)
        return sorted(flow_id for (flow_id,) in select.tuples())

    def rollup_dimension(self):
        """The rollup dimension that answers the query's clicks, or None (read raw)."""
        if len(self.dims) != 1:
            return None
        dim = self.dims[0]
        if set(self.filters) - {dim}:
            return None
        if dim in TIME_DIMENSIONS or dim == "flow":
            return None if self.fine or self.filters else ""
        return dim if dim in rollups.DIMENSIONS else None

    def combo_kind(self):
        """The kind of combination rollup that holds every grouped and filtered dimension
        (besides the flow, and the day when the report's days are UTC days), or None."""
        dims = set(self.dims) - {"flow"}
        if "day" in dims:
            if not _utc_days(self.zone, self.start, self.end):
                return None
            dims.discard("day")
        # a page's keys narrow its plan by the flow too (``_page_clicks``): every kind has it
        wanted = (dims | set(self.filters)) - {"flow"}
        for kind, held in rollups.COMBO_KINDS.items():
            if wanted <= set(held):
                return kind
        return None

    def combo_holds(self):
        return self.combo_kind() is not None


def _all_filters(query):
    pairs = list(query.filters)
    if query.country:
        pairs.append(("country", query.country))
    for name in ("route", "lander", "offer"):
        if getattr(query, name + "_id") is not None:
            pairs.append((name, getattr(query, name + "_id")))
    return pairs


# -- reading ----------------------------------------------------------------------------------


class _Totals:
    """Figures by key tuple, added up from rollup and raw records as plain lists (a report
    may have many thousands of groups); ``rows()`` makes them ``Row``s."""

    # the list: clicks, unique, cost (millionths), lp_views, lp_clicks, bot_clicks,
    # conversions, revenue (millionths), pending, declined, events, {currency: millionths}
    def __init__(self, query):
        self.query = query
        self.figures = {}

    def add_clicks(self, records, width, make):
        include = self.query.include_bots
        figures = self.figures
        for record in records:
            keys = make(record[:width])
            acc = figures.get(keys)
            if acc is None:
                acc = figures[keys] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None]
            is_bot, clicks, unique, cost, lp_views, lp_clicks = record[width:]
            acc[2] += int(cost or 0)
            clicks = int(clicks or 0)
            if is_bot:
                acc[5] += clicks
                if not include:
                    continue
            acc[0] += clicks
            acc[1] += int(unique or 0)
            acc[3] += int(lp_views or 0)
            acc[4] += int(lp_clicks or 0)

    def add_conversions(self, records, width, make):
        include = self.query.include_bots
        figures = self.figures
        for record in records:
            is_bot, currency, conversions, revenue, pending, declined, events = record[width:]
            if is_bot and not include:
                continue
            keys = make(record[:width])
            acc = figures.get(keys)
            if acc is None:
                acc = figures[keys] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None]
            acc[6] += int(conversions or 0)
            if currency:
                acc[11] = acc[11] or {}
                acc[11][currency] = acc[11].get(currency, 0) + int(revenue or 0)
            else:
                acc[7] += int(revenue or 0)
            acc[8] += int(pending or 0)
            acc[9] += int(declined or 0)
            acc[10] += int(events or 0)

    def rows(self):
        currency = self.query.currency
        out = []
        for keys, acc in self.figures.items():
            out.append(
                Row(
                    keys[-1],
                    clicks=acc[0],
                    unique_clicks=acc[1],
                    cost=money_from_db(acc[2]),
                    lp_views=acc[3],
                    lp_clicks=acc[4],
                    bot_clicks=acc[5],
                    conversions=acc[6],
                    revenue=money_from_db(acc[7]),
                    pending=acc[8],
                    declined=acc[9],
                    events=acc[10],
                    keys=keys,
                    unconverted={code: money_from_db(v) for code, v in (acc[11] or {}).items()},
                    currency=currency,
                )
            )
        return out


def _fetch(query, scan=False):
    """The records of a SELECT as the driver returns them (no per-value conversion); ``scan``:
    SQLite reads the click table whole, not by an index (``_scan_is_faster``)."""
    if not scan:
        return db.execute(query).fetchall()
    sql, params = query.sql()
    sql = sql.replace('FROM "click" AS "t1"', 'FROM "click" AS "t1" NOT INDEXED', 1)
    return db.execute_sql(sql, params).fetchall()


# SQLite reads the clicks of several flows by (flow_id, created_at) one flow after the other,
# each click's row out of the table's order (that of its writing, hence of time): every page
# of the table read once per flow. A report over most of the clicks reads them faster by
# scanning the table in its order: at 1 M clicks over 20 flows, sub1 of the US clicks over 30
# days, 0.57 s scanned against 1.5-2.0 s by the index (one flow's clicks are read in order).
SCAN_SHARE = 0.3


def _rolled_up_clicks():
    """Every click the rollups hold: the sum of the flows' hourly totals."""
    return RollupClick.select(fn.SUM(RollupClick.clicks)).where(RollupClick.dimension == "").scalar()


def _scan_is_faster(start, end, flow_ids, rolled_up=_rolled_up_clicks):
    """Whether SQLite reads the clicks of ``flow_ids`` in ``[start, end)`` faster by scanning the
    click table: several flows, and ``SCAN_SHARE`` of the clicks or more by the flows' rollup.
    ``rolled_up()`` gives every click the rollups hold; a report of several segments asks it
    once (its SUM reads every flow total ever kept)."""
    if is_postgres() or len(flow_ids) < 2:
        return False  # PostgreSQL's planner weighs it from its statistics
    model = RollupClick
    inside = [model.dimension == "", model.flow_id.in_(flow_ids)]
    if start is not None:
        inside.append(model.hour >= rollups.floor_to(start, rollups.HOUR))
    if end is not None:
        inside.append(model.hour < end)
    part = model.select(fn.SUM(model.clicks)).where(*inside).scalar()
    return bool(part) and part >= SCAN_SHARE * rolled_up()


def _count(*conditions):
    """SUM of 1 over the rows where every condition holds."""
    condition = conditions[0] if len(conditions) == 1 else reduce(operator.and_, conditions)
    return fn.SUM(Case(None, [(condition, 1)], 0))


def _raw_click_filters(plan, column_of=None):
    """SQL conditions of the plan's filters on the click table (or, with ``column_of``, on the
    columns it gives for a dimension)."""
    column_of = column_of or dimension_expression
    conditions = []
    for dimension, values in plan.filters.items():
        column = column_of(dimension)
        if None in values:
            rest = [v for v in values if v is not None]
            conditions.append(column.is_null() | (column.in_(rest) if rest else False))
        else:
            conditions.append(column.in_(sorted(values, key=str)))
    return conditions


def _raw_keys(plan, time_column):
    """The SQL expressions grouped by, one per dimension (time dimensions share one bucket)."""
    exprs = []
    for dim in plan.dims:
        if dim in TIME_DIMENSIONS:
            exprs.append(_bucket(time_column, plan.fine))
        else:
            exprs.append(dimension_expression(dim))
    return exprs


def _key_maker(plan):
    """Turn the grouped values of a record into the report's key tuple."""
    zone = plan.zone

    def local(bucket):
        if isinstance(bucket, datetime.datetime):
            moment = bucket
        else:
            moment = datetime.datetime.fromisoformat(str(bucket))
        return moment.replace(tzinfo=datetime.timezone.utc).astimezone(zone)

    if all(dim not in TIME_DIMENSIONS and dim not in ID_DIMENSIONS and dim != "flow" for dim in plan.dims):
        return lambda values: tuple("" if value is None else value for value in values)

    def make(values):
        keys = []
        for dim, value in zip(plan.dims, values, strict=True):
            if dim in TIME_DIMENSIONS:
                moment = local(value)
                if dim == "day":
                    value = moment.date().isoformat()
                elif dim == "hour":
                    value = moment.strftime("%Y-%m-%d %H:00")
                elif dim == "hour_of_day":
                    value = moment.strftime("%H")
                else:
                    value = WEEKDAYS[moment.weekday()]
            elif dim in ID_DIMENSIONS or dim == "flow":
                value = None if value in (None, "") else int(value)
            elif value is None:
                value = ""
            keys.append(value)
        return tuple(keys)

    return make


def _read_raw_clicks(plan, totals, segments):
    """Add the raw clicks of ``segments`` (``(start, end, flow_ids)``, open where None)."""
    make = _key_maker(plan)
    filters = _raw_click_filters(plan)
    landed = Click.lander_id.is_null(False)
    keys = _raw_keys(plan, Click.created_at)
    rolled_up = functools.cache(_rolled_up_clicks)
    for start, end, flow_ids in segments:
        if not flow_ids:
            continue
        scan = _scan_is_faster(start, end, flow_ids, rolled_up)
        where = [Click.flow.in_(flow_ids)]
        if start is not None:
            where.append(Click.created_at >= start)
        if end is not None:
            where.append(Click.created_at < end)
        clicks = (
            Click.select(
                *keys,
                Click.is_bot,
                fn.COUNT(Click.click_id),
                _count(Click.is_unique == True),  # noqa: E712
                fn.SUM(Click.cost),
                _count(landed),
                _count(landed & Click.lp_clicked_at.is_null(False)),
            )
            .where(*where, *filters)
            .group_by(*keys, Click.is_bot)
        )
        totals.add_clicks(_fetch(clicks, scan), len(keys), make)


def copied_column(dimension):
    """The conversion's copy of its click's column for a (non-time) dimension
    (``models.CLICK_COPIED``)."""
    if dimension == "flow":
        return Conversion.flow
    return getattr(Conversion, "click_" + dimension_expression(dimension).name)


def _read_conversions(plan, totals):
    """Add the conversions of the period: those of its clicks (``basis=click``) or those that
    happened in it (``basis=conversion``), read from the conversion table alone by its (flow,
    created_at) index: a conversion is never before its click, so the period's start bounds
    both, and it carries a copy of what a report needs of its click (time, bot flag,
    dimensions), so no report joins the clicks."""
    make = _key_maker(plan)
    filters = _raw_click_filters(plan, copied_column)
    approved = (Conversion.status == "approved") & Conversion.is_conversion
    where = [Conversion.flow.in_(plan.flow_ids)]
    if plan.start is not None:
        where.append(Conversion.created_at >= plan.start)
    if plan.query.basis == "click":
        moment = Conversion.click_created_at
        if plan.start is not None:
            where.append(moment >= plan.start)
        if plan.end is not None:
            where.append(moment < plan.end)
    else:
        moment = Conversion.created_at
        if plan.end is not None:
            where.append(moment < plan.end)
    keys = [_bucket(moment, plan.fine) if dim in TIME_DIMENSIONS else copied_column(dim) for dim in plan.dims]
    currency = Case(None, [(Conversion.report_payout.is_null(), Conversion.currency)], "")
    conversions = (
        Conversion.select(
            *keys,
            Conversion.click_is_bot,
            currency,
            _count(approved),
            fn.SUM(Case(None, [(approved, fn.COALESCE(Conversion.report_payout, Conversion.payout))], 0)),
            _count((Conversion.status == "pending") & Conversion.is_conversion),
            _count((Conversion.status == "declined") & Conversion.is_conversion),
            _count((Conversion.status == "approved") & ~Conversion.is_conversion),
        )
        .where(*where, *filters)
        .group_by(*keys, Conversion.click_is_bot, currency)
    )
    totals.add_conversions(_fetch(conversions), len(keys), make)


def _read_rollups(plan, totals, dimension, low, high, dirty):
    """Add the rollup rows of ``dimension`` for ``[low, high)`` but the dirty ones."""
    make = _key_maker(plan)
    dim = plan.dims[0]
    values = plan.filters.get(dim)
    model = RollupClick
    if rollups.base_of(dimension) == "":
        key = model.hour if dim in TIME_DIMENSIONS else model.flow_id
    else:
        key = model.value
    where = [model.dimension == dimension, model.flow_id.in_(plan.flow_ids)]
    if low is not None:
        where.append(model.hour >= low)
    where.append(model.hour < high)
    if values is not None:
        where.append(model.value.in_(sorted("" if v is None else str(v) for v in values)))
    if dirty:
        where.append(
            ~reduce(operator.or_, [(model.hour == hour) & (model.flow_id == flow) for hour, flow in dirty])
        )
    select = (
        model.select(
            key,
            model.is_bot,
            *[fn.SUM(getattr(model, name)) for name in rollups.FIGURES],
        )
        .where(*where)
        .group_by(key, model.is_bot)
    )
    totals.add_clicks(_fetch(select), 1, make)


def _combo_column(dimension):
    """The column of ``rollup_combo`` that holds ``dimension``."""
    if dimension == "flow":
        return RollupCombo.flow_id
    if dimension == "day":
        return RollupCombo.day
    return getattr(RollupCombo, rollups.combo_column(dimension).name)


def _combo_rows(plan, low, high, dirty):
    """The WHERE conditions of the combination rows of the UTC days ``[low, high)`` but the
    dirty ``(day, flow)``."""
    model = RollupCombo
    after, before = _day_shares(plan, low, high)
    where = [model.kind == plan.combo_kind(), _likely(model.day < high, before)]
    if not plan.every_flow:  # flows are never deleted: every row is of one (15 % of a scan)
        where.append(model.flow_id.in_(plan.flow_ids))
    where.extend(_raw_click_filters(plan, _combo_column))
    if low is not None:
        where.append(_likely(model.day >= low, after))
    if dirty:
        where.append(
            ~reduce(operator.or_, [(model.day == day) & (model.flow_id == flow) for day, flow in dirty])
        )
    return where


def _day_shares(plan, low, high):
    """SQLite: the shares of the plan's combination rows on or after ``low`` and before
    ``high``, as if spread evenly over the days rolled up (None where open); asked once a plan.
    None on PostgreSQL, whose statistics know them."""
    if is_postgres():
        return None, None
    if (low, high) not in plan.shares:
        model = RollupCombo
        first = model.select(fn.MIN(model.day)).where(model.kind == plan.combo_kind()).scalar()
        until = rollups.rolled_until()
        shares = None, None
        if first is not None and until is not None:
            first, last = model.day.python_value(first), rollups.floor_day(until)
            span = max((last - first).total_seconds(), 1)
            after = None if low is None else (last - low).total_seconds() / span
            shares = after, (high - first).total_seconds() / span
        plan.shares[low, high] = shares
    return plan.shares[low, high]


def _likely(condition, share):
    """``condition`` with SQLite's hint that it holds for ``share`` of the rows (``likelihood``;
    as is where ``share`` is None). SQLite keeps no statistics of a range and takes one of days,
    bounded on both sides, for a 64th of the table: it read a 30-day report of country, OS and
    sub1 by the day index and sorted every row, where the index in drill-down order
    (``models.COMBO_ORDER``) gives them grouped; told the share, it takes the day index only
    for the few days it suits (yesterday of a year of rows)."""
    if share is None:
        return condition
    return fn.likelihood(condition, SQL("%.6f" % min(max(share, 0.000001), 1.0)))


def _read_combos(plan, totals, low, high, dirty):
    """Add the combination rows of the UTC days ``[low, high)`` but the dirty ``(day, flow)``."""
    model = RollupCombo
    keys = [_combo_column(dim) for dim in plan.dims]
    select = (
        model.select(
            *keys,
            model.is_bot,
            *[fn.SUM(getattr(model, name)) for name in rollups.FIGURES],
        )
        .where(*_combo_rows(plan, low, high, dirty))
        .group_by(*keys, model.is_bot)
    )
    totals.add_clicks(_fetch(select), len(keys), _key_maker(plan))


def _combo_split(plan):
    """Where a report the combination rollup holds reads its clicks: ``(low, high, dirty,
    segments)``, the combination rows of the whole UTC days ``[low, high)`` rolled up but the
    ``dirty`` ``(day, flow)`` pairs, and the raw ``segments`` (``(start, end, flow_ids)``) for
    the rest (the hours at the period's edges, the day not yet rolled up, the dirty days); None
    when it holds none of them (all raw)."""
    until = rollups.rolled_until()
    start, end = plan.start, plan.end
    if until is None:
        return None
    low = rollups.ceil_day(start) if start is not None else None
    high = rollups.floor_day(until)
    if end is not None:
        high = min(rollups.floor_day(end), high)
    if low is not None and low >= high:
        return None
    segments = []
    if start is not None and start < low:
        segments.append((start, low, plan.flow_ids))
    if end is None or high < end:
        segments.append((high, end, plan.flow_ids))
    flows = set(plan.flow_ids)
    dirty = sorted(
        {
            (rollups.floor_day(hour), flow)
            for hour, flow in rollups.dirty_pairs(until)
            if flow in flows and (low is None or hour >= low) and hour < high
        }
    )
    by_day = {}
    for day, flow in dirty:
        by_day.setdefault(day, []).append(flow)
    segments.extend((day, day + rollups.DAY, flow_ids) for day, flow_ids in sorted(by_day.items()))
    return low, high, dirty, segments


def _read_clicks_by_combos(plan, totals):
    """The clicks of a report the combination rollup holds: its rows for the whole UTC days
    rolled up, the raw rows for the rest (``_combo_split``)."""
    split = _combo_split(plan)
    if split is None:
        return _read_raw_clicks(plan, totals, [(plan.start, plan.end, plan.flow_ids)])
    low, high, dirty, segments = split
    _read_combos(plan, totals, low, high, dirty)
    _read_raw_clicks(plan, totals, segments)


def _collect(query):
    """Every row of ``query``, unsorted, money not yet converted."""
    plan = _Plan(query)
    totals = _Totals(query)
    if plan.empty:
        return []
    _read_conversions(plan, totals)
    _read_clicks(plan, totals)
    return totals.rows()


def _read_clicks(plan, totals):
    """The clicks: rollups for the whole hours (days) they hold, raw rows for the rest. A
    dimension rolled up by the hour is read from its per-day copy for the whole UTC days of
    the period and by the hour only at the edges."""
    dimension = plan.rollup_dimension()
    if dimension is None and plan.combo_holds():
        return _read_clicks_by_combos(plan, totals)
    until = rollups.rolled_until() if dimension is not None else None
    start, end = plan.start, plan.end
    everything = [(start, end, plan.flow_ids)]
    if until is None:
        return _read_raw_clicks(plan, totals, everything)
    grain = rollups.grain_of(dimension)
    low = rollups.ceil_to(start, grain) if start is not None else None
    high = rollups.floor_to(until, grain)
    if end is not None:
        high = min(rollups.floor_to(end, grain), high)
    if low is not None and low >= high:
        return _read_raw_clicks(plan, totals, everything)
    segments = []
    if start is not None and start < low:
        segments.append((start, low, plan.flow_ids))
    if end is None or high < end:
        segments.append((high, end, plan.flow_ids))
    pieces = [(dimension, grain, low, high)]
    if grain == rollups.HOUR and plan.dims[0] not in TIME_DIMENSIONS:
        day_low = rollups.ceil_day(low) if low is not None else None
        day_high = rollups.floor_day(high)
        if day_low is None or day_low < day_high:
            pieces = [("day:" + dimension, rollups.DAY, day_low, day_high)]
            if low is not None and low < day_low:
                pieces.append((dimension, grain, low, day_low))
            if day_high < high:
                pieces.append((dimension, grain, day_high, high))
    marked = rollups.dirty_pairs(until)
    flows = set(plan.flow_ids)
    for stored, span, piece_low, piece_high in pieces:
        dirty = sorted(
            {
                (rollups.floor_to(hour, span), flow)
                for hour, flow in marked
                if flow in flows and (piece_low is None or hour >= piece_low) and hour < piece_high
            }
        )
        by_bucket = {}
        for bucket, flow in dirty:
            by_bucket.setdefault(bucket, []).append(flow)
        segments.extend((bucket, bucket + span, flow_ids) for bucket, flow_ids in sorted(by_bucket.items()))
        _read_rollups(plan, totals, stored, piece_low, piece_high, dirty)
    _read_raw_clicks(plan, totals, segments)


def _convert(rows, currency, rates):
    """Add revenue recorded without a rate at the current rates; keep the rest apart."""
    for row in rows:
        kept = {}
        for code, amount in row.unconverted.items():
            if code == currency:
                row.revenue += amount
            elif code in rates:
                row.revenue += to_money(amount * rates[code])
            elif amount:
                kept[code] = amount
        row.unconverted = kept


def _sort(rows, query):
    dims = query.dimensions
    if not query.order and dims[0] in TIME_DIMENSIONS:
        return sorted(rows, key=lambda r: _time_order(r.keys, dims))
    if query.order == "key":
        return sorted(rows, key=lambda r: tuple(str(k) for k in r.keys))
    metric = query.order or "clicks"

    # Ties: more clicks first, then more conversions, then by key. Where the database picks a
    # page by a click figure (_top_page), conversions are not at hand: ties go by clicks and key
    # there and here alike, so a page is always that slice of the whole report.
    conversions = query.order not in CLICK_ORDERS

    def order(row):
        value = getattr(row, metric)
        then = -row.conversions if conversions else 0
        return (value is None, -(value or 0), -row.clicks, then, tuple(str(k) for k in row.keys))

    return sorted(rows, key=order)


def _time_order(keys, dims):
    out = []
    for dim, key in zip(dims, keys, strict=True):
        out.append(WEEKDAYS.index(key) if dim == "weekday" else str(key))
    return tuple(out)


def run_report(query):
    """Every row of ``query``: time dimensions in time order, others by ``order`` (default
    clicks, most first)."""
    rows = _collect(query)
    _convert(rows, query.currency, stored_rates())
    return _sort(rows, query)


@dataclass
class Report:
    items: list
    totals: Row
    next: str = None


def _page_figures(query, row_figure):
    """The aggregates a top page selects: the figure it is ordered by, the clicks ties go by,
    and the five click figures of the humans, then of the bots. ``row_figure(name, bot)`` is
    the SQL of one row's figure ``name`` (of ``rollups.FIGURES``) where its bot flag is ``bot``
    (either flag: None)."""

    def total(name, bot):
        return fn.SUM(row_figure(name, bot))

    counted = None if query.include_bots else False
    metric = {
        "": total("clicks", counted),
        "clicks": total("clicks", counted),
        "unique_clicks": total("unique_clicks", counted),
        "cost": total("cost", None),
        "bot_clicks": total("clicks", True),
        "lp_views": total("lp_views", counted),
        "lp_clicks": total("lp_clicks", counted),
    }[query.order]
    figures = [total(name, bot) for bot in (False, True) for name in rollups.FIGURES]
    return metric, total("clicks", counted), figures


def _top_select(query, source, keys, row_figure, with_figures=True):
    """SELECT keys, the ordering figure and (``with_figures``) the click figures FROM ``source``
    GROUP BY the keys ORDER BY that figure (ties: clicks, then the keys, as ``_sort`` breaks
    them)."""
    metric, clicks, figures = _page_figures(query, row_figure)
    return (
        Select([source], [*keys, metric, *(figures if with_figures else [])])
        .group_by(*keys)
        .order_by(metric.desc(), clicks.desc(), *keys)
    )


def _raw_row_figures():
    """``rollups.FIGURES`` of one raw click, as SQL."""
    landed = Click.lander_id.is_null(False)
    return {
        "clicks": Value(1),
        "unique_clicks": Case(None, [(Click.is_unique == True, 1)], 0),  # noqa: E712
        "cost": Click.cost,
        "lp_views": Case(None, [(landed, 1)], 0),
        "lp_clicks": Case(None, [(landed & Click.lp_clicked_at.is_null(False), 1)], 0),
    }


def _row_figure(is_bot, figures):
    """``row_figure`` of ``_page_figures`` for rows whose bot flag is ``is_bot`` and whose
    figures are ``figures`` (name: SQL)."""

    def row_figure(name, bot):
        figure = figures[name]
        return figure if bot is None else Case(None, [(is_bot == bot, figure)], 0)

    return row_figure


def _top_of_raw(plan):
    """The top page's SELECT over the raw clicks of the period, and its keys."""
    keys = [dimension_expression(dim) for dim in plan.dims]
    where = [Click.flow.in_(plan.flow_ids), *_raw_click_filters(plan)]
    if plan.start is not None:
        where.append(Click.created_at >= plan.start)
    if plan.end is not None:
        where.append(Click.created_at < plan.end)
    row_figure = _row_figure(Click.is_bot, _raw_row_figures())
    return _top_select(plan.query, Click, keys, row_figure).where(*where), keys


def _by_flag(is_bot, figures):
    """``rollups.FIGURES`` of the humans, then of the bots (``bot_clicks``…), as SQL of one row
    whose bot flag is ``is_bot`` and whose figures are ``figures`` (name: SQL)."""
    return [
        (prefix + name, Case(None, [(is_bot == bot, figures[name])], 0))
        for bot, prefix in ((False, ""), (True, "bot_"))
        for name in rollups.FIGURES
    ]


def _flag_records(records, width):
    """Records of the keys (``width`` values) and the figures of ``_by_flag`` as records of the
    keys, the bot flag and ``rollups.FIGURES`` (``_Totals.add_clicks``): the bots' only when
    they clicked."""
    count = len(rollups.FIGURES)
    flagged = []
    for record in records:
        keys = tuple(record[:width])
        flagged.append(keys + (False,) + tuple(record[width : width + count]))
        if record[width + count]:
            flagged.append(keys + (True,) + tuple(record[width + count : width + 2 * count]))
    return flagged


def _combo_and_raw_rows(plan, split, narrowings=({},)):
    """The combination rows and the raw clicks the rollup does not hold (``_combo_split``) as
    one list of rows (UNION ALL) of the keys (``k0``…) and ``_by_flag``'s figures; and its key
    columns. The combination rows come grouped by the keys: where they lead the index
    ``rollup_combo_order`` SQLite groups them as it reads them, and only the groups are sorted
    with the raw clicks (country,os,sub1 at 1 M clicks: 135,000 groups of 710,000 rows). They
    are read once per filters of ``narrowings`` (dimension: values, over the plan's)."""
    low, high, dirty, segments = split
    names = ["k%d" % number for number in range(len(plan.dims))]
    model = RollupCombo
    keys = [_combo_column(dim) for dim in plan.dims]
    stored = _by_flag(model.is_bot, {name: getattr(model, name) for name in rollups.FIGURES})
    parts = []
    for narrowing in narrowings:
        narrowed = copy.copy(plan)
        narrowed.filters = {**plan.filters, **narrowing}
        parts.append(
            model.select(
                *[key.alias(name) for key, name in zip(keys, names, strict=True)],
                *[fn.SUM(figure).alias(alias) for alias, figure in stored],
            )
            .where(*_combo_rows(narrowed, low, high, dirty))
            .group_by(*keys)
        )
    filters = _raw_click_filters(plan)
    raw = _by_flag(Click.is_bot, _raw_row_figures())
    for start, end, flow_ids in segments:
        where = [Click.flow.in_(flow_ids), *filters]
        if start is not None:
            where.append(Click.created_at >= start)
        if end is not None:
            where.append(Click.created_at < end)
        parts.append(
            Click.select(
                *[dimension_expression(dim).alias(name) for dim, name in zip(plan.dims, names, strict=True)],
                *[figure.alias(alias) for alias, figure in raw],
            ).where(*where)
        )
    rows = reduce(operator.add, parts).alias("rows")
    return rows, [getattr(rows.c, name) for name in names]


def _picks_keys_only(plan):
    """Whether a top page from the combination rows picks its keys alone, and reads their
    figures after (``_page_clicks``): on SQLite, whose GROUP BY sorts every row and pays for
    each figure more (0.67 s with one figure, 1.1 s with eleven, for country,os,sub1 at 1 M
    clicks). Not on PostgreSQL: its hash aggregate pays little per figure, and the second pass
    read every row again (sub1 of the US clicks at 10 M: 0.45 s picking, 0.53 s reading the
    page). Not where a key may be NULL (route, lander, offer): a row value IN finds no NULL."""
    return not is_postgres() and not any(dim in ID_DIMENSIONS for dim in plan.dims)


def _top_of_combos(plan, split):
    """The top page's SELECT over ``_combo_and_raw_rows``, and its keys; over the combination
    rows alone where the period has no raw segment (no sort of their groups either)."""
    with_figures = not _picks_keys_only(plan)
    low, high, dirty, segments = split
    if not segments:
        model = RollupCombo
        keys = [_combo_column(dim) for dim in plan.dims]
        row_figure = _row_figure(model.is_bot, {name: getattr(model, name) for name in rollups.FIGURES})
        select = _top_select(plan.query, model, keys, row_figure, with_figures)
        return select.where(*_combo_rows(plan, low, high, dirty)), keys
    rows, keys = _combo_and_raw_rows(plan, split)

    def row_figure(name, bot):
        human, robot = getattr(rows.c, name), getattr(rows.c, "bot_" + name)
        return {False: human, True: robot, None: human + robot}[bot]

    return _top_select(plan.query, rows, keys, row_figure, with_figures), keys


def _page_clicks(plan, split, picked):
    """The click figures of the keys ``picked`` (value tuples) from ``_combo_and_raw_rows``, as
    records of the keys, the bot flag and ``rollups.FIGURES``. The combination rows of each
    picked prefix of keys (all but the last) are read apart, with the last key's values picked
    with it: the picked groups' rows only, where an IN list per key read every combination of
    the page's values (country,os,sub1 at 1 M clicks: 69,000 rows against 201,000)."""
    lasts = {}
    for keys in picked:
        lasts.setdefault(keys[:-1], set()).add(keys[-1])
    narrowings = [
        {**{dim: {value} for dim, value in zip(plan.dims, prefix, strict=False)}, plan.dims[-1]: values}
        for prefix, values in lasts.items()
    ]
    rows, keys = _combo_and_raw_rows(plan, split, narrowings)
    figures = [prefix + name for prefix in ("", "bot_") for name in rollups.FIGURES]
    select = (
        Select([rows], [*keys, *[fn.SUM(getattr(rows.c, name)) for name in figures]])
        .where(Tuple(*keys).in_(ValuesList(picked)))
        .group_by(*keys)
    )
    return _flag_records(_fetch(select), len(keys))


def _top_page(query):
    """The page of a report of many rows (several dimensions, one of many values filtered on
    another, ``external_id`` or ``ip`` by a figure), ordered by a click figure: the database
    picks the page's keys (GROUP BY … ORDER BY … LIMIT) from the combination rollup and the raw
    clicks it does not hold (``_combo_split``), or from the raw clicks alone, and gives their
    click figures in the same pass (or after, for the page's keys: ``_picks_keys_only``); only
    the page's conversions are read then, and the totals come from the flows' report of the
    same period and filters. None when it does not apply."""
    if query.limit is None or query.compare or query.order not in CLICK_ORDERS:
        return None  # value order (order=key) included: _value_page answers it
    plan = _Plan(query)
    if plan.empty or plan.rollup_dimension() is not None or any(d in TIME_DIMENSIONS for d in plan.dims):
        return None
    if plan.combo_holds() and len(plan.dims) == 1:
        # at most as many rows as the dimension has values (sub1's thousands): read whole in one
        # pass, faster than picked (sub1 of the US clicks at 1 M: 0.33 s against 0.55 s)
        return None
    split = _combo_split(plan) if plan.combo_holds() else None
    if split is not None:
        top, keys = _top_of_combos(plan, split)
        scan = False
    else:
        top, keys = _top_of_raw(plan)
        scan = _scan_is_faster(plan.start, plan.end, plan.flow_ids)
    top = top.limit(query.offset + query.limit + 1)
    width = len(keys)
    records = _fetch(top, scan)[query.offset :]
    more = len(records) > query.limit
    records = records[: query.limit]
    make = _key_maker(plan)
    order = [make(record[:width]) for record in records]
    totals = _Totals(query)
    keys_only = split is not None and _picks_keys_only(plan)
    if not keys_only:
        figures = [tuple(record[:width]) + tuple(record[width + 1 :]) for record in records]
        totals.add_clicks(_flag_records(figures, width), width, make)
    if records:
        for number, dim in enumerate(plan.dims):
            values = {record[number] for record in records}
            plan.filters[dim] = plan.filters[dim] & values if dim in plan.filters else values
        _read_conversions(plan, totals)
        if keys_only:
            picked = [tuple(record[:width]) for record in records]
            totals.add_clicks(_page_clicks(plan, split, picked), width, make)
    by_keys = {row.keys: row for row in totals.rows()}
    rows = [by_keys[keys] for keys in order]
    _convert(rows, query.currency, stored_rates())
    rows = _sort(rows, query)  # ties within the page as the whole report breaks them
    flows = run_report(dataclasses.replace(query, group_by="flow", order="", limit=None, offset=0))
    next_cursor = str(query.offset + query.limit) if more else None
    return Report(rows, total(flows, query.currency), next_cursor)


def _by_value(query):
    """Whether the report is by one of ``VALUE_PAGED`` in the order of its values (``order=key``)."""
    return query.order == "key" and len(query.dimensions) == 1 and query.dimensions[0] in VALUE_PAGED


def _pick_values(plan, column, after, count):
    """The first ``count`` values of ``column`` after ``after`` (in the database's order) among
    the plan's clicks: per flow, the index (flow_id, column, created_at) walked in order until
    ``count`` values are found in the period, then the first ``count`` of all of them."""
    filters = _raw_click_filters(plan)
    parts, params = [], []
    for number, flow_id in enumerate(plan.flow_ids):
        where = [Click.flow == flow_id, *filters]
        if plan.start is not None:
            where.append(Click.created_at >= plan.start)
        if plan.end is not None:
            where.append(Click.created_at < plan.end)
        if after is not None:
            where.append(column > after)
        sql, values = Click.select(column).distinct().where(*where).order_by(column).limit(count).sql()
        if not is_postgres():
            # SQLite's planner takes (flow_id, created_at) for the period, then sorts every
            # click of it; PostgreSQL's sees the LIMIT and walks the index in order.
            index = 'INDEXED BY "click_flow_id_%s_created_at"' % column.column_name
            sql = sql.replace('FROM "click" AS "t1"', 'FROM "click" AS "t1" ' + index, 1)
        parts.append("SELECT * FROM (%s) AS f%d" % (sql, number))
        params.extend(values)
    sql = _first_of(parts, '"%s"' % column.column_name, count)
    return [value for (value,) in db.execute_sql(sql, params).fetchall()]


COMPOUND_TERMS = 400  # SQLite refuses a compound SELECT of more than 500 terms


def _first_of(parts, name, count):
    """SQL: the first ``count`` distinct values of ``name`` among the SELECTs ``parts``, in the
    database's order; in groups of at most ``COMPOUND_TERMS`` (a flow a part)."""
    size = max(2, COMPOUND_TERMS)
    if len(parts) > size:
        groups = [parts[first : first + size] for first in range(0, len(parts), size)]
        parts = [
            "SELECT * FROM (%s) AS g%d" % (_first_of(group, name, count), n) for n, group in enumerate(groups)
        ]
        return _first_of(parts, name, count)
    return "SELECT DISTINCT %s FROM (%s) AS picked ORDER BY %s LIMIT %d" % (
        name,
        " UNION ALL ".join(parts),
        name,
        count,
    )


def _value_page(query):
    """The page of a report by ``external_id`` or ``ip`` in value order (``order=key``, what the
    dashboard asks for these; the API's default stays clicks, DESIGN §4.5): the page's values are
    picked along the click index, only their clicks and conversions are read, and the totals come
    from the flows' report of the same period and filters (the flow rollup). None when it does not
    apply (another order, an offset cursor, ``basis=conversion``, where a row may have conversions
    but no click in the period)."""
    if not _by_value(query) or query.limit is None or query.offset or query.basis != "click":
        return None
    plan = _Plan(query)
    if plan.empty:
        return None
    dim = plan.dims[0]
    picked = _pick_values(plan, dimension_expression(dim), query.after, query.limit + 1)
    more = len(picked) > query.limit
    picked = picked[: query.limit]
    totals = _Totals(query)
    if picked:
        plan.filters[dim] = plan.filters[dim] & set(picked) if dim in plan.filters else set(picked)
        _read_conversions(plan, totals)
        _read_raw_clicks(plan, totals, [(plan.start, plan.end, plan.flow_ids)])
    by_keys = {row.keys: row for row in totals.rows()}
    rows = [by_keys[(value,)] for value in picked if (value,) in by_keys]
    _convert(rows, query.currency, stored_rates())
    flows = dataclasses.replace(
        query, group_by="flow", order="", limit=None, offset=0, after=None, compare=""
    )
    report = Report(
        rows, total(run_report(flows), query.currency), value_cursor(picked[-1]) if more else None
    )
    if query.compare == "previous":
        earlier = query.previous()
        page = dataclasses.replace(earlier, filters=query.filters + tuple((dim, value) for value in picked))
        before = {row.keys: row for row in run_report(page)} if picked else {}
        for row in rows:
            row.previous = before.get(row.keys) or Row(row.key, keys=row.keys, currency=query.currency)
        before_flows = dataclasses.replace(earlier, group_by="flow", order="")
        report.totals.previous = total(run_report(before_flows), query.currency)
    return report


def run_stats(query):
    """The page of ``query`` (``limit`` rows from ``offset``, or after the value the cursor
    names), the totals of every row, the cursor of the next page; with ``compare=previous``
    each row and the totals carry ``previous``."""
    page = _value_page(query)
    if page is not None:
        return page
    page = _top_page(query)
    if page is not None:
        return page
    rows = run_report(query)
    totals = total(rows, query.currency)
    if query.compare == "previous":
        before = {row.keys: row for row in run_report(query.previous())}
        for row in rows:
            row.previous = before.get(row.keys) or Row(row.key, keys=row.keys, currency=query.currency)
        totals.previous = total(before.values(), query.currency)
    if query.limit is None:
        return Report(rows[query.offset :], totals, None)
    page = rows[query.offset : query.offset + query.limit]
    more = query.offset + query.limit < len(rows)
    return Report(page, totals, str(query.offset + query.limit) if more else None)


def total(rows, currency="USD"):
    """The sum of ``rows``, as one row keyed ``None``."""
    out = Row(None, currency=currency)
    for row in rows:
        out.add(row)
    return out


# -- the dashboard's views --------------------------------------------------------------------


def chart_series(query, today):
    """Clicks and conversions over the query's dates, gaps filled with zeros:
    ``[(label, clicks, conversions), ...]``; a point per hour for a single day, per day up to
    92 days, per week (from Monday) up to two years, per month beyond, so any range is drawn
    whole."""
    single = query.date_from and query.date_from == query.date_to
    step = "hour" if single else "day"
    base = dataclasses.replace(query, group_by=step, order="", limit=None, offset=0, compare="")
    by_key = {row.key: row for row in run_report(base)}
    first = query.date_from or _first_day(by_key) or today
    last = query.date_to or today
    if step == "hour":
        labels = ["%s %02d:00" % (first.isoformat(), hour) for hour in range(24)]
        return [
            (label, _get(by_key, label, "clicks"), _get(by_key, label, "conversions")) for label in labels
        ]
    span = (last - first).days
    buckets = {}
    order = []
    for n in range(span + 1):
        day = first + datetime.timedelta(days=n)
        if span <= 92:
            label = day.isoformat()
        elif span <= 731:
            label = (day - datetime.timedelta(days=day.weekday())).isoformat()
        else:
            label = day.strftime("%Y-%m")
        if label not in buckets:
            buckets[label] = [0, 0]
            order.append(label)
        buckets[label][0] += _get(by_key, day.isoformat(), "clicks")
        buckets[label][1] += _get(by_key, day.isoformat(), "conversions")
    return [(label, buckets[label][0], buckets[label][1]) for label in order]


def _get(by_key, label, name):
    row = by_key.get(label)
    return getattr(row, name) if row is not None else 0


def _first_day(by_key):
    return datetime.date.fromisoformat(min(by_key)) if by_key else None


def flow_numbers(today, date_from=None, date_to=None, tz="UTC", currency="USD"):
    """Each flow's numbers for ``today``, yesterday and the period (default the last 7 days,
    today included): ``{flow_id: (today_row, week_row)}`` for the callers that show two, and
    ``flow_periods`` for all three."""
    periods = flow_periods(today, date_from, date_to, tz, currency)
    return {key: (rows[0], rows[2]) for key, rows in periods.items()}


def flow_periods(today, date_from=None, date_to=None, tz="UTC", currency="USD"):
    """``{flow_id: (today, yesterday, period)}`` rows for every flow with clicks in any."""
    date_from = date_from or today - datetime.timedelta(days=6)
    date_to = date_to or today
    yesterday = today - datetime.timedelta(days=1)
    ranges = [(today, today), (yesterday, yesterday), (date_from, date_to)]
    found = [
        {row.key: row for row in run_report(ReportQuery("flow", low, high, tz=tz, currency=currency))}
        for low, high in ranges
    ]
    keys = set().union(*found)
    return {
        key: tuple(rows.get(key) or Row(key, keys=(key,), currency=currency) for rows in found)
        for key in keys
    }
