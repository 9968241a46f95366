"""Helpers for the dashboard's route tests: a logged-in client, CSRF tokens from forms."""

import functools
import re

from werkzeug.security import generate_password_hash

from tracker.models import User

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html):
    """The CSRF token of the first form in a page."""
    match = CSRF_RE.search(html if isinstance(html, str) else html.decode())
    assert match, "no csrf_token in the page"
    return match.group(1)


@functools.cache
def password_hash(password):
    """A stored hash of ``password`` that is quick to check: ``accounts.create_user`` stores a
    scrypt hash, slow on purpose (about 0.15 s a login here), while the login reads the method
    from the hash itself; most tests that log in are not about the hash (as Django's own test
    settings advise a fast hasher). ``create_user`` and its scrypt keep their own tests."""
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


def add_user(username="admin", password=PASSWORD):
    """A dashboard user whose password is ``password`` (``create_user`` has its own tests)."""
    return User.create(username=username, password_hash=password_hash(password))


def log_in(client, username="admin", password=PASSWORD, create=True):
    """Create (optionally) and log in a user through the login form; returns the response."""
    if create:
        add_user(username, password)
    page = client.get("/login")
    data = {"username": username, "password": password}
    match = CSRF_RE.search(page.get_data(as_text=True))
    if match:
        data["csrf_token"] = match.group(1)
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def sign_in(client, username="admin"):
    """A logged-in session without the password round trip (hashing is slow on purpose);
    the login form itself is tested in test_dashboard_access."""
    user = User.create(username=username, password_hash="!unusable")
    with client.session_transaction() as session:
        session["user_id"] = user.id
    return user
