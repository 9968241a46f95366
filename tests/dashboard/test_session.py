"""The session interface: cookie-less requests touch no table, sessions round-trip through
``user_session``, and a cookie naming no live session gives an empty one."""

import flask

from tracker.models import UserSession
from tracker.web import LazySessionInterface, ServerSession


def open_session(app, headers=None):
    with app.test_request_context("/", headers=headers or {}):
        return app.session_interface.open_session(app, flask.request)


def test_app_uses_the_server_side_session_interface(app):
    assert isinstance(app.session_interface, LazySessionInterface)


def test_request_without_cookie_gets_an_empty_unmodified_session(app):
    session = open_session(app)
    assert type(session) is ServerSession
    assert dict(session) == {} and session.modified is False and session.sid is None


def test_an_unknown_or_forged_cookie_gives_an_empty_session(app):
    assert dict(open_session(app, {"Cookie": "session=forged-value"})) == {}
    assert dict(open_session(app, {"Cookie": "session=" + "x" * 5000})) == {}
    assert UserSession.select().count() == 0


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
    assert UserSession.select().count() == 0  # nothing stored for an empty session
    assert client.get("/_session_set").status_code == 200
    assert client.get("/_session_get").get_data(as_text=True) == "41"
    assert UserSession.select().count() == 1


def test_clicks_and_api_calls_set_no_cookie_and_store_nothing(client, api, make_flow):
    flow = make_flow()
    response = client.get("/r/%s" % flow["key"])
    assert response.status_code == 302 and "Set-Cookie: session" not in str(response.headers)
    assert UserSession.select().count() == 0
