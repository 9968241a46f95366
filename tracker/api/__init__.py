"""Stage ⑤, the management API, ``/api/v1/…``: JSON in and out, bearer-token auth.

Each resource lives in its own module and registers its routes on ``bp``; ``shapes`` turns
every object into its JSON form.
"""

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..accounts import check_api_token, token_may_reveal
from ..db import keyset_page
from ..errors import NotFound, ValidationError
from ..web import MAX_ID, bearer_token, int_arg, text_arg

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate():
    g.reveal = False
    if request.endpoint == "api.openapi":  # the description is public: it names routes, not data
        return None
    token, configured = bearer_token(), current_app.config["TRACKER_API_TOKEN"]
    if not check_api_token(token, configured):
        return jsonify(error="a valid 'Authorization: Bearer <token>' header is required"), 401
    if request.args.get("reveal") in ("1", "true"):
        if not token_may_reveal(token, configured):
            return jsonify(
                error="this token may not reveal secrets: use TRACKER_API_TOKEN or a token made "
                "with 'tracker token create NAME --reveal'"
            ), 403
        g.reveal = True
    return None


@bp.errorhandler(ValidationError)
@bp.errorhandler(NotFound)
def _refused(exc):
    return jsonify(error=exc.message), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return jsonify(error=exc.description or exc.name), exc.code


def page(query, key_field, to_dict, cursor_type=int):
    """Answer ``{"items": [...], "next": cursor}``, newest first, keyed on ``key_field``."""
    limit = int_arg("limit", 50, 1, 500)
    cursor = text_arg("cursor") or None
    if cursor is not None:
        try:
            cursor = cursor_type(cursor)
        except ValueError:
            raise ValidationError("cursor is not valid", 400) from None
        if cursor_type is int and not 0 < cursor <= MAX_ID:  # no database column holds it
            raise ValidationError("cursor is not valid: ids run from 1 to %d" % MAX_ID, 400)
    rows, next_cursor = keyset_page(query, key_field, cursor, limit)
    return jsonify(items=[to_dict(row) for row in rows], next=next_cursor)


def init_app(app):
    """Load every resource module (their routes attach to ``bp``) and register the blueprint."""
    from . import clicks, conversions, costs, deliveries, flows, offers, openapi, postbacks, stats  # noqa: F401

    app.register_blueprint(bp)
