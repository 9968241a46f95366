"""Dashboard users and API tokens (stored only as hashes), the one-time setup link, and
the slow-down of failed logins. The setup token and the failure counts live in the
``Setting`` table, so every gunicorn worker (and every web node) sees the same ones."""

import datetime
import hashlib
import hmac
import json
import logging
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from .db import db
from .models import ApiToken, Setting, User, utcnow

logger = logging.getLogger(__name__)

SETUP_KEY = "setup_token"
MAX_FAILURES = 5  # failed logins allowed before the first lock-out
FIRST_LOCK = 30  # seconds; doubles with each further failure
LONGEST_LOCK = 900
FORGET_AFTER = datetime.timedelta(hours=1)  # a quiet hour resets the count


def hash_token(token):
    """SHA-256 hex of an API token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(name):
    """Create a token, store its hash, and return the token itself (shown once)."""
    token = "trk_" + secrets.token_urlsafe(32)
    ApiToken.create(name=name, token_hash=hash_token(token))
    return token


def check_api_token(token, configured=None):
    """True when ``token`` is ``TRACKER_API_TOKEN`` or a stored token's preimage."""
    if not token:
        return False
    if configured and hmac.compare_digest(token.encode("utf-8"), configured.encode("utf-8")):
        return True
    row = ApiToken.get_or_none(ApiToken.token_hash == hash_token(token))
    if row is None:
        return False
    ApiToken.update(last_used_at=utcnow()).where(ApiToken.id == row.id).execute()
    return True


def create_user(username, password):
    """Create a dashboard user with a hashed password; raises ValueError if it exists."""
    username = (username or "").strip()
    if not username or len(username) > 100:
        raise ValueError("a username of 1 to 100 characters is required")
    if not password or len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    if User.select().where(User.username == username).exists():
        raise ValueError("user %r already exists" % username)
    return User.create(username=username, password_hash=generate_password_hash(password))


_DUMMY = []


def _dummy_hash():
    if not _DUMMY:
        _DUMMY.append(generate_password_hash("not a password"))
    return _DUMMY[0]


def check_password(username, password):
    """The user when ``password`` is right, else None (same work either way)."""
    user = User.get_or_none(User.username == (username or "").strip())
    if user is None:
        check_password_hash(_dummy_hash(), password or "")  # as slow as a real check
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


class SetupError(Exception):
    """The setup link is wrong, used, or no longer needed."""


def users_exist():
    """True once a dashboard user exists."""
    return User.select().exists()


def _put(key, value):
    (
        Setting.insert(key=key, value=value)
        .on_conflict(conflict_target=[Setting.key], update={Setting.value: value})
        .execute()
    )


def new_setup_token():
    """Make a fresh setup token, keep only its hash (replacing an older one), return it."""
    token = secrets.token_urlsafe(24)
    _put(SETUP_KEY, hash_token(token))
    return token


def setup_token_valid(token):
    """True when ``token`` is the current, unused setup token."""
    row = Setting.get_or_none(Setting.key == SETUP_KEY)
    return bool(token) and row is not None and hmac.compare_digest(row.value, hash_token(token))


def complete_setup(token, username, password):
    """Consume the setup token and create the first admin, in one transaction.

    Raises SetupError for a wrong or used token (or when a user already exists), and
    ValueError for a bad username or password, in which case the token stays usable.
    """
    with db.atomic():
        consumed = (
            Setting.delete()
            .where(Setting.key == SETUP_KEY, Setting.value == hash_token(token or ""))
            .execute()
        )
        if consumed != 1:
            raise SetupError("this setup link is not valid: it was used already, or a newer one was printed")
        if users_exist():
            raise SetupError("a user exists already; log in instead")
        return create_user(username, password)


def forget_setup_token():
    """Drop the setup token (a user was created another way)."""
    Setting.delete().where(Setting.key == SETUP_KEY).execute()


def announce_setup_link(app):
    """The ``tracker.on_serve`` hook: with no user yet, print a one-time setup link.

    Each start prints a new link (only its hash is stored); a process that serves no
    pages (``tracker worker``) prints none, so it can't replace the web server's link.
    """
    if not app.config.get("TRACKER_SERVE_URL"):
        return None
    base = app.config["TRACKER_PUBLIC_URL"] or app.config["TRACKER_SERVE_URL"]
    with db.connection_context():
        if users_exist():
            return None
        token = new_setup_token()
    link = "%s/setup?token=%s" % (base.rstrip("/"), token)
    print("No dashboard user yet. Create the first admin here (the link works once): %s" % link, flush=True)
    return link


def _failure_key(username, ip):
    digest = hashlib.sha256(("%s\n%s" % (username.strip(), ip)).encode("utf-8")).hexdigest()
    return "login_failures:" + digest[:40]


def _failures(key, now):
    row = Setting.get_or_none(Setting.key == key)
    if row is None:
        return {"count": 0, "last": None, "until": None}
    state = json.loads(row.value)
    if now - datetime.datetime.fromisoformat(state["last"]) > FORGET_AFTER:
        return {"count": 0, "last": None, "until": None}
    return state


def login_wait(username, ip, now):
    """Seconds this username + IP must still wait before the next try (0: go ahead)."""
    until = _failures(_failure_key(username, ip), now)["until"]
    if until is None:
        return 0
    left = (datetime.datetime.fromisoformat(until) - now).total_seconds()
    return max(0, int(left + 0.999))


def record_login_failure(username, ip, now):
    """Count a failed login; from the ``MAX_FAILURES``-th on, lock this username + IP out
    for 30 s, doubling each time up to 15 minutes. Returns the seconds to wait."""
    key = _failure_key(username, ip)
    with db.atomic():
        state = _failures(key, now)
        state["count"] += 1
        state["last"] = now.isoformat()
        wait = 0
        if state["count"] >= MAX_FAILURES:
            wait = min(LONGEST_LOCK, FIRST_LOCK * 2 ** (state["count"] - MAX_FAILURES))
            state["until"] = (now + datetime.timedelta(seconds=wait)).isoformat()
        _put(key, json.dumps(state))
    if wait:
        logger.warning("login locked for %d s after %d failures from %s", wait, state["count"], ip)
    return wait


def clear_login_failures(username, ip):
    """Forget the failures of this username + IP (after a successful login)."""
    Setting.delete().where(Setting.key == _failure_key(username, ip)).execute()
