"""Users and API tokens: passwords and tokens are stored only as hashes."""
import hashlib
import hmac
import secrets

from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import check_password_hash, generate_password_hash

from .models import ApiToken, User, utcnow


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


class LazySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except that a request without the session cookie (every
    click, every API call) gets its empty session without building the cookie signer, which
    costs about as much as the click's GeoIP lookup."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
