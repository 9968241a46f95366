"""``GET /metrics``: the Prometheus text format (DESIGN §4.9), with prometheus_client.

Two kinds of figures, counted where they are true:

- What a web node answers (clicks, conversion requests, request latency) is counted in the
  process that answers. gunicorn runs several worker processes, each with its own memory, and
  a scrape reaches one of them: ``tracker serve`` and ``tracker web`` therefore run
  prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a fresh folder per start,
  see ``server.use_metrics_folder``): each worker writes its counts to a file there and a scrape
  adds them up. Without it (one process: tests, a bare ``gunicorn wsgi:app``) the process's own
  figures are shown. Counting these from the database instead would mean a count over the click
  table on every scrape, and would say nothing about latency or refusals.
- What the installation shares (deliveries by status, the queue's depth and its oldest due row)
  is read from the database at scrape time: the delivery workers may run on other machines,
  with no HTTP server, so every web node answers the same, true figures. The spool is per node
  (each node drains its own) and is read from its folder.
"""

import contextlib
import fcntl
import logging
import os
import time

from flask import Blueprint, Response, current_app, jsonify
from peewee import fn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from ..accounts import check_api_token
from ..models import DELIVERY_STATUSES, Delivery, utcnow
from ..web import bearer_token

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

# Where a request went, by its path's first segment (a label per route would be unbounded).
ENDPOINTS = {"r": "click", "click": "lp_click", "postback": "postback", "api": "api", "metrics": "metrics"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Not in prometheus_client's global registry: a scrape builds its registry (see scrape).
CLICKS = Counter(
    "tracker_clicks",
    "Clicks on /r/<key> answered by this node: recorded, spooled (the database could not take "
    "it at once: written from the spool later), failed (neither the database nor the spool "
    "could take it; the visitor still got the redirect; the log says why) or orphan (no active "
    "flow for the key).",
    ["result"],
    registry=None,
)
CONVERSIONS = Counter(
    "tracker_conversions",
    "Requests to /postback and /api/v1/events by answer status: ok and fired recorded a "
    "conversion; updated, duplicate and error did not add one.",
    ["endpoint", "status"],
    registry=None,
)
LATENCY = Histogram(
    "tracker_request_duration_seconds",
    "Time from a request's arrival in the app to its answer, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
RESPONSES = Counter(
    "tracker_responses",
    "Answers by endpoint and status class (2xx, 3xx, 4xx, 5xx).",
    ["endpoint", "status"],
    registry=None,
)
PROCESS_METRICS = (CLICKS, CONVERSIONS, LATENCY, RESPONSES)
# The click path's children, bound once (labels() costs a dictionary lookup and a lock).
CLICK_RECORDED, CLICK_SPOOLED, CLICK_FAILED, CLICK_ORPHAN = (
    CLICKS.labels(r) for r in ("recorded", "spooled", "failed", "orphan")
)


def count_conversion(endpoint, status):
    """Count one answered request of the conversions stage."""
    CONVERSIONS.labels(endpoint, status).inc()


def endpoint_of(path):
    """The endpoint label of a request path: click, lp_click, postback, events, api, metrics,
    healthz or dashboard."""
    first = path[1:].split("/", 1)[0]
    if first == "api" and path.startswith("/api/v1/events"):
        return "events"
    if first == "healthz":
        return "healthz"
    return ENDPOINTS.get(first, "dashboard")


class RequestTimer:
    """WSGI middleware: every request's latency and status class, by endpoint. It wraps the
    click fast path too, so clicks are timed like everything else (a few microseconds each)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.children = {}  # endpoint -> (histogram child, {status class: counter child})

    def __call__(self, environ, start_response):
        start = time.perf_counter()
        status = []

        def timed_start_response(code, headers, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.wsgi_app(environ, timed_start_response)
        finally:
            self.observe(environ.get("PATH_INFO", ""), status[-1][:1] if status else "5", start)

    def observe(self, path, status_digit, start):
        endpoint = endpoint_of(path)
        children = self.children.get(endpoint)
        if children is None:
            children = self.children[endpoint] = (LATENCY.labels(endpoint), {})
        histogram, responses = children
        histogram.observe(time.perf_counter() - start)
        counter = responses.get(status_digit)
        if counter is None:
            counter = responses[status_digit] = RESPONSES.labels(endpoint, status_digit + "xx")
        counter.inc()


class SharedFigures:
    """A collector of what every node shares: deliveries and the queue (from the database),
    and this node's click spool (from its folder)."""

    def __init__(self, spool_folder, now=None):
        self.spool_folder, self.now = spool_folder, now

    def collect(self):
        now = self.now or utcnow()
        by_status = dict.fromkeys(DELIVERY_STATUSES, 0)
        by_status.update(
            Delivery.select(Delivery.status, fn.COUNT(Delivery.id)).group_by(Delivery.status).tuples()
        )
        depth, oldest = (
            Delivery.select(fn.COUNT(Delivery.id), fn.MIN(Delivery.next_attempt_at))
            .where(Delivery.status.in_(("queued", "retrying")), Delivery.next_attempt_at <= now)
            .tuples()
            .get()
        )
        deliveries = GaugeMetricFamily(
            "tracker_deliveries", "Outgoing deliveries in the database by status.", labels=["status"]
        )
        for status, count in by_status.items():
            deliveries.add_metric([status], count)
        yield deliveries
        yield GaugeMetricFamily(
            "tracker_delivery_queue_depth", "Deliveries due now (queued or retrying), not yet claimed.", depth
        )
        age = (now - as_datetime(oldest)).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "tracker_delivery_queue_oldest_due_seconds",
            "How long the oldest due delivery has waited past its time (0 when none is due).",
            max(age, 0.0),
        )
        yield GaugeMetricFamily(
            "tracker_click_spool_depth",
            "Clicks in this node's spool, waiting to be written to the database.",
            spool_depth(self.spool_folder),
        )


def as_datetime(value):
    """SQLite hands aggregates back as text; PostgreSQL as datetimes."""
    return Delivery.next_attempt_at.python_value(value) if isinstance(value, str) else value


SPOOL_RENAMES = ".rename"  # the lock file of a spool folder's renames


@contextlib.contextmanager
def folder_lock(folder, name, shared=False, wait=True):
    """Hold the flock of the file ``name`` in ``folder`` (made if missing); yields whether it
    is held: always when ``wait``, else False when another holds it (``BlockingIOError``).
    Raises OSError when the folder does not exist.

    ``SPOOL_RENAMES``: a drain renames the file clicks are appended to (``clicks.jsonl`` to
    ``batch-….jsonl``) holding it, and ``spool_depth`` counts holding it shared. A listing of the
    folder taken while a file in it is renamed may show the file under neither name (readdir
    promises nothing for an entry renamed meanwhile): measured under a loop of renames, up to
    15 % of unlocked readings (446 of 3,000) counted a waiting click as gone."""
    lock = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(lock)  # releases the flock


def spool_depth(folder, tries=50):
    """The clicks waiting in the spool ``folder``: one JSON line each; 0 when it does not exist.

    Counted under the folder's rename lock (shared), so no file is missed mid-rename. A file
    that vanishes between the listing and its reading was drained and removed (or the folder's
    rename lock could not be taken, and it was renamed): the folder is read again until one
    reading sees every file it listed (at most ``tries``)."""
    try:
        with folder_lock(folder, SPOOL_RENAMES, shared=True):
            return _count_lines(folder, tries)
    except FileNotFoundError:
        return 0
    except OSError:  # a folder this process may read but not write to: counted without the lock
        return _count_lines(folder, tries)


def _count_lines(folder, tries):
    for _ in range(tries):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return 0
        depth, vanished = 0, False
        for entry in entries:
            try:
                if entry.is_file():
                    with open(entry.path, "rb") as f:
                        depth += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
            except FileNotFoundError:
                vanished = True
            except OSError:
                continue
        if not vanished:
            break
    return depth


def spool_folder(app):
    """``TRACKER_CLICK_SPOOL``, by default ``<instance>/spool``."""
    return app.config.get("TRACKER_CLICK_SPOOL") or os.path.join(app.instance_path, "spool")


def scrape(app, now=None):
    """Every figure, in the Prometheus text format."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in PROCESS_METRICS:
            registry.register(metric)
    registry.register(SharedFigures(spool_folder(app), now))
    return generate_latest(registry)


@bp.get("/metrics")
def metrics():
    """The figures for Prometheus; the API token is needed unless ``TRACKER_METRICS_PUBLIC=1``."""
    config = current_app.config
    if not config["TRACKER_METRICS_PUBLIC"] and not check_api_token(
        bearer_token(), config["TRACKER_API_TOKEN"]
    ):
        return jsonify(error="a valid 'Authorization: Bearer <token>' header is required"), 401
    return Response(scrape(current_app), content_type=CONTENT_TYPE_LATEST)
