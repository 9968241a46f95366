"""The ``tracker`` command: serve, web, worker, user, token, db, geoip."""

import argparse
import os
import sys

from . import create_app
from .db import db
from .operations.process_logs import configure_logging


def _app():
    return create_app()


def cmd_db_upgrade(args):
    """Create or upgrade the schema."""
    from .migrations import upgrade

    app = _app()
    before, after = upgrade()
    print(
        "schema: %s → version %d (%s)"
        % (
            "new" if before is None else "version %d" % before,
            after,
            app.config["TRACKER_DATABASE_URL"].split("@")[-1],
        )
    )


def cmd_db_backup(args):
    """Write a consistent copy of the database while the tracker runs."""
    from .operations.backup import BackupError, backup

    url = _app().config["TRACKER_DATABASE_URL"]
    try:
        print(backup(url, args.path))
    except BackupError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    return 0


def cmd_db_restore(args):
    """Bring a backup back into a stopped tracker, then upgrade its schema."""
    from .migrations import upgrade
    from .operations.backup import BackupError, restore

    url = _app().config["TRACKER_DATABASE_URL"]
    try:
        print(restore(url, args.path))
    except BackupError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    before, after = upgrade()
    print("schema: version %s → version %d" % (before, after))
    db.close()
    return 0


def cmd_user_create(args):
    """Create a dashboard user; asks for the password when not given."""
    from .accounts import create_user
    from .migrations import upgrade

    _app()
    upgrade()
    password = args.password
    if password is None:
        import getpass

        password = getpass.getpass("password for %s: " % args.name)
    with db.connection_context():
        try:
            create_user(args.name, password)
        except ValueError as exc:
            print("error: %s" % exc, file=sys.stderr)
            return 1
    print("created user %s" % args.name)
    return 0


def cmd_user_password(args):
    """Set a dashboard user's password (asks for it when not given); ends their sessions."""
    from .accounts import set_password
    from .migrations import upgrade
    from .models import User

    _app()
    upgrade()
    password = args.password
    if password is None:
        import getpass

        password = getpass.getpass("new password for %s: " % args.name)
    with db.connection_context():
        user = User.get_or_none(User.username == args.name)
        if user is None:
            print("error: no user %r" % args.name, file=sys.stderr)
            return 1
        try:
            ended = set_password(user, password)
        except ValueError as exc:
            print("error: %s" % exc, file=sys.stderr)
            return 1
    print("password of %s changed; %d session(s) ended" % (args.name, ended))
    return 0


def cmd_token_create(args):
    """Create an API token and print it once."""
    from .accounts import create_api_token
    from .migrations import upgrade

    _app()
    upgrade()
    with db.connection_context():
        print(create_api_token(args.name, may_reveal=args.reveal))


def cmd_geoip_update(args):
    """Download GeoLite2 City and ASN with MAXMIND_ACCOUNT_ID / MAXMIND_LICENSE_KEY."""
    from .enrichment.geoip_download import GeoIPDownloadError, download_databases

    app = _app()
    account, key = os.environ.get("MAXMIND_ACCOUNT_ID"), os.environ.get("MAXMIND_LICENSE_KEY")
    if not account or not key:
        print(
            "error: set MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY (a free GeoLite2 account at maxmind.com)",
            file=sys.stderr,
        )
        return 2
    kwargs = {}
    if os.environ.get("MAXMIND_DOWNLOAD_URL"):
        kwargs["base_url"] = os.environ["MAXMIND_DOWNLOAD_URL"]
    try:
        paths = download_databases(account, key, app.config["TRACKER_GEOIP_DIR"], **kwargs)
    except GeoIPDownloadError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    for path in paths:
        print("wrote %s" % path)
    return 0


def cmd_geoip_lookup(args):
    """Print what the GeoIP databases say about an IP."""
    import json

    from .enrichment.geoip import GeoIP

    app = _app()
    geoip = GeoIP(app.config["TRACKER_GEOIP_DIR"])
    print(json.dumps(geoip.lookup(args.ip), indent=2))
    if notice := geoip.notice():
        print(notice, file=sys.stderr)


def cmd_serve(args):
    from .server import serve

    return serve(args, web=True, worker=True)


def cmd_web(args):
    from .server import serve

    return serve(args, web=True, worker=False)


def cmd_worker(args):
    from .server import serve

    return serve(args, web=False, worker=True)


def build_parser():
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("serve", cmd_serve, "web server and delivery worker on one machine"),
        ("web", cmd_web, "the web server only (gunicorn)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=2)
        p.set_defaults(func=func)
    sub.add_parser("worker", help="the delivery worker only").set_defaults(func=cmd_worker)

    user = sub.add_parser("user").add_subparsers(dest="action", required=True)
    p = user.add_parser("create")
    p.add_argument("name")
    p.add_argument("--password")
    p.set_defaults(func=cmd_user_create)
    p = user.add_parser("password", help="set a user's password and end their sessions")
    p.add_argument("name")
    p.add_argument("--password")
    p.set_defaults(func=cmd_user_password)

    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    p = token.add_parser("create")
    p.add_argument("name")
    p.add_argument(
        "--reveal", action="store_true", help="the token may ask the API for unmasked secrets (?reveal=1)"
    )
    p.set_defaults(func=cmd_token_create)

    dbp = sub.add_parser("db").add_subparsers(dest="action", required=True)
    dbp.add_parser("upgrade").set_defaults(func=cmd_db_upgrade)
    p = dbp.add_parser("backup", help="a consistent copy of the database, while the tracker runs")
    p.add_argument("path")
    p.set_defaults(func=cmd_db_backup)
    p = dbp.add_parser("restore", help="bring a backup back (stop the tracker first)")
    p.add_argument("path")
    p.set_defaults(func=cmd_db_restore)

    geo = sub.add_parser("geoip").add_subparsers(dest="action", required=True)
    geo.add_parser("update").set_defaults(func=cmd_geoip_update)
    p = geo.add_parser("lookup")
    p.add_argument("ip")
    p.set_defaults(func=cmd_geoip_lookup)
    return parser


def main(argv=None):
    """Entry point of the ``tracker`` console script."""
    configure_logging()
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args) or 0)
