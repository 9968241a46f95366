"""Dashboard access with CSRF on: login, logout, the one-time setup link, slow-down of
failed logins, cookie flags, and the machine-facing routes left free of CSRF."""

import datetime
import re

import pytest

from tracker import accounts as access
from tracker.accounts import create_user
from tracker.dashboard import MACHINE_BLUEPRINTS
from tracker.models import Setting, User

from dashboard_helpers import PASSWORD, add_user, csrf_token, log_in

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)


@pytest.fixture
def app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


def test_login_with_the_forms_token_then_logout(client):
    create_user("admin", PASSWORD)
    # stored as scrypt, slow on purpose (other tests store a quick hash: dashboard_helpers.add_user)
    assert User.get(User.username == "admin").password_hash.startswith("scrypt:")
    token = csrf_token(client.get("/login").data)
    response = client.post(
        "/login?next=/reports", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert (response.status_code, response.headers["Location"]) == (302, "/reports")
    page = client.get("/flows")
    assert page.status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(page.data)})
    assert (response.status_code, response.headers["Location"]) == (302, "/login")
    assert client.get("/flows").headers["Location"] == "/login?next=/flows"


def test_forms_without_a_csrf_token_are_refused(client):
    add_user()
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    log_in(client, create=False)
    before = client.get("/flows").status_code
    response = client.post("/flows/new", data={"name": "X", "offer_url": "https://offer.example/"})
    assert (before, response.status_code) == (200, 400)
    response = client.post(
        "/flows/new", data={"name": "X", "offer_url": "https://offer.example/", "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert client.post("/logout").status_code == 400
    assert client.get("/flows").status_code == 200  # still logged in


def test_a_form_with_its_token_is_accepted(client):
    log_in(client)
    token = csrf_token(client.get("/flows/new").data)
    response = client.post(
        "/flows/new", data={"name": "With token", "offer_url": "https://offer.example/", "csrf_token": token}
    )
    assert response.status_code == 302


def test_machine_facing_routes_need_no_csrf_token(client, api):
    status, flow = api.post("/api/v1/flows", json={"name": "API", "offer_url": "https://offer.example/"})
    assert status == 201
    assert client.get("/r/" + flow["key"]).status_code == 302
    assert client.get("/healthz").status_code == 200


def test_every_blueprint_but_the_dashboard_is_csrf_exempt(app):
    exempt = {bp.name for bp in app.extensions["csrf"]._exempt_blueprints if bp.name in app.blueprints}
    assert exempt == set(app.blueprints) - {"dashboard"}
    assert {"clickin", "health", "api"} <= exempt <= set(MACHINE_BLUEPRINTS)


def test_wrong_password_is_refused_and_next_cannot_leave_the_site(app, client):
    add_user()
    token = csrf_token(client.get("/login").data)
    response = client.post("/login", data={"username": "admin", "password": "nope-nope", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        fresh = app.test_client()
        token = csrf_token(fresh.get("/login").data)
        response = fresh.post(
            "/login?next=" + target, data={"username": "admin", "password": PASSWORD, "csrf_token": token}
        )
        assert response.headers["Location"] == "/flows"


def test_failed_logins_are_locked_out_then_refused_with_429(client):
    add_user()
    token = csrf_token(client.get("/login").data)
    wrong = {"username": "admin", "password": "guess-guess", "csrf_token": token}
    statuses = [client.post("/login", data=wrong).status_code for _ in range(access.MAX_FAILURES)]
    assert statuses == [401] * (access.MAX_FAILURES - 1) + [429]
    right = client.post("/login", data={**wrong, "password": PASSWORD})
    assert right.status_code == 429  # even the right password waits: no guessing during the lock
    # 30 s from the last failure, less the time the password checks took on a busy machine
    wait = re.search(r"Too many failed attempts\. Wait (\d+) s and try again\.", right.get_data(as_text=True))
    assert wait is not None and 25 <= int(wait.group(1)) <= 30
    assert client.get("/flows").status_code == 302


def test_lockout_grows_and_expires_with_the_clock(app):
    for _ in range(access.MAX_FAILURES - 1):
        assert access.record_login_failure("admin", "10.0.0.1", NOW) == 0
    assert access.login_wait("admin", "10.0.0.1", NOW) == 0
    assert access.record_login_failure("admin", "10.0.0.1", NOW) == 30
    assert access.login_wait("admin", "10.0.0.1", NOW + datetime.timedelta(seconds=10)) == 20
    assert access.login_wait("admin", "10.0.0.2", NOW) == 0  # another address is not locked
    later = NOW + datetime.timedelta(seconds=30)
    assert access.login_wait("admin", "10.0.0.1", later) == 0
    assert access.record_login_failure("admin", "10.0.0.1", later) == 60
    assert access.record_login_failure("admin", "10.0.0.1", later) == 120
    quiet = later + access.FORGET_AFTER + datetime.timedelta(seconds=1)
    assert access.login_wait("admin", "10.0.0.1", quiet) == 0
    assert access.record_login_failure("admin", "10.0.0.1", quiet) == 0  # the count started over
    access.clear_login_failures("admin", "10.0.0.1")
    assert Setting.select().count() == 1  # the IP's count across usernames stays


def test_lockout_is_capped(app):
    waits = [access.record_login_failure("u", "ip", NOW) for _ in range(access.MAX_FAILURES + 10)]
    assert max(waits) == access.LONGEST_LOCK


def test_session_cookie_is_httponly_and_samesite_lax(client):
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_behind_an_https_public_url(make_app):
    app = make_app(WTF_CSRF_ENABLED=True, TRACKER_PUBLIC_URL="https://track.example")
    response = log_in(app.test_client())
    assert "Secure" in response.headers["Set-Cookie"]


def _setup(client, token, username="boss", password=PASSWORD, confirm=None):
    page = client.get("/setup?token=" + token)
    assert page.status_code == 200, page.status_code
    return client.post(
        "/setup",
        data={
            "token": token,
            "username": username,
            "password": password,
            "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_token(page.data),
        },
    )


def test_setup_link_creates_the_first_admin_once(client, app):
    token = access.new_setup_token()
    response = _setup(client, token)
    assert (response.status_code, response.headers["Location"]) == (302, "/flows")
    assert [u.username for u in User.select()] == ["boss"]
    assert client.get("/flows").status_code == 200  # logged in by the setup
    again = app.test_client().get("/setup?token=" + token)
    assert again.status_code == 403
    assert "not valid" in again.get_data(as_text=True)
    assert (
        app.test_client()
        .post("/setup", data={"token": token, "username": "x", "password": PASSWORD, "confirm": PASSWORD})
        .status_code
        == 400
    )  # no csrf
    assert User.select().count() == 1


def test_setup_refuses_a_wrong_token_and_keeps_the_right_one(client):
    token = access.new_setup_token()
    assert client.get("/setup?token=wrong").status_code == 403
    assert client.get("/setup").status_code == 403  # no user yet: only the link opens it
    response = _setup(client, token, confirm="different password")
    assert response.status_code == 422
    assert "The two passwords differ." in response.get_data(as_text=True)
    response = _setup(client, token, password="short")
    assert response.status_code == 422
    assert "at least 8 characters" in response.get_data(as_text=True)
    assert User.select().count() == 0
    assert _setup(client, token).status_code == 302  # the token survived the failed tries


def test_setup_after_a_user_exists_goes_to_login(client):
    token = access.new_setup_token()
    create_user("cli-made", PASSWORD)
    response = client.get("/setup?token=" + token)
    assert (response.status_code, response.headers["Location"]) == (302, "/login")
    assert not access.setup_token_valid(token)
    assert client.get("/setup").headers["Location"] == "/login"


def test_serve_hook_prints_a_setup_link_only_when_needed(app, capsys):
    assert access.announce_setup_link in app.extensions["tracker.on_serve"]
    app.config["TRACKER_SERVE_URL"] = None  # the worker alone prints nothing
    assert access.announce_setup_link(app) is None
    app.config["TRACKER_SERVE_URL"] = "http://127.0.0.1:8123"
    link = access.announce_setup_link(app)
    assert link.startswith("http://127.0.0.1:8123/setup?token=")
    assert link in capsys.readouterr().out
    assert access.setup_token_valid(link.split("token=")[1])
    newer = access.announce_setup_link(app)
    assert not access.setup_token_valid(link.split("token=")[1])  # a restart replaces the link
    add_user()
    assert access.announce_setup_link(app) is None
    assert access.setup_token_valid(newer.split("token=")[1])


def test_login_page_tells_a_new_install_about_the_setup_link(client):
    assert "one-time setup link" in client.get("/login").get_data(as_text=True)
    add_user()
    assert "one-time setup link" not in client.get("/login").get_data(as_text=True)
