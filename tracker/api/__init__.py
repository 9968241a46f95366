"""The management API, ``/api/v1/…``: JSON in and out, bearer-token auth.

Each resource lives in its own module and registers its routes on ``bp``.
"""
from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..auth import check_api_token
from ..db import keyset_page
from ..flows import ValidationError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Routes that authenticate on their own terms (the event API uses the postback rules).
PUBLIC_ENDPOINTS = {"inbound.events"}


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and check_api_token(token.strip(), current_app.config["TRACKER_API_TOKEN"]):
        return None
    return jsonify(error="a valid 'Authorization: Bearer <token>' header is required"), 401


@bp.errorhandler(ValidationError)
def _invalid(exc):
    return jsonify(error=exc.message), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return jsonify(error=exc.description or exc.name), exc.code


def found_or_404(model, *conditions, what):
    """The one row of ``model`` matching ``conditions``, or a JSON 404 ``"<what> not found"``."""
    row = model.get_or_none(*conditions)
    if row is None:
        abort(404, "%s not found" % what)
    return row


def json_body():
    """The request's JSON object, or a 400 ValidationError naming what is wrong."""
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationError("the body must be JSON (Content-Type: application/json)", 400)
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    return data


def int_arg(name, default=None, minimum=1, maximum=None):
    """A whole-number query parameter, or a 400 naming it."""
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationError("%s must be a whole number" % name, 400)
    if number < minimum or (maximum is not None and number > maximum):
        raise ValidationError("%s must be between %s and %s" % (name, minimum, maximum), 400)
    return number


def bool_arg(name):
    """``true/false/1/0`` query parameter as a bool, None when absent."""
    value = request.args.get(name)
    if value in (None, ""):
        return None
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValidationError("%s must be true or false" % name, 400)


def page(query, key_field, to_dict, cursor_type=int):
    """Answer ``{"items": [...], "next": cursor}``, newest first, keyed on ``key_field``."""
    limit = int_arg("limit", 50, 1, 500)
    cursor = request.args.get("cursor") or None
    if cursor is not None:
        try:
            cursor = cursor_type(cursor)
        except ValueError:
            raise ValidationError("cursor is not valid", 400)
    rows, next_cursor = keyset_page(query, key_field, cursor, limit)
    return jsonify(items=[to_dict(row) for row in rows], next=next_cursor)


def base_url():
    """The public URL of this tracker: ``TRACKER_PUBLIC_URL`` or the request's host."""
    return current_app.config["TRACKER_PUBLIC_URL"] or request.host_url


def init_app(app):
    """Load every resource module (their routes attach to ``bp``) and register the blueprint."""
    from . import clicks, conversions, deliveries, flows, postbacks, stats  # noqa: F401
    app.register_blueprint(bp)
