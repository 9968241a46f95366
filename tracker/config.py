"""Configuration: defaults, then ``instance/config.py``, then ``TRACKER_*`` environment variables."""

import ipaddress
import os
import secrets
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULTS = {
    "TRACKER_DATABASE_URL": None,  # sqlite:///<instance>/tracker.db
    "TRACKER_SECRET_KEY": None,  # generated once into instance/
    "TRACKER_API_TOKEN": None,
    "TRACKER_POSTBACK_SECRET": None,
    "TRACKER_GEOIP_DIR": None,  # <project>/geoip
    "TRACKER_ATTRIBUTION_DAYS": 30,
    "TRACKER_TRUSTED_PROXIES": 0,
    "TRACKER_WORKER_INTERVAL": 1.0,
    "TRACKER_RETRY_DELAYS": "60,300,1800,7200,28800,86400",
    "TRACKER_POSTBACK_ALLOWED_IPS": None,
    "TRACKER_FALLBACK_URL": None,
    "TRACKER_PUBLIC_URL": None,
    "TRACKER_TIMEZONE": "UTC",  # IANA zone of reports and of routes' hour and weekday rules
    "TRACKER_CURRENCY": "USD",  # ISO 4217: reports add money in it (other currencies at stored rates)
    # How long a transaction_id + event_id pair stays claimed on /api/v1/events (DESIGN §4.3).
    "TRACKER_EVENT_CLAIM_SECONDS": 2.0,
    # Outgoing deliveries: seconds to connect and to wait for each read, how long a claimed
    # row stays leased (longer than a send can take), how many sends run at once, how many
    # of them may go to one host, and how many rows a claim takes.
    "TRACKER_DELIVERY_CONNECT_TIMEOUT": 5.0,
    "TRACKER_DELIVERY_READ_TIMEOUT": 10.0,
    "TRACKER_DELIVERY_LEASE": 60.0,
    "TRACKER_DELIVERY_CONCURRENCY": 16,
    "TRACKER_DELIVERY_PER_HOST": 8,
    "TRACKER_DELIVERY_BATCH": 100,
    "TRACKER_METRICS_PUBLIC": False,  # when 1, /metrics answers without the API token
    "TRACKER_RETENTION_DAYS": None,  # unset: keep every click
    "TRACKER_ROLLUP_INTERVAL": 60.0,  # seconds between the worker's report rollups
    # Clicks the database cannot take within TRACKER_CLICK_BUSY_MS wait in the spool (§4.8).
    "TRACKER_CLICK_SPOOL": None,  # <instance>/spool
    "TRACKER_CLICK_BUSY_MS": 250,
    # Clicks written in batches at most this often (ms) through the spool; 0: each at once.
    "TRACKER_CLICK_BATCH_MS": 0,
    "TRACKER_LOG_FORMAT": "text",  # or json: one object a line, in every process
    # CIDRs outgoing postbacks may reach although they are private, loopback, link-local or
    # reserved (refused by default, DESIGN §4.8), e.g. "10.0.0.0/8,127.0.0.1".
    "TRACKER_DELIVERY_ALLOWED_NETWORKS": None,
    "TRACKER_SESSION_DAYS": 7,  # a dashboard session ends after this many days unused
}

CASTS = {
    "TRACKER_ATTRIBUTION_DAYS": int,
    "TRACKER_TRUSTED_PROXIES": int,
    "TRACKER_WORKER_INTERVAL": float,
    "TRACKER_EVENT_CLAIM_SECONDS": float,
    "TRACKER_DELIVERY_CONNECT_TIMEOUT": float,
    "TRACKER_DELIVERY_READ_TIMEOUT": float,
    "TRACKER_DELIVERY_LEASE": float,
    "TRACKER_DELIVERY_CONCURRENCY": int,
    "TRACKER_DELIVERY_PER_HOST": int,
    "TRACKER_DELIVERY_BATCH": int,
    "TRACKER_ROLLUP_INTERVAL": float,
    "TRACKER_METRICS_PUBLIC": lambda value: str(value).strip().lower() in ("1", "true", "yes", "on"),
    "TRACKER_RETENTION_DAYS": lambda value: None if value in (None, "") else int(value),
    "TRACKER_CLICK_BUSY_MS": int,
    "TRACKER_CLICK_BATCH_MS": int,
    "TRACKER_SESSION_DAYS": float,
}

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_instance_path():
    """The instance folder: ``TRACKER_INSTANCE_PATH`` or ``instance/`` beside the package."""
    return os.environ.get("TRACKER_INSTANCE_PATH") or os.path.join(PROJECT_ROOT, "instance")


def load_config(app, test_config=None):
    """Fill ``app.config`` with every TRACKER_* setting, resolved and typed."""
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    for name in DEFAULTS:
        if os.environ.get(name) not in (None, ""):
            app.config[name] = os.environ[name]
    if test_config:
        app.config.update(test_config)
    for name, cast in CASTS.items():
        app.config[name] = cast(app.config[name])
    app.config["TRACKER_RETRY_DELAYS"] = parse_retry_delays(app.config["TRACKER_RETRY_DELAYS"])
    check_delivery_settings(app.config)
    parse_networks(app.config["TRACKER_DELIVERY_ALLOWED_NETWORKS"], "TRACKER_DELIVERY_ALLOWED_NETWORKS")
    if not app.config["TRACKER_SESSION_DAYS"] > 0:
        raise ValueError("TRACKER_SESSION_DAYS must be more than 0")
    check_timezone(app.config["TRACKER_TIMEZONE"])
    app.config["TRACKER_CURRENCY"] = check_currency(app.config["TRACKER_CURRENCY"])
    if app.config["TRACKER_RETENTION_DAYS"] is not None and app.config["TRACKER_RETENTION_DAYS"] < 1:
        raise ValueError("TRACKER_RETENTION_DAYS must be at least 1 (unset it to keep every click)")
    app.config["TRACKER_DATABASE_URL"] = app.config["TRACKER_DATABASE_URL"] or "sqlite:///" + os.path.join(
        app.instance_path, "tracker.db"
    )
    app.config["TRACKER_CLICK_SPOOL"] = app.config["TRACKER_CLICK_SPOOL"] or os.path.join(
        app.instance_path, "spool"
    )
    if app.config["TRACKER_CLICK_BUSY_MS"] < 1:
        raise ValueError("TRACKER_CLICK_BUSY_MS must be at least 1")
    if not 0 <= app.config["TRACKER_CLICK_BATCH_MS"] <= 10_000:
        raise ValueError("TRACKER_CLICK_BATCH_MS must be 0 (off) to 10000")
    if app.config["TRACKER_LOG_FORMAT"] not in ("text", "json"):
        raise ValueError("TRACKER_LOG_FORMAT must be text or json")
    app.config["TRACKER_GEOIP_DIR"] = app.config["TRACKER_GEOIP_DIR"] or os.path.join(PROJECT_ROOT, "geoip")
    app.config["SECRET_KEY"] = app.config["TRACKER_SECRET_KEY"] or instance_secret_key(app.instance_path)


def parse_retry_delays(value):
    """``"60,300"`` (or a list) → ``[60.0, 300.0]``; seconds before each retry."""
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part]
    delays = [float(Decimal(str(v))) for v in value]
    if any(d < 0 for d in delays):
        raise ValueError("TRACKER_RETRY_DELAYS must not be negative")
    return delays


def check_delivery_settings(config):
    """A lease must outlast a send, or a slow send could be claimed and sent twice."""
    send_time = config["TRACKER_DELIVERY_CONNECT_TIMEOUT"] + config["TRACKER_DELIVERY_READ_TIMEOUT"]
    if config["TRACKER_DELIVERY_LEASE"] <= send_time:
        raise ValueError(
            "TRACKER_DELIVERY_LEASE (%s s) must be longer than the connect and read "
            "timeouts together (%s s)" % (config["TRACKER_DELIVERY_LEASE"], send_time)
        )
    if config["TRACKER_DELIVERY_CONCURRENCY"] < 1 or config["TRACKER_DELIVERY_PER_HOST"] < 1:
        raise ValueError("TRACKER_DELIVERY_CONCURRENCY and TRACKER_DELIVERY_PER_HOST must be at least 1")


def parse_networks(value, setting):
    """``"203.0.113.7, 10.0.0.0/8"`` (or a list) → a tuple of ``ip_network`` (host bits dropped);
    a bad item raises ValueError naming ``setting``, so the app refuses to start with it."""
    networks = []
    for item in value.split(",") if isinstance(value, str) else value or ():
        if str(item).strip():
            try:
                networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise ValueError("%s: %r is no address or CIDR" % (setting, str(item).strip())) from None
    return tuple(networks)


def time_zone(name):
    """The ``ZoneInfo`` of an IANA name; ValueError for anything else."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        raise ValueError("%r is not an IANA time zone such as Europe/Berlin" % name) from None


def check_currency(code):
    """Refuse to start with a report currency that is no ISO 4217 code."""
    from .currency import is_iso4217

    code = str(code or "").strip().upper()
    if not is_iso4217(code):
        raise ValueError("TRACKER_CURRENCY %r is not an ISO 4217 currency code such as USD" % code)
    return code


def check_timezone(name):
    """Refuse to start with a time zone that is no IANA name: every hour rule would be wrong."""
    try:
        time_zone(name)
    except ValueError:
        raise ValueError(
            "TRACKER_TIMEZONE %r is not an IANA time zone such as Europe/Berlin" % name
        ) from None


def instance_secret_key(instance_path):
    """Read the secret key from ``instance/secret_key``, generating it on first use."""
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        os.makedirs(instance_path, exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins when workers race
        except FileExistsError:
            pass
        os.unlink(tmp)
    with open(path) as f:
        return f.read().strip()
