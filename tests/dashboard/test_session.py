"""The lazy session interface: no signer for cookie-less requests, sessions still round-trip."""

import flask
from flask.sessions import SecureCookieSession

from tracker.web import LazySessionInterface


def open_session(app, headers=None):
    with app.test_request_context("/", headers=headers or {}):
        return app.session_interface.open_session(app, flask.request)


def test_app_uses_the_lazy_session_interface(app):
    assert isinstance(app.session_interface, LazySessionInterface)


def test_request_without_cookie_gets_an_empty_unmodified_session(app):
    session = open_session(app)
    assert type(session) is SecureCookieSession
    assert dict(session) == {} and session.modified is False


def test_signed_session_cookie_is_read_back(app):
    value = app.session_interface.get_signing_serializer(app).dumps({"user_id": 7})
    assert dict(open_session(app, {"Cookie": "session=" + value})) == {"user_id": 7}


def test_tampered_session_cookie_gives_an_empty_session(app):
    value = app.session_interface.get_signing_serializer(app).dumps({"user_id": 7})
    assert dict(open_session(app, {"Cookie": "session=" + value[:-2] + "xx"})) == {}


def test_session_set_in_a_view_comes_back_on_the_next_request(app):
    @app.get("/_session_set")
    def _set():
        flask.session["n"] = 41
        return "set"

    @app.get("/_session_get")
    def _get():
        return str(flask.session.get("n", "none"))

    client = app.test_client()
    assert client.get("/_session_get").get_data(as_text=True) == "none"
    assert client.get("/_session_set").status_code == 200
    assert client.get("/_session_get").get_data(as_text=True) == "41"
