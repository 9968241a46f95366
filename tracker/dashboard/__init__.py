"""The dashboard: server-rendered pages for flows, traffic sources, reports and logs.

Every page but the login and the setup page needs a logged-in user; every form carries a
CSRF token (Flask-WTF's CSRFProtect, app-wide, with the machine-facing blueprints exempt).
Page groups live in their own route modules: ``login``, ``flows`` (and ``routes``, a flow's
routes), ``sources``, ``offers`` (offers, landers, bot lists), ``reports``, ``logs``; they
attach their routes to ``bp``. The few routes the pages' script
calls (the postback editor's preview, preset and test) take and answer JSON, and so do their
errors: a request with a JSON body gets a JSON ``{"error": …}`` back, never an HTML page.
"""

import logging

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from ..accounts import announce_setup_link
from ..enrichment.geoip import ADDS
from ..errors import NotFound, ValidationError
from ..models import User

logger = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)
csrf = CSRFProtect()

# Called by machines (ad clicks, advertisers, API clients), never from our forms.
MACHINE_BLUEPRINTS = ("clickin", "health", "api", "conversions", "metrics")
PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.setup"}
# The GeoIP kinds `tracker geoip update` installs; ISP and Connection-Type are paid extras.
GEOIP_FREE = ("City", "ASN")


@bp.before_request
def login_required():
    """Send anonymous visitors of any page but login and setup to the login page."""
    user_id = session.get("user_id")
    g.user = User.get_or_none(User.id == user_id) if user_id is not None else None
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.is_json:
            return jsonify(error="You are logged out. Reload the page and log in again."), 401
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    return None


@bp.context_processor
def _layout():
    geoip = current_app.extensions["tracker.geoip"]
    missing = geoip.missing()
    return {
        "geoip_source": geoip.source(),
        "geoip_missing": [(kind, ADDS[kind]) for kind in GEOIP_FREE if kind in missing],
        "spool_depth": current_app.extensions["tracker.spool"].depth() if g.get("user") else 0,
    }


def _error_page(code, title, message):
    """The error as JSON for the script's JSON requests, else as a page."""
    if request.is_json:
        return jsonify(error=message), code
    return render_template("error.html", code=code, title=title, message=message), code


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return _error_page(
        400,
        "The form expired",
        "This form's security token is missing or stale (%s). "
        "Go back, reload the page and send it again." % exc.description,
    )


@bp.errorhandler(ValidationError)
def _invalid(exc):
    return _error_page(exc.status, "Invalid request", exc.message)


@bp.errorhandler(NotFound)
def _not_found(exc):
    return _error_page(404, "Not found", exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return _error_page(exc.code, exc.name, exc.description)


def init_app(app):
    """Register the dashboard, its cookie and CSRF settings, and the setup-link hook.

    Call it after every other blueprint is registered: it exempts the machine-facing ones
    from CSRF by name.
    """
    from . import filters, flows, login, logs, offers, reports, routes, sources  # noqa: F401

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Flask can't mark the cookie Secure per request: an https public URL means every
    # visitor comes over HTTPS, so the cookie is Secure; otherwise it could never be sent.
    app.config["SESSION_COOKIE_SECURE"] = (app.config["TRACKER_PUBLIC_URL"] or "").startswith("https://")
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a token lives as long as the session
    app.register_blueprint(bp)
    csrf.init_app(app)
    for name in MACHINE_BLUEPRINTS:
        if name in app.blueprints:
            csrf.exempt(app.blueprints[name])
    app.extensions.setdefault("tracker.on_serve", []).append(announce_setup_link)
