"""The edge of the click-in, ``GET /r/<key>`` and the lander's ``GET /click``: the request
becomes a ``Visitor`` here (the only code of the stage that reads it), then is recorded and
redirected.

Clicks are the hot path. ``ClickFastPath`` answers them straight from WSGI, before Flask's
request machinery (request and app contexts, session, URL map, hooks), which costs as much
as the click's own work; every other request, and the Flask route below (same function),
go through Flask as usual.
"""

import logging
import re
from urllib.parse import quote

import flask
from flask import Blueprint
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Request

from .. import db
from ..models import utcnow
from ..operations.metrics import CLICK_FAILED, CLICK_ORPHAN, CLICK_RECORDED, CLICK_SPOOLED
from ..web import client_ip
from .record import (
    capture,
    find_lander_click,
    new_click_id,
    record_click,
    record_lander_click,
    record_orphan,
    unique_window,
    writes_behind,
)
from .routing import choose_lander_offer, destination_url, route_click, target_url
from .spool import may_be_spooled
from .visitor import make_visitor

logger = logging.getLogger(__name__)

bp = Blueprint("clickin", __name__)
PREFIX = "/r/"


def visitor_from_request(request, trusted_proxies):
    """The request as a plain ``Visitor`` (the only place the click path reads the request)."""
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For", ""), trusted_proxies)
    return make_visitor(
        ip=ip,
        user_agent=request.headers.get("User-Agent", ""),
        referrer=request.headers.get("Referer", ""),
        accept_language=request.headers.get("Accept-Language", ""),
        params=request.args.items(multi=True),
        cookies=cookies_of(request),
    )


def cookies_of(request):
    """The request's cookies as a plain dict (a miss on werkzeug's MultiDict raises inside
    ``.get``); most clicks carry none, so the parse is skipped then."""
    return request.cookies.to_dict() if "HTTP_COOKIE" in request.environ else {}


# A URL that is already a plain URI: lowercase ASCII host, no user info, a port without
# leading zeros, a non-empty query if any, no fragment, only characters that iri_to_uri
# leaves as they are (tests check that it returns these unchanged).
PLAIN_URI = re.compile(
    r"https?://[a-z0-9.-]+(?::[1-9][0-9]{0,4})?"
    r"(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*)?"
    r"(?:\?[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]+)?"
)


def as_uri(url):
    """``url`` fit for a Location header: werkzeug's ``iri_to_uri`` (punycode host, percent-
    encoded path and query), skipped for the usual offer URL that already is a plain URI."""
    if PLAIN_URI.fullmatch(url):
        return url
    try:
        return iri_to_uri(url)
    except ValueError:  # a port out of range, an empty host label: still send the visitor on
        return quote(url, safe="%!#$&'()*+,/:;=?@[]~")


class Redirect:
    """A bare 302 to ``url`` that no browser or proxy caches (a cached redirect is a lost
    click), as a plain WSGI response: the headers werkzeug's Response sends for it, at a
    fifth of its cost (it was a fifth of a click's time). ``cookie``: a Set-Cookie value."""

    def __init__(self, url, cookie=None):
        self.location = as_uri(url)
        self.cookie = cookie

    def __call__(self, environ, start_response):
        headers = [
            ("Location", self.location),
            ("Cache-Control", "no-store"),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "0"),
        ]
        if self.cookie:
            headers.append(("Set-Cookie", self.cookie))
        start_response("302 FOUND", headers)
        return [b""]


def tid_cookie(click, flow, secure):
    """The first-party ``tid`` cookie (DESIGN §4.1) that lets a lander's plain ``/click``
    link find its click, for the flow's unique window."""
    seconds = int(unique_window(flow).total_seconds())
    cookie = "tid=%s; Max-Age=%d; Path=/; HttpOnly; SameSite=Lax" % (click.click_id, seconds)
    return cookie + "; Secure" if secure else cookie


PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def public_url(config, request):
    """The tracker's base URL, for ``{click_url}``: ``TRACKER_PUBLIC_URL``, or the request's
    (read from the environ when the Host is plain: werkzeug's ``host_url`` costs 40 µs)."""
    if config["TRACKER_PUBLIC_URL"]:
        return config["TRACKER_PUBLIC_URL"]
    environ = request.environ
    host = environ.get("HTTP_HOST", "")
    if not PLAIN_HOST.fullmatch(host):
        return request.host_url
    return "%s://%s%s/" % (environ.get("wsgi.url_scheme", "http"), host, environ.get("SCRIPT_NAME", ""))


def not_found(app, error, **fields):
    """A JSON 404 (a plain WSGI response, as the fast path answers)."""
    response = app.json.response(error=error, **fields)
    response.status_code = 404
    return response


def answer_click(app, request, key):
    """Record the click on ``key`` and send the visitor to the offer; HEAD answers without
    recording. An unknown or paused key is an orphan visit: 404, or 302 to a fallback."""
    ext, config = app.extensions, app.config
    visitor = visitor_from_request(request, config["TRACKER_TRUSTED_PROXIES"])
    flow = ext["tracker.flows"].get(key)
    if flow is None or flow.paused:
        reason = "paused" if flow is not None else "unknown"
        if request.method == "GET":
            CLICK_ORPHAN.inc()
            try:
                record_orphan(key, visitor, reason)
            except Exception:
                logger.exception("could not record an orphan visit to %r", key)
        fallback = (flow.fallback_url if flow is not None else "") or config["TRACKER_FALLBACK_URL"]
        if fallback:
            return Redirect(fallback)
        return not_found(app, "no active flow with this key", reason=reason)
    base = public_url(config, request)
    enrich = {
        "geoip": ext["tracker.geoip"],
        "parse_user_agent": ext["tracker.parse_user_agent"],
        "bots": ext["tracker.flows"].bot_lists(),
    }
    if request.method == "HEAD":
        url = unrecorded_url(flow, capture(flow, visitor, new_click_id(), utcnow(), **enrich), base)
        return Redirect(url) if url else not_found(app, "no offer for this click")
    spool = ext["tracker.spool"]
    bypass = bool(spool.bypassing())  # decided once: the timeouts below are set only without it
    if not bypass and not writes_behind(spool, flow):
        try:
            db.click_timeouts(config["TRACKER_CLICK_BUSY_MS"])
        except Exception as exc:  # the database is away: the click goes to the spool below
            logger.warning("no database connection for a click: %s", str(exc).strip()[:300])
    try:
        click, url = record_click(flow, visitor, public_url=base, spool=spool, bypass=bypass, **enrich)
        (CLICK_SPOOLED if getattr(click, "spooled", False) else CLICK_RECORDED).inc()
    except Exception as exc:
        CLICK_FAILED.inc()
        # The visitor still reaches the offer; the failure is in the log with the whole visitor.
        logger.error("could not record or spool a click on flow %s: %s; %r", flow.id, exc, visitor)
        click = capture(flow, visitor, new_click_id(), utcnow(), **enrich)
        url = unrecorded_url(flow, click, base)
    if url is None:
        return not_found(app, "no offer for this click")  # a not_found route: recorded, and away
    return Redirect(url, tid_cookie(click, flow, base.startswith("https://")))


def unrecorded_url(flow, click, base):
    """Where a click that is not recorded (HEAD, a failed write) goes, routed as it would be."""
    return destination_url(flow, click, route_click(flow, click), base)


def offer_position(text):
    """``/click/<n>``'s n as a number (None when it is none: the click's own offer then)."""
    if text and len(text) <= 6 and text.isascii() and text.isdigit():
        return int(text)
    return None


@bp.route("/click", methods=["GET"])
@bp.route("/click/<path:position>", methods=["GET"])
def lander_click(position=None):
    """``GET /click`` (``click_id=`` or the ``tid`` cookie), ``/click/<n>``: from a lander on
    to the offer (the route's n-th, 1-based), the lander click noted once (DESIGN §4.7)."""
    app, request = flask.current_app, flask.request
    click_id = request.args.get("click_id") or request.cookies.get("tid") or ""
    click = find_lander_click(click_id)
    flow = app.extensions["tracker.flows"].get(click.flow.key) if click is not None else None
    if click is None and may_be_spooled(click_id):
        response = app.json.response(
            error="this click is not written yet (it may wait in the click spool): retry"
        )
        response.status_code, response.headers["Retry-After"] = 503, "1"
        return response
    if flow is None:
        visitor = visitor_from_request(request, app.config["TRACKER_TRUSTED_PROXIES"])
        if request.method == "GET":
            CLICK_ORPHAN.inc()
            try:
                record_orphan(click_id, visitor, "unknown click")
            except Exception:
                logger.exception("could not record an orphan visit to /click for %r", click_id[:40])
        fallback = app.config["TRACKER_FALLBACK_URL"]
        return Redirect(fallback) if fallback else not_found(app, "no click with this click_id")
    offer = choose_lander_offer(flow, click, offer_position(position))
    if request.method == "GET":
        record_lander_click(click)
    url = target_url(flow, click, offer, public_url(app.config, request))
    return Redirect(url) if url else not_found(app, "no offer for this click")


@bp.route(PREFIX + "<path:key>", methods=["GET", "HEAD"])
def click(key):
    """The click-in as a Flask route: ``url_for`` and Flask's 405 for other methods know it;
    ClickFastPath answers its GETs and HEADs before Flask sees them."""
    return answer_click(flask.current_app, flask.request, key)


class ClickFastPath:
    """WSGI middleware answering ``GET|HEAD /r/<key>`` with ``answer_click`` directly.

    Flask's before/after/teardown hooks do not run for these requests: the database
    connection is opened and released here, as ``db.init_app``'s hooks do.
    """

    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or not environ.get(
            "PATH_INFO", ""
        ).startswith(PREFIX):
            return self.wsgi_app(environ, start_response)
        request = Request(environ)
        key = request.path[len(PREFIX) :]
        if not key:
            return self.wsgi_app(environ, start_response)
        spool = self.app.extensions["tracker.spool"]
        if not (spool.bypassing() or spool.batch_ms):  # a write-behind click connects if it must
            try:
                db.open_connection()
            except Exception as exc:  # PostgreSQL away: the flow cache and the spool still answer
                logger.warning("no database connection for a click: %s", str(exc).strip()[:300])
        try:
            response = answer_click(self.app, request, key)
        except Exception:
            logger.exception("click on %r failed", key)
            response = self.app.json.response(error="internal error")
            response.status_code = 500
        finally:
            db.release_connection()
        return response(environ, start_response)
