"""The edge of the conversions stage: ``GET|POST /postback`` and ``POST /api/v1/events``.

Each turns the request into a plain ``Inbound`` value and hands it to
``record.record_conversion``; what comes back is the answer.
"""

import json
import logging

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..operations.metrics import count_conversion
from ..web import MAX_JSON_DEPTH, json_depth, request_ip
from .claims import make_inbound, rules_from_config
from .record import record_conversion

logger = logging.getLogger(__name__)

bp = Blueprint("conversions", __name__)

MAX_BODY = 1024 * 1024
MAX_DEPTH = 5


@bp.record_once
def _load_rules(state):
    # Parsed once at start-up, so a bad TRACKER_POSTBACK_ALLOWED_IPS stops the app at once.
    state.app.extensions["tracker.sender_rules"] = rules_from_config(state.app.config)


RECORDING_METHODS = {"postback": ("GET", "POST"), "events": ("POST",)}
PATHS = {"/postback": "postback", "/api/v1/events": "events"}


@bp.route("/postback", methods=["GET", "POST"], provide_automatic_options=False)
def postback():
    """The advertiser's S2S postback (DESIGN §4.2)."""
    return answer("postback")


@bp.post("/api/v1/events", provide_automatic_options=False)
def events():
    """The event API (DESIGN §4.3): JSON or form body."""
    return answer("events")


@bp.app_errorhandler(MethodNotAllowed)
def _wrong_method(exc):
    """Any other method on ``/postback`` or ``/api/v1/events`` (PUT, DELETE, OPTIONS, GET on
    events, …) is answered 405 with its reason and still leaves its inbound row (DESIGN §4.8)."""
    endpoint = PATHS.get(request.path)
    if endpoint is None:
        return jsonify(error=exc.description or exc.name), 405, {"Allow": ", ".join(exc.valid_methods or ())}
    return answer(endpoint)


def answer(endpoint):
    """Record what the request claims and answer with the outcome as JSON."""
    pairs, body_error = request_pairs(RECORDING_METHODS[endpoint])
    inbound = make_inbound(endpoint, request.method, request_ip(), pairs, body_error)
    outcome = record_conversion(inbound, current_app.extensions["tracker.sender_rules"])
    count_conversion(endpoint, outcome.status)
    response = jsonify(outcome.to_json())
    if outcome.http_status == 405:
        response.headers["Allow"] = ", ".join(RECORDING_METHODS[endpoint])
    return response, outcome.http_status


def request_pairs(methods=("GET", "POST")):
    """The query's and the body's ``(name, value)`` pairs, and ``(status, reason)`` when the
    request is refused before it is read: a method other than ``methods`` (405), or a body
    that could not be read (it is refused and logged, with what the query said)."""
    pairs = list(request.args.items(multi=True))
    if request.method not in methods:  # HEAD: a link checker's probe must not count as a conversion
        return pairs, (
            405,
            "%s records nothing: send the %s with %s"
            % (request.method, "postback" if "GET" in methods else "event", " or ".join(methods)),
        )
    if request.method != "POST":
        return pairs, ()
    if (request.content_length or 0) > MAX_BODY:
        return pairs, (413, "the body is larger than %d bytes" % MAX_BODY)
    try:
        if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
            return pairs + json_pairs(request.stream.read(MAX_BODY + 1)), ()
        return pairs + list(request.form.items(multi=True)), ()
    except BodyError as exc:
        return pairs, (400, str(exc))
    except HTTPException as exc:
        return pairs, (exc.code or 400, "the body could not be read: %s" % (exc.description or exc.name))


TOO_DEEP = "the JSON body is nested deeper than %d levels" % MAX_JSON_DEPTH


class BodyError(Exception):
    """A JSON body we cannot read."""


def json_pairs(raw):
    """A JSON object body as ``(name, text)`` pairs; numbers keep their exact text, nested
    objects become dotted names (``address.city``), lists stay JSON text."""
    if len(raw) > MAX_BODY:
        raise BodyError("the body is larger than %d bytes" % MAX_BODY)
    try:
        data = json.loads(raw.decode("utf-8", "replace"), parse_float=str, parse_int=str, parse_constant=str)
    except RecursionError:
        raise BodyError(TOO_DEEP) from None
    except ValueError:
        raise BodyError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BodyError("the body must be a JSON object")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise BodyError(TOO_DEEP)
    return list(flatten(data))


def flatten(data, prefix="", depth=0):
    """Yield ``(dotted name, text)`` for every scalar of a JSON object; None is skipped."""
    for name, value in data.items():
        key = prefix + str(name)
        if isinstance(value, dict) and depth < MAX_DEPTH:
            yield from flatten(value, key + ".", depth + 1)
        elif isinstance(value, bool):
            yield key, "true" if value else "false"
        elif isinstance(value, (dict, list)):
            yield key, json.dumps(value, ensure_ascii=False)
        elif value is not None:
            yield key, str(value)
