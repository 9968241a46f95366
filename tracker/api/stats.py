"""``GET /api/v1/stats``: the dashboard's report as JSON (the same queries, the same numbers)."""

from flask import current_app, jsonify, request

from ..reports.queries import parse_query, run_stats
from . import bp
from .shapes import stats_row


def query_from_request(args, default_group="day"):
    """The report query of a request's arguments, in the configured zone and currency."""
    return parse_query(
        args,
        default_group=default_group,
        default_tz=current_app.config.get("TRACKER_TIMEZONE") or "UTC",
        currency=current_app.config.get("TRACKER_CURRENCY") or "USD",
    )


@bp.get("/stats")
def stats():
    """Rows by up to three ``group_by`` dimensions (default ``day``) with the figures of
    DESIGN §4.5, the totals of every row, and ``next`` when ``limit`` left rows out."""
    report = run_stats(query_from_request(request.args))
    totals = stats_row(report.totals)
    del totals["key"], totals["keys"]
    return jsonify(items=[stats_row(row) for row in report.items], next=report.next, totals=totals)
