"""The reports page (a table, a chart, filters) and its CSV export; the same queries as
``GET /api/v1/stats``."""

import csv
import datetime
import io

from flask import Response, render_template, request

from ..api.shapes import stats_row
from ..errors import ValidationError
from ..models import Flow, Lander, Offer, Route, utcnow
from ..reports.queries import DIMENSIONS, METRICS, chart_series, parse_query, run_report, total
from ..web import url_with_query
from . import bp
from .chart import chart_geometry


def _query_args(today):
    """The request's filters, with the last 7 days when no dates are given."""
    args = request.args.to_dict()
    if not args.get("from") and not args.get("to"):
        args["from"] = (today - datetime.timedelta(days=6)).isoformat()
        args["to"] = today.isoformat()
    return args


def _flow_names():
    return dict(Flow.select(Flow.id, Flow.name).tuples())


NAMED = {"flow": Flow, "route": Route, "lander": Lander, "offer": Offer}


def _key_names(group_by):
    """``{id: name}`` for a dimension whose keys are ids (flow, route, lander, offer)."""
    model = NAMED.get(group_by)
    return dict(model.select(model.id, model.name).tuples()) if model is not None else {}


@bp.get("/reports")
def reports():
    today = utcnow().date()
    args = _query_args(today)
    flows = _flow_names()
    try:
        query = parse_query(args)
    except ValidationError as exc:
        return render_template(
            "reports.html",
            error=exc.message,
            args=args,
            csv_url=url_with_query("dashboard.reports_csv", args),
            flows=flows,
            dimensions=DIMENSIONS,
            rows=[],
            total=None,
            chart=None,
            names={},
        ), 400
    rows = run_report(query)
    chart = chart_geometry(chart_series(query, today)) if rows else None
    return render_template(
        "reports.html",
        args=args,
        csv_url=url_with_query("dashboard.reports_csv", args),
        query=query,
        flows=flows,
        dimensions=DIMENSIONS,
        rows=rows,
        total=total(rows),
        chart=chart,
        error=None,
        names=_key_names(query.group_by),
    )


@bp.get("/reports.csv")
def reports_csv():
    query = parse_query(_query_args(utcnow().date()))
    names = _key_names(query.group_by)
    label = (lambda key: names.get(key, key)) if query.group_by in NAMED else str
    name = "report-%s-%s-%s.csv" % (query.group_by, query.date_from or "start", query.date_to or "now")
    return Response(
        rows_to_csv(run_report(query), label),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="%s"' % name},
    )


def rows_to_csv(rows, label=str):
    """The report as CSV text: a header, a line per row, then the total; ``label(key)``
    turns a key into its cell (a flow id into its name)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key"] + METRICS)
    for number, row in enumerate(rows + [total(rows)]):
        data = stats_row(row)
        key = "total" if number == len(rows) else ("" if row.key is None else label(row.key))
        writer.writerow([_csv_cell(key)] + ["" if data[m] is None else data[m] for m in METRICS])
    return out.getvalue()


def _csv_cell(value):
    """Neutralise spreadsheet formulas in user-controlled values (sub ids, UTMs)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
