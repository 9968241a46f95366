"""``GET /healthz``: 200 when the database answers."""

from flask import Blueprint, jsonify

from .db import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Answer 200 ``{"status": "ok"}`` when a trivial query succeeds, else 503."""
    try:
        db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:
        return jsonify(status="error", error=str(exc)), 503
    return jsonify(status="ok")
