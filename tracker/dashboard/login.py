"""Login, logout, the password change, and the first-run setup page."""

import re
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, render_template, request, session, url_for

from .. import accounts
from ..accounts import check_password
from ..models import utcnow
from ..web import request_ip
from . import bp


def _log_in(user):
    session.clear()  # a fresh session (a new id): nothing from before the login carries over
    session["user_id"] = user.id
    session.permanent = True


# Browsers drop tabs and newlines from URLs and read a backslash as a slash, so "/\t/evil"
# and "/\\evil" are "//evil", another host: no control character, space or backslash at all.
UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target):
    """``target`` when it is a path of this site (``/flows?x=1``), else the flows page: never
    ``//host``, a scheme, a backslash, or a control-character trick (DESIGN §4.8)."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and not UNSAFE_IN_NEXT.search(target)
        and len(target) <= 2000
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("dashboard.flows")


@bp.get("/")
def index():
    return redirect(url_for("dashboard.flows"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; failures from one username + IP are locked out after a few tries."""
    if request.method == "GET":
        if g.user is not None:
            return redirect(url_for("dashboard.flows"))
        return render_template("login.html", username="", first_run=not accounts.users_exist())
    username, now = request.form.get("username", ""), utcnow()
    ip = request_ip()
    wait = accounts.login_wait(username, ip, now)
    if wait:
        return _refuse(username, "Too many failed attempts. Wait %d s and try again." % wait, 429)
    user = check_password(username, request.form.get("password", ""))
    if user is None:
        wait = accounts.record_login_failure(username, ip, now)
        message = (
            "Too many failed attempts. Wait %d s and try again." % wait
            if wait
            else "Wrong username or password."
        )
        return _refuse(username, message, 429 if wait else 401)
    accounts.clear_login_failures(username, ip)
    _log_in(user)
    return redirect(safe_next(request.args.get("next")))


def _refuse(username, message, status):
    return render_template("login.html", username=username, error=message, first_run=False), status


@bp.post("/logout")
def logout():
    session.clear()  # ends the session on the server: the old cookie opens nothing any more
    flash("You are logged out.")
    return redirect(url_for("dashboard.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    """Change one's own password: every session of the user ends, this one starts afresh."""
    if request.method == "GET":
        return render_template("password.html")
    new = request.form.get("new", "")
    errors = {}
    if new != request.form.get("confirm", ""):
        errors["confirm"] = "The two new passwords differ."
    else:
        try:
            accounts.change_password(g.user, request.form.get("current", ""), new)
        except ValueError as exc:
            field = "current" if "current" in str(exc) else "new"
            errors[field] = str(exc)[:1].upper() + str(exc)[1:] + "."
    if errors:
        return render_template("password.html", errors=errors), 422
    _log_in(g.user)
    flash("Your password is changed. Every other session of yours has ended.")
    return redirect(url_for("dashboard.flows"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first admin with the one-time link ``tracker serve`` printed."""
    token = request.values.get("token", "")
    if not accounts.setup_token_valid(token):
        if accounts.users_exist() and not token:
            return redirect(url_for("dashboard.login"))
        abort(
            403,
            "This setup link is not valid: it was used already, or a newer one was printed "
            "when the server restarted. Use the latest link from the server's output.",
        )
    if accounts.users_exist():
        accounts.forget_setup_token()  # a user was made another way (tracker user create)
        return redirect(url_for("dashboard.login"))
    if request.method == "GET":
        return render_template("setup.html", token=token, username="")
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return render_template(
            "setup.html", token=token, username=username, error="The two passwords differ."
        ), 422
    try:
        user = accounts.complete_setup(token, username, password)
    except ValueError as exc:
        return render_template("setup.html", token=token, username=username, error=str(exc)), 422
    except accounts.SetupError as exc:
        abort(403, str(exc))
    _log_in(user)
    flash("Welcome, %s. Create your first flow to get a tracking link." % user.username)
    return redirect(url_for("dashboard.flows"))
