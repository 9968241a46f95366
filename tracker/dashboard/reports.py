"""The reports page (a table, a chart, filters) and its CSV export; the same queries as
``GET /api/v1/stats``."""
import datetime

from flask import Response, render_template, request

from ..flows import ValidationError
from ..models import Flow, utcnow
from ..reports import DIMENSIONS, chart_series, parse_query, rows_to_csv, run_report, total
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


@bp.get("/reports")
def reports():
    today = utcnow().date()
    args = _query_args(today)
    flows = _flow_names()
    try:
        query = parse_query(args)
    except ValidationError as exc:
        return render_template("reports.html", error=exc.message, args=args, flows=flows,
                               dimensions=DIMENSIONS, rows=[], total=None, chart=None), 400
    rows = run_report(query)
    chart = chart_geometry(chart_series(query, today)) if rows else None
    return render_template("reports.html", args=args, query=query, flows=flows, dimensions=DIMENSIONS,
                           rows=rows, total=total(rows), chart=chart, error=None)


@bp.get("/reports.csv")
def reports_csv():
    query = parse_query(_query_args(utcnow().date()))
    flows = _flow_names()
    label = (lambda key: flows.get(key, key)) if query.group_by == "flow" else str
    name = "report-%s-%s-%s.csv" % (query.group_by, query.date_from or "start", query.date_to or "now")
    return Response(rows_to_csv(run_report(query), label), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="%s"' % name})
