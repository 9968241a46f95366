"""Login, logout, and the first-run setup page."""

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)

from .. import accounts
from ..accounts import check_password
from ..models import utcnow
from ..web import request_ip
from . import bp


def _log_in(user):
    session.clear()  # a fresh session: nothing from before the login carries over
    session["user_id"] = user.id
    session.permanent = True


def _safe_next(target):
    """Only a path on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
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
    return redirect(_safe_next(request.args.get("next")))


def _refuse(username, message, status):
    return render_template("login.html", username=username, error=message, first_run=False), status


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("dashboard.login"))


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


@bp.get("/favicon.ico")
def favicon():
    """The browser's tab icon (asked for on every page, logged in or not): an SVG."""
    response = send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )
    return response
