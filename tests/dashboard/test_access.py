"""Access (DESIGN §4.8), with CSRF on: login's ``next`` stays on this site, sessions live on
the server (logging out and a password change end them, as do TRACKER_SESSION_DAYS unused),
and the login lock-out also counts per IP across usernames."""

import datetime

import pytest

from tracker import accounts
from tracker.models import User, UserSession, utcnow

from dashboard_helpers import PASSWORD, add_user, csrf_token

COOKIE = "session"


@pytest.fixture
def app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


def login(client, next_=None, username="admin", password=PASSWORD):
    token = csrf_token(client.get("/login").data)
    path = "/login" + ("?next=" + next_ if next_ is not None else "")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})


@pytest.mark.parametrize(
    "target",
    [
        "%2F%09%2Fevil.example",  # the issue's: "/\t/evil.example", which a browser reads as //evil.example
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d%0a/evil.example",
        "%2F%2Fevil.example",
        "//evil.example/x",
        "///evil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "https://evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "%20//evil.example",
        "evil.example",
        "/flows%00",
    ],
)
def test_next_never_leaves_the_site(app, target):
    client = app.test_client()
    add_user()
    response = login(client, target)
    assert (response.status_code, response.headers["Location"]) == (302, "/flows")


@pytest.mark.parametrize(
    "target, location", [("/reports?group_by=country", "/reports?group_by=country"), ("/flows/3", "/flows/3")]
)
def test_next_to_a_path_of_this_site_is_followed(app, target, location):
    add_user()
    response = login(app.test_client(), target.replace("?", "%3F").replace("=", "%3D"))
    assert (response.status_code, response.headers["Location"]) == (302, location)


def test_a_newline_in_next_is_no_500(app):
    add_user()
    response = login(app.test_client(), "/flows%0aSet-Cookie:%20x=y")
    assert (response.status_code, response.headers["Location"]) == (302, "/flows")
    assert "x=y" not in response.headers.get("Set-Cookie", "")


def session_cookie(client):
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


def test_the_cookie_holds_a_random_id_and_the_server_only_its_hash(app, client):
    add_user()
    assert login(client).status_code == 302
    value = session_cookie(client)
    assert len(value) >= 40 and "." not in value  # no signed data: an id
    (row,) = UserSession.select().where(UserSession.user_id.is_null(False))
    assert row.id_hash == accounts.hash_token(value) and value not in row.data


def test_logging_in_issues_a_new_session_id(app, client):
    add_user()
    client.get("/login")  # an anonymous session (the form's CSRF token)
    before = session_cookie(client)
    assert before
    login(client)
    assert session_cookie(client) != before
    assert UserSession.get_or_none(UserSession.id_hash == accounts.hash_token(before)) is None


def test_logging_out_ends_the_session_on_the_server(app, client):
    add_user()
    login(client)
    stolen = session_cookie(client)
    page = client.get("/flows")
    assert page.status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(page.data)}).status_code == 302
    replay = app.test_client()
    replay.set_cookie(COOKIE, stolen)
    assert replay.get("/flows").headers["Location"] == "/login?next=/flows"
    assert UserSession.select().where(UserSession.user_id.is_null(False)).count() == 0


def test_a_session_ends_after_its_days_of_inactivity(make_app):
    app = make_app(WTF_CSRF_ENABLED=True, TRACKER_SESSION_DAYS=2)
    client = app.test_client()
    add_user()
    login(client)
    rows = UserSession.select().where(UserSession.user_id.is_null(False))
    UserSession.update(seen_at=utcnow() - datetime.timedelta(days=1, hours=23)).where(
        UserSession.user_id.is_null(False)
    ).execute()
    assert client.get("/flows").status_code == 200  # used within the 2 days: still open, and seen now
    assert (utcnow() - rows.get().seen_at) < datetime.timedelta(minutes=1)
    UserSession.update(seen_at=utcnow() - datetime.timedelta(days=2, seconds=1)).execute()
    assert client.get("/flows").headers["Location"] == "/login?next=/flows"
    assert rows.count() == 0


def test_the_default_is_seven_days(app):
    assert app.config["TRACKER_SESSION_DAYS"] == 7


def test_changing_the_password_ends_every_other_session(app):
    add_user()
    laptop, phone = app.test_client(), app.test_client()
    login(laptop)
    login(phone)
    page = laptop.get("/account/password")
    assert page.status_code == 200
    response = laptop.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "new": "a new long one",
            "confirm": "a new long one",
            "csrf_token": csrf_token(page.data),
        },
    )
    assert (response.status_code, response.headers["Location"]) == (302, "/flows")
    assert laptop.get("/flows").status_code == 200  # this browser goes on, with a new session
    assert phone.get("/flows").headers["Location"] == "/login?next=/flows"
    assert UserSession.select().where(UserSession.user_id.is_null(False)).count() == 1
    assert accounts.check_password("admin", "a new long one") is not None
    assert accounts.check_password("admin", PASSWORD) is None


def test_a_password_change_with_the_wrong_current_password_is_refused(app, client):
    add_user()
    login(client)
    page = client.get("/account/password")
    response = client.post(
        "/account/password",
        data={
            "current": "not it at all",
            "new": "a new long one",
            "confirm": "a new long one",
            "csrf_token": csrf_token(page.data),
        },
    )
    assert response.status_code == 422
    assert "The current password is wrong." in response.get_data(as_text=True)
    response = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "short", "confirm": "short", "csrf_token": csrf_token(page.data)},
    )
    assert response.status_code == 422
    assert "The password needs at least 8 characters." in response.get_data(as_text=True)
    response = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "new": "a new long one",
            "confirm": "another one",
            "csrf_token": csrf_token(page.data),
        },
    )
    assert response.status_code == 422
    assert "The two new passwords differ." in response.get_data(as_text=True)
    assert accounts.check_password("admin", PASSWORD) is not None


def test_the_password_page_needs_a_login(client):
    assert client.get("/account/password").headers["Location"] == "/login?next=/account/password"


def test_twenty_usernames_from_one_ip_are_locked_out(app):
    """The issue's: the lock-out was per username + IP only, so 20 usernames were 20 guesses."""
    add_user()
    client = app.test_client()
    statuses = [login(client, username="user%d" % n, password="guess-guess").status_code for n in range(20)]
    first_lock = accounts.MAX_IP_FAILURES - 1
    assert statuses == [401] * first_lock + [429] * (20 - first_lock)
    response = login(client)  # the right password of a real user waits as well
    assert response.status_code == 429
    assert "Too many failed attempts. Wait" in response.get_data(as_text=True)


def test_another_ip_is_not_locked_by_one_ips_guesses(app):
    now = datetime.datetime(2024, 5, 1, 12)
    for n in range(accounts.MAX_IP_FAILURES):
        accounts.record_login_failure("user%d" % n, "10.0.0.1", now)
    assert accounts.login_wait("someone", "10.0.0.1", now) == 30
    assert accounts.login_wait("someone", "10.0.0.2", now) == 0
    assert accounts.login_wait("user1", "10.0.0.2", now) == 0


def test_a_successful_login_does_not_reset_the_ips_count(app):
    now = datetime.datetime(2024, 5, 1, 12)
    for n in range(accounts.MAX_IP_FAILURES - 1):
        accounts.record_login_failure("user%d" % n, "10.0.0.1", now)
    accounts.clear_login_failures("mine", "10.0.0.1")  # the guesser logs in to their own account
    assert accounts.record_login_failure("user99", "10.0.0.1", now) == 30


def test_set_password_ends_the_users_sessions(app, client):
    add_user()
    login(client)
    assert accounts.set_password(User.get(), "brand new password") == 1
    assert client.get("/flows").headers["Location"] == "/login?next=/flows"
