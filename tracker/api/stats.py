"""``GET /api/v1/stats``: the dashboard's report as JSON (the same queries, the same numbers)."""

from flask import jsonify, request

from ..reports.queries import parse_query, run_report, total
from . import bp
from .shapes import stats_row


@bp.get("/stats")
def stats():
    """Rows of ``key, clicks, unique_clicks, conversions, revenue, cost, profit, cr, epc, roi``
    for ``group_by`` (default ``day``), filtered by ``flow_id``, ``from``, ``to``, ``country``."""
    rows = run_report(parse_query(request.args))
    totals = stats_row(total(rows))
    del totals["key"]
    return jsonify(items=[stats_row(row) for row in rows], next=None, totals=totals)
