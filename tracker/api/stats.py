"""``GET /api/v1/stats``: the dashboard's report as JSON (the same queries, the same numbers)."""
from flask import jsonify, request

from ..reports import parse_query, row_to_dict, run_report, total
from . import bp


@bp.get("/stats")
def stats():
    """Rows of ``key, clicks, unique_clicks, conversions, revenue, cost, profit, cr, epc, roi``
    for ``group_by`` (default ``day``), filtered by ``flow_id``, ``from``, ``to``, ``country``."""
    rows = run_report(parse_query(request.args))
    totals = row_to_dict(total(rows))
    del totals["key"]
    return jsonify(items=[row_to_dict(row) for row in rows], next=None, totals=totals)
