"""Dashboard users and API tokens (stored only as hashes), server-side sessions, password
changes, the one-time setup link, and the slow-down of failed logins (per username + IP, and
per IP across usernames). The setup token and the failure counts live in the ``Setting``
table and sessions in ``user_session``, so every gunicorn worker (and every web node) sees
the same ones."""

import datetime
import hashlib
import hmac
import json
import logging
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from .db import db
from .models import ApiToken, Setting, User, UserSession, utcnow

logger = logging.getLogger(__name__)

SETUP_KEY = "setup_token"
MAX_FAILURES = 5  # failed logins allowed before the first lock-out
FIRST_LOCK = 30  # seconds; doubles with each further failure
LONGEST_LOCK = 900
FORGET_AFTER = datetime.timedelta(hours=1)  # a quiet hour resets the count
# Failed logins from one IP, whatever the usernames, before that IP is locked out as well:
# one person mistyping a few times never reaches it; a guesser trying usernames does.
MAX_IP_FAILURES = 10
ANONYMOUS_SESSION = datetime.timedelta(days=1)  # a session nobody logged in with (CSRF token)
SEEN_EVERY = datetime.timedelta(minutes=1)  # a session's last use is written at most this often


def hash_token(token):
    """SHA-256 hex of an API token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(name, may_reveal=False):
    """Create a token, store its hash, and return the token itself (shown once). A token that
    ``may_reveal`` may ask the API for secrets unmasked (``?reveal=1``)."""
    token = "trk_" + secrets.token_urlsafe(32)
    ApiToken.create(name=name, token_hash=hash_token(token), may_reveal=bool(may_reveal))
    return token


def token_may_reveal(token, configured=None):
    """True when ``token`` may see secrets unmasked: ``TRACKER_API_TOKEN`` (the operator's own,
    from the server's environment) or a stored token created with ``--reveal``."""
    if configured and token and hmac.compare_digest(token.encode("utf-8"), configured.encode("utf-8")):
        return True
    row = ApiToken.get_or_none(ApiToken.token_hash == hash_token(token or ""))
    return bool(row and row.may_reveal)


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
    if not username or len(username) > 100 or "\x00" in username:
        raise ValueError("a username of 1 to 100 characters (no NUL) is required")
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
    username = (username or "").strip()
    # No username holds a NUL (and PostgreSQL cannot even be asked about one): a wrong login.
    user = None if "\x00" in username or len(username) > 100 else User.get_or_none(User.username == username)
    if user is None:
        check_password_hash(_dummy_hash(), password or "")  # as slow as a real check
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def set_password(user, password):
    """Give ``user`` a new password and end every session of theirs (DESIGN §4.8); raises
    ValueError for a password that is too short."""
    if not password or len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    with db.atomic():
        User.update(password_hash=generate_password_hash(password)).where(User.id == user.id).execute()
        ended = end_user_sessions(user.id)
    logger.info("password of user %s changed; %d session(s) ended", user.username, ended)
    return ended


def change_password(user, current, new):
    """The dashboard's password change: the current password, then ``set_password``."""
    if check_password(user.username, current) is None:
        raise ValueError("the current password is wrong")
    if current == new:
        raise ValueError("the new password is the same as the current one")
    return set_password(user, new)


def _session_key(session_id):
    return hash_token(session_id)


def load_session(session_id, now, days):
    """``(user_id, data)`` of a live session, or None when it is unknown, ended, or has been
    idle longer than ``days`` (then it is deleted). Marks it used (at most once a minute)."""
    if not session_id or len(session_id) > 200:
        return None
    row = UserSession.get_or_none(UserSession.id_hash == _session_key(session_id))
    if row is None:
        return None
    idle = datetime.timedelta(days=days) if row.user_id is not None else ANONYMOUS_SESSION
    if now - row.seen_at > idle:
        row.delete_instance()
        return None
    if now - row.seen_at > SEEN_EVERY:
        UserSession.update(seen_at=now).where(UserSession.id_hash == row.id_hash).execute()
    return row.user_id, row.data


def start_session(user_id, data, now, days):
    """A new session (a random id, returned; only its hash is stored). Sessions idle too long
    are deleted on the way, so the table holds only live ones."""
    session_id = secrets.token_urlsafe(32)
    UserSession.create(
        id_hash=_session_key(session_id), user_id=user_id, data=data, created_at=now, seen_at=now
    )
    stale = (UserSession.seen_at < now - datetime.timedelta(days=days)) | (
        UserSession.user_id.is_null() & (UserSession.seen_at < now - ANONYMOUS_SESSION)
    )
    UserSession.delete().where(stale).execute()
    return session_id


def save_session(session_id, user_id, data, now):
    """Store a session's new data; False when the session has ended meanwhile."""
    return bool(
        UserSession.update(user_id=user_id, data=data, seen_at=now)
        .where(UserSession.id_hash == _session_key(session_id))
        .execute()
    )


def end_session(session_id):
    """End one session (logging out): its cookie opens nothing any more."""
    UserSession.delete().where(UserSession.id_hash == _session_key(session_id)).execute()


def end_user_sessions(user_id):
    """End every session of a user; returns how many."""
    return UserSession.delete().where(UserSession.user_id == user_id).execute()


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


def _ip_key(ip):
    return "login_failures_ip:" + hashlib.sha256(ip.encode("utf-8")).hexdigest()[:40]


def _wait(key, now):
    until = _failures(key, now)["until"]
    if until is None:
        return 0
    left = (datetime.datetime.fromisoformat(until) - now).total_seconds()
    return max(0, int(left + 0.999))


def login_wait(username, ip, now):
    """Seconds this username + IP, or this IP with any username, must still wait before the
    next try (0: go ahead)."""
    return max(_wait(_failure_key(username, ip), now), _wait(_ip_key(ip), now))


def _count_failure(key, now, allowed):
    state = _failures(key, now)
    state["count"] += 1
    state["last"] = now.isoformat()
    wait = 0
    if state["count"] >= allowed:
        wait = min(LONGEST_LOCK, FIRST_LOCK * 2 ** (state["count"] - allowed))
        state["until"] = (now + datetime.timedelta(seconds=wait)).isoformat()
    _put(key, json.dumps(state))
    return wait, state["count"]


def record_login_failure(username, ip, now):
    """Count a failed login; from the ``MAX_FAILURES``-th on, lock this username + IP out
    for 30 s, doubling each time up to 15 minutes; from the ``MAX_IP_FAILURES``-th failure of
    this IP (whatever the usernames) on, lock the IP out the same way. Returns the seconds to
    wait."""
    with db.atomic():
        wait, count = _count_failure(_failure_key(username, ip), now, MAX_FAILURES)
        ip_wait, ip_count = _count_failure(_ip_key(ip), now, MAX_IP_FAILURES)
    if wait:
        logger.warning("login locked for %d s after %d failures from %s", wait, count, ip)
    if ip_wait:
        logger.warning(
            "login locked for %d s for %s after %d failures with any username", ip_wait, ip, ip_count
        )
    return max(wait, ip_wait)


def clear_login_failures(username, ip):
    """Forget the failures of this username + IP (after a successful login). The IP's count
    across usernames stays: logging in to one's own account must not reset a guesser's."""
    Setting.delete().where(Setting.key == _failure_key(username, ip)).execute()
