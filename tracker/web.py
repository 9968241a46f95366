"""What every door reads from a request the same way: the client's IP behind trusted
proxies, a JSON body, whole-number and yes/no query arguments, the public URL, and the
server-side session that costs nothing on requests without its cookie."""

import datetime
import ipaddress
from urllib.parse import urlencode

from flask import current_app, request, url_for
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import NotFound

from . import accounts
from .errors import ValidationError
from .models import utcnow

MAX_ID = 2**63 - 1  # the largest id a database column holds


def refuse_impossible_ids(endpoint, values):
    """A URL value preprocessor: an id beyond what a database column holds, or holding a NUL
    character, is no id (404), before the database, which refuses it, is asked (a 500)."""
    for value in (values or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound("no such id: %d is beyond 64 bits" % value)
        if isinstance(value, str) and "\x00" in value:
            raise NotFound("no such id: it holds a NUL character")


def text_arg(name):
    """A text query parameter, None when absent; a 400 when it holds a NUL character (no
    database column can hold one)."""
    value = request.args.get(name)
    if value is not None and "\x00" in value:
        raise ValidationError("%s must not contain NUL characters" % name, 400)
    return value


def client_ip(remote_addr, forwarded_for, trusted_proxies):
    """The address of the client: ``remote_addr``, or the hop of ``X-Forwarded-For`` that the
    ``trusted_proxies`` nearest proxies vouch for. Anything unparsable falls back to ``remote_addr``.
    """
    remote = remote_addr or ""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return remote
    candidate = hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def request_ip():
    """The current request's client IP (``TRACKER_TRUSTED_PROXIES`` hops trusted)."""
    return client_ip(
        request.remote_addr,
        request.headers.get("X-Forwarded-For", ""),
        current_app.config["TRACKER_TRUSTED_PROXIES"],
    )


def bearer_token():
    """The token of the request's ``Authorization: Bearer <token>`` header, or ''."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


TOO_DEEP = object()
MAX_JSON_DEPTH = 64  # deeper JSON is no request a person or a program of ours would send


def json_depth(data):
    """How deeply ``data`` (parsed JSON) nests lists and objects; a scalar is 0 (no recursion)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth + 1)
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def json_body():
    """The request's JSON object, or a 400 ValidationError naming what is wrong (JSON nested
    deeper than 64 levels included: Python's parser would run out of stack on it)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = TOO_DEEP
    if data is TOO_DEEP or json_depth(data) > MAX_JSON_DEPTH:
        raise ValidationError("the JSON body is nested deeper than %d levels" % MAX_JSON_DEPTH, 400)
    if data is None:
        raise ValidationError("the body must be JSON (Content-Type: application/json)", 400)
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    return data


def int_arg(name, default=None, minimum=1, maximum=MAX_ID):
    """A whole-number query parameter, or a 400 naming it."""
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationError("%s must be a whole number" % name, 400) from None
    if number < minimum or number > maximum:
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


def url_with_query(endpoint, params, **values):
    """``url_for(endpoint, **values)`` with ``params`` as its query string. (Handing a request's
    own arguments to ``url_for`` as keywords breaks on names it reserves: ``endpoint``,
    ``_scheme``, ``_external``…)"""
    query = urlencode(list(params.items()))
    return url_for(endpoint, **values) + ("?" + query if query else "")


def base_url():
    """The public URL of this tracker: ``TRACKER_PUBLIC_URL`` or the request's host."""
    return current_app.config["TRACKER_PUBLIC_URL"] or request.host_url


class ServerSession(CallbackDict, SessionMixin):
    """A session whose data lives in the ``user_session`` table; the cookie holds only ``sid``.
    ``clear()`` (logging in, logging out) ends the stored session, so a new id is issued."""

    def __init__(self, initial=None, sid=None):
        def on_update(this):
            this.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.ended = []
        self.modified = False

    def clear(self):
        if self.sid is not None:
            self.ended.append(self.sid)
            self.sid = None
        super().clear()


class LazySessionInterface(SessionInterface):
    """Server-side sessions (DESIGN §4.8): the cookie is a random id, the data a row that
    logging out, a password change or ``TRACKER_SESSION_DAYS`` of inactivity ends. A request
    without the cookie (every click, every API call) gets an empty session without touching
    the database."""

    serializer = session_json_serializer

    def _days(self, app):
        return app.config["TRACKER_SESSION_DAYS"]

    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession()
        found = accounts.load_session(sid, utcnow(), self._days(app))
        if found is None:
            return ServerSession()  # unknown, ended or expired: a fresh, empty one
        try:
            data = self.serializer.loads(found[1]) if found[1] else {}
        except ValueError:
            data = {}
        return ServerSession(data if isinstance(data, dict) else {}, sid=sid)

    def save_session(self, app, session, response):
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        for sid in session.ended:
            accounts.end_session(sid)
        if not session:
            if session.sid is not None:
                accounts.end_session(session.sid)
            if session.sid is not None or session.ended:
                response.delete_cookie(name, domain=domain, path=path)
            return
        now = utcnow()
        data, user_id = self.serializer.dumps(dict(session)), session.get("user_id")
        if session.sid is None:
            session.sid = accounts.start_session(user_id, data, now, self._days(app))
        elif session.modified and not accounts.save_session(session.sid, user_id, data, now):
            return  # ended by another request meanwhile (a password change): it stays ended
        response.vary.add("Cookie")
        response.set_cookie(
            name,
            session.sid,
            expires=now.replace(tzinfo=datetime.timezone.utc) + datetime.timedelta(days=self._days(app)),
            httponly=self.get_cookie_httponly(app),
            domain=domain,
            path=path,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
