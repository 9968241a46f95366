"""The reports page (date presets, time zone, three levels of drill-down, comparison, paging,
totals, a chart) and the CSV of exactly what it shows; the same queries as ``GET /api/v1/stats``.

The levels are ``group_by`` (``country,os,sub1``); a drilled level is a filter
(``f.country=US``), so the page shows the first level not yet drilled, and each row links one
level deeper. A cost update form spreads a period's spend over the flow's clicks
(``POST /reports/costs``, the dashboard's ``POST /api/v1/costs``)."""

import calendar
import csv
import datetime
import io
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from ..api.shapes import stats_row
from ..config import time_zone
from ..errors import NotFound, ValidationError
from ..models import Flow, Lander, Offer, Route
from ..money import money_text
from ..reports.costs import clean_cost, spread_cost
from ..reports.queries import (
    DIMENSIONS,
    METRICS,
    TIME_DIMENSIONS,
    VALUE_PAGED,
    chart_series,
    parse_query,
    run_stats,
)
from . import bp
from .chart import chart_geometry

PRESETS = [
    ("today", "Today"),
    ("yesterday", "Yesterday"),
    ("last7", "Last 7 days"),
    ("last30", "Last 30 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom"),
]
PAGE_SIZES = (25, 50, 100, 500)
NAMED = {"flow": Flow, "route": Route, "lander": Lander, "offer": Offer}
ZONES = [
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
]


def preset_dates(preset, today):
    """``(from, to)`` of a date preset, in the report's zone."""
    if preset == "today":
        return today, today
    if preset == "yesterday":
        day = today - datetime.timedelta(days=1)
        return day, day
    if preset == "last30":
        return today - datetime.timedelta(days=29), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - datetime.timedelta(days=1)
        return last.replace(day=1), last.replace(day=calendar.monthrange(last.year, last.month)[1])
    return today - datetime.timedelta(days=6), today  # last7, the default


def _zone_name(args):
    name = (args.get("tz") or current_app.config.get("TRACKER_TIMEZONE") or "UTC").strip()
    try:
        time_zone(name)
    except ValueError:
        return None
    return name


def _page_args():
    """The request's arguments with the preset's dates, the levels, the page size."""
    args = MultiDict(request.args)
    zone = _zone_name(args)
    today = datetime.datetime.now(ZoneInfo(zone or "UTC")).date()
    preset = args.get("preset") or ("custom" if args.get("from") or args.get("to") else "last7")
    if preset != "custom":
        low, high = preset_dates(preset, today)
        args["from"], args["to"] = low.isoformat(), high.isoformat()
    args["preset"] = preset
    levels = [args.get(name, "") for name in ("g1", "g2", "g3")]
    if any(levels):
        args["group_by"] = ",".join(level for level in levels if level)
    args["group_by"] = args.get("group_by") or "day"
    if not args.get("limit"):
        args["limit"] = "50"
    return args, today


def _level(query):
    """The level shown: the first dimension of ``group_by`` not drilled into."""
    drilled = {name for name, _ in query.filters}
    for depth, dim in enumerate(query.dimensions):
        if dim not in drilled:
            return depth, dim
    return len(query.dimensions) - 1, query.dimensions[-1]


def _key_names(dimension):
    model = NAMED.get(dimension)
    return dict(model.select(model.id, model.name).tuples()) if model is not None else {}


def _report(args):
    """``(query of the shown level, report, level, dimension)`` for page and CSV alike."""
    config = current_app.config
    full = parse_query(args, default_tz=config["TRACKER_TIMEZONE"], currency=config["TRACKER_CURRENCY"])
    depth, dimension = _level(full)
    shown = MultiDict(args)
    shown["group_by"] = dimension
    if dimension in VALUE_PAGED and not shown.get("order"):
        shown["order"] = "key"  # about a value per click: pages along an index, at any size
    query = parse_query(shown, default_tz=config["TRACKER_TIMEZONE"], currency=config["TRACKER_CURRENCY"])
    return full, query, run_stats(query), depth, dimension


def _url(args, **changes):
    merged = MultiDict(args)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return url_for("dashboard.reports") + "?" + urlencode(list(merged.items(multi=True)))


@bp.get("/reports")
def reports():
    args, today = _page_args()
    flows = {
        flow_id: name + (" (deleted, #%d)" % flow_id if deleted else "")
        for flow_id, name, deleted in Flow.select(Flow.id, Flow.name, Flow.deleted).tuples()
    }
    context = {
        "args": args,
        "flows": flows,
        "dimensions": DIMENSIONS,
        "presets": PRESETS,
        "page_sizes": PAGE_SIZES,
        "zones": ZONES,
        "metrics": METRICS,
        "currency": current_app.config["TRACKER_CURRENCY"],
        "default_zone": current_app.config["TRACKER_TIMEZONE"],
    }
    try:
        full, query, report, depth, dimension = _report(args)
    except ValidationError as exc:
        return render_template("reports.html", error=exc.message, report=None, **context), 400
    drilled = [(name, value) for name, value in full.filters if name in full.dimensions]
    crumbs = [("All", _url(args, **{"f." + name: None for name, _ in drilled}, cursor=None))]
    for number, (name, value) in enumerate(drilled):
        later = {"f." + later_name: None for later_name, _ in drilled[number + 1 :]}
        crumbs.append(("%s: %s" % (name, value), _url(args, cursor=None, **later)))
    deeper = depth + 1 < len(full.dimensions) and dimension not in TIME_DIMENSIONS
    names = _key_names(dimension)
    rows = report.items
    chart = chart_geometry(chart_series(query, today)) if report.totals.clicks or rows else None
    return render_template(
        "reports.html",
        error=None,
        query=query,
        full=full,
        report=report,
        rows=rows,
        dimension=dimension,
        names=names,
        crumbs=crumbs,
        drill=(lambda key: _url(args, cursor=None, **{"f." + dimension: "" if key is None else str(key)}))
        if deeper
        else None,
        next_url=_url(args, cursor=report.next) if report.next else None,
        first_url=_url(args, cursor=None) if query.offset or query.after is not None else None,
        csv_url=url_for("dashboard.reports_csv") + "?" + urlencode(list(args.items(multi=True))),
        chart=chart,
        zone=query.tz,
        **context,
    )


@bp.get("/reports.csv")
def reports_csv():
    """The rows the page shows (the same level, filters, page), the totals, in CSV."""
    args, _ = _page_args()
    full, query, report, _, dimension = _report(args)
    names = _key_names(dimension)
    label = (lambda key: names.get(key, key)) if dimension in NAMED else str
    name = "report-%s-%s-%s.csv" % (dimension, query.date_from or "start", query.date_to or "now")
    return Response(
        rows_to_csv(report.items, label, report.totals, compare=bool(query.compare)),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="%s"' % name},
    )


def rows_to_csv(rows, label=str, totals=None, compare=False):
    """The report as CSV text: a header, a line per row, then the total; ``label(key)``
    turns a key into its cell (a flow id into its name). With ``compare``, each figure is
    followed by the previous period's."""
    from ..reports.queries import total

    totals = totals if totals is not None else total(rows, rows[0].currency if rows else "USD")
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["key"]
    for metric in METRICS:
        header += [metric, "previous " + metric] if compare else [metric]
    writer.writerow(header + ["currency"])
    for number, row in enumerate(list(rows) + [totals]):
        data = stats_row(row)
        last = number == len(rows)
        key = "total" if last else ("" if row.key is None else label(row.key))
        cells = [_csv_cell(key)]
        for metric in METRICS:
            cells.append("" if data[metric] is None else data[metric])
            if compare:
                previous = (data.get("previous") or {}).get(metric)
                cells.append("" if previous is None else previous)
        writer.writerow(cells + [data["currency"]])
    return out.getvalue()


def _csv_cell(value):
    """Neutralise spreadsheet formulas in user-controlled values (sub ids, UTMs)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.post("/reports/costs")
def update_costs():
    """The dashboard's cost update: ``POST /api/v1/costs`` from a form."""
    config = current_app.config
    form = request.form
    data = {
        "flow_id": form.get("flow_id", ""),
        "from": form.get("from", ""),
        "to": form.get("to", ""),
        "amount": form.get("amount", ""),
        "currency": form.get("currency") or config["TRACKER_CURRENCY"],
        "tz": form.get("tz") or config["TRACKER_TIMEZONE"],
    }
    if form.get("filter_name") and form.get("filter_value"):
        data["filter"] = {form["filter_name"]: form["filter_value"]}
    back = form.get("back") or url_for("dashboard.reports")
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("dashboard.reports")
    try:
        cleaned = clean_cost(data, config["TRACKER_CURRENCY"], config["TRACKER_TIMEZONE"])
        clicks, amount = spread_cost(cleaned, config["TRACKER_CURRENCY"])
    except (ValidationError, NotFound) as exc:
        flash("Cost not updated: %s" % exc.message, "error")
        return redirect(back)
    flash(
        "Cost updated: %s %s spread over %d clicks."
        % (money_text(amount), config["TRACKER_CURRENCY"], clicks),
        "ok",
    )
    return redirect(back)
