"""The click-in route, ``GET /r/<key>``: turn the request into a Visitor, record, redirect."""
import logging

from flask import Blueprint, Response, current_app, jsonify, request

from .clicks import capture, make_visitor, new_click_id, offer_url, record_click, record_orphan
from .clientip import client_ip
from .models import utcnow

logger = logging.getLogger(__name__)

bp = Blueprint("clickin", __name__)


def visitor_from_request():
    """The request as a plain ``Visitor`` (the only place the click path reads flask.request)."""
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For", ""),
                   current_app.config["TRACKER_TRUSTED_PROXIES"])
    return make_visitor(ip=ip,
                        user_agent=request.headers.get("User-Agent", ""),
                        referrer=request.headers.get("Referer", ""),
                        accept_language=request.headers.get("Accept-Language", ""),
                        params=request.args.items(multi=True),
                        cookies=request.cookies.to_dict())  # a miss on a MultiDict raises inside


def redirect_to(url):
    """A bare 302 that no browser or proxy caches (a cached redirect is a lost click)."""
    return Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})


@bp.route("/r/<path:key>", methods=["GET", "HEAD"])
def click(key):
    """Record the click and send the visitor to the offer; HEAD answers without recording."""
    ext = current_app.extensions
    visitor = visitor_from_request()
    flow = ext["tracker.flows"].get(key)
    if flow is None or flow.paused:
        reason = "paused" if flow is not None else "unknown"
        if request.method == "GET":
            try:
                record_orphan(key, visitor, reason)
            except Exception:
                logger.exception("could not record an orphan visit to %r", key)
        fallback = (flow.fallback_url if flow is not None else "") or current_app.config["TRACKER_FALLBACK_URL"]
        if fallback:
            return redirect_to(fallback)
        return jsonify(error="no active flow with this key", reason=reason), 404
    if request.method == "HEAD":
        return redirect_to(offer_url(flow, capture(flow, visitor, new_click_id(), utcnow())))
    try:
        _, url = record_click(flow, visitor, geoip=ext["tracker.geoip"],
                              parse_user_agent=ext["tracker.parse_user_agent"])
    except Exception:
        # The visitor still reaches the offer; the failure is in the log with the whole visitor.
        logger.exception("could not record a click on flow %s: %r", flow.id, visitor)
        url = offer_url(flow, capture(flow, visitor, new_click_id(), utcnow()))
    return redirect_to(url)
