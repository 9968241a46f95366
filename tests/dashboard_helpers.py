"""Helpers for the dashboard's route tests: a logged-in client, CSRF tokens from forms."""

import re

from tracker.accounts import create_user
from tracker.models import User

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html):
    """The CSRF token of the first form in a page."""
    match = CSRF_RE.search(html if isinstance(html, str) else html.decode())
    assert match, "no csrf_token in the page"
    return match.group(1)


def log_in(client, username="admin", password=PASSWORD, create=True):
    """Create (optionally) and log in a user through the login form; returns the response."""
    if create:
        create_user(username, password)
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
