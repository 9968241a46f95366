"""``GET /healthz``: 200 when the database answers, with this node's click spool depth."""

from flask import Blueprint, current_app, jsonify

from .db import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Answer 200 ``{"status": "ok", "spool_depth": n}`` when a trivial query succeeds, else
    503; ``spool_depth`` is how many clicks wait in this node's spool (DESIGN §4.8)."""
    depth = current_app.extensions["tracker.spool"].depth()
    try:
        db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:
        return jsonify(status="error", error=str(exc), spool_depth=depth), 503
    return jsonify(status="ok", spool_depth=depth)
