"""Sending one stored request: ``send_http`` (requests, no redirects, the first bytes of the
answer kept, only to the addresses ``destinations`` allows) and ``SendPool``, the bounded
thread pool with a cap per destination host.

Every send has one total deadline (DESIGN §4.4): the connect and read timeouts together, and
never more than what is left of its claim's lease. requests' own timeouts bound each socket
operation only, and a receiver that trickles its answer a byte at a time beats them; a
``Watchdog`` shuts the socket of a send that outlives its deadline, and the attempt fails as a
timeout. So a send always ends before its lease does: no other worker sends it meanwhile.
"""

import datetime
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from .destinations import DestinationRefused, Policy, guarded_session

logger = logging.getLogger(__name__)

RESPONSE_KEPT = 2048  # bytes of each answer kept on the attempt
RESPONSE_READ = 65536  # read at most this much, so the connection can be reused
USER_AGENT = "tracker-postback/1.0"


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: status code, the first bytes of the body, the headers."""

    status_code: int
    body: bytes = b""
    headers: dict = None
    error: str = ""  # a failure while reading the body, after the status arrived


@dataclass
class Sent:
    """One finished attempt: the delivery, its lease, when, how long, the answer or the error."""

    delivery: object
    lease: datetime.datetime
    at: datetime.datetime
    duration_ms: float
    answer: Answer = None
    error: str = ""
    refused: bool = False  # the destination's address is not allowed: no retry can help
    unsent: bool = False  # not sent at all: too little of its lease was left for a whole send


class Timeouts(tuple):
    """``(connect, read)`` seconds, as requests takes them, and ``total``: the deadline of the
    whole send, their sum."""

    def __new__(cls, connect, read):
        timeouts = super().__new__(cls, (connect, read))
        timeouts.total = connect + read
        return timeouts


def as_timeouts(value):
    """``Timeouts`` from what requests takes: a ``(connect, read)`` pair or one number for both."""
    if isinstance(value, Timeouts):
        return value
    return Timeouts(*value) if isinstance(value, (tuple, list)) else Timeouts(value, value)


class Watchdog:
    """Shuts the socket of every send that outlives its deadline (one thread per process)."""

    TICK = 0.05  # how often an expired send whose socket is still connecting is looked at

    def __init__(self):
        self._watches = set()
        self._cond = threading.Condition()
        self._thread = None
        self._wakes_at = float("inf")  # when the thread looks again (monotonic); inf: no deadline

    def watch(self, seconds):
        """Start watching the calling thread's send; returns its ``Watch``. The thread is woken
        only when this deadline comes before the time it already wakes at (waking it for every
        send was a twentieth of a delivery's CPU)."""
        watch = Watch(time.monotonic() + seconds)
        with self._cond:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="send-deadline", daemon=True)
                self._thread.start()
            if watch.deadline < self._wakes_at:
                self._wakes_at = watch.deadline
                self._cond.notify()
        return watch

    def unwatch(self, watch):
        with self._cond:
            self._watches.discard(watch)

    def _run(self):
        while True:
            with self._cond:
                now = time.monotonic()
                for watch in self._watches:
                    if watch.deadline <= now:
                        watch.expire()
                pending = [w.deadline for w in self._watches if not w.shut]
                wait = max(self.TICK, min(pending) - now) if pending else None
                if any(w.expired and not w.shut for w in self._watches):
                    wait = self.TICK
                self._wakes_at = now + wait if wait is not None else float("inf")
                self._cond.wait(wait)


class Watch:
    """One send under a deadline: the connection it uses (set by the pool), once expired."""

    __slots__ = ("deadline", "conn", "expired", "shut")

    def __init__(self, deadline):
        self.deadline, self.conn, self.expired, self.shut = deadline, None, False, False

    def expire(self):
        self.expired = True
        sock = getattr(self.conn, "sock", None) if self.conn is not None else None
        if sock is not None and not self.shut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.shut = True


WATCHDOG = Watchdog()


class _WatchedPool:
    """A urllib3 pool that tells the sending thread's ``Watch`` which connection it uses."""

    def _make_request(self, conn, *args, **kwargs):
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.conn = conn
        return super()._make_request(conn, *args, **kwargs)


_watched_classes = {}


def _watched(pool_class):
    """``pool_class`` telling the sending thread's ``Watch`` its connection."""
    watched = _watched_classes.get(pool_class)
    if watched is None:
        watched = _watched_classes[pool_class] = type(
            "Watched" + pool_class.__name__, (_WatchedPool, pool_class), {}
        )
    return watched


def watch_deadlines(session):
    """Make ``session``'s pools report each send's connection to the ``Watchdog``."""
    for adapter in set(session.adapters.values()):
        manager = adapter.poolmanager
        manager.pool_classes_by_scheme = {
            scheme: _watched(cls) for scheme, cls in manager.pool_classes_by_scheme.items()
        }


_local = threading.local()
STRICT = Policy()  # no private address allowed


def _session(policy):
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    session = sessions.get(policy)
    if session is None:
        # No proxies or netrc from the environment: send where the URL says, if it may go there.
        session = sessions[policy] = guarded_session(policy)
        session.headers["User-Agent"] = USER_AGENT
        watch_deadlines(session)
    return session


def send_http(request, timeout, policy=STRICT):
    """Send a stored request with ``requests``; return an ``Answer`` or raise on network errors
    (``DestinationRefused`` when ``policy`` does not allow the address connected to).

    ``timeout``: ``(connect, read)`` seconds; the whole send, every byte of the answer included,
    ends within their sum, else it raises a Timeout."""
    timeout = as_timeouts(timeout)
    watch = _local.watch = WATCHDOG.watch(timeout.total)
    try:
        response = _session(policy).request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body.encode("utf-8") if request.body else None,
            timeout=tuple(timeout),
            allow_redirects=False,
            stream=True,
        )
        try:
            body, error = _read_start(response)
        finally:
            response.close()
    except requests.RequestException:
        if watch.expired:
            raise _too_slow(timeout) from None
        raise
    finally:
        WATCHDOG.unwatch(watch)
        _local.watch = None
    if watch.expired:
        raise _too_slow(timeout)
    return Answer(response.status_code, body, response.headers, error)


def _too_slow(timeout):
    return requests.Timeout("the whole send took longer than its deadline of %.1f s" % timeout.total)


def _read_start(response):
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= RESPONSE_READ:
                break
    except Exception as exc:  # the status arrived; a broken body doesn't change the outcome
        return b"".join(chunks)[:RESPONSE_KEPT], "reading the body: %s" % _describe(exc)
    return b"".join(chunks)[:RESPONSE_KEPT], ""


# What the raw exception texts of requests/urllib3 mean, in words (the first that matches wins).
_PLAIN = (
    (("refused",), "connection refused by %(host)s: nothing accepts connections there"),
    (("reset by peer", "connectionreseterror", "reset"), "the connection was reset by the receiver"),
    (
        ("name or service not known", "nodename nor servname", "getaddrinfo", "nameresolutionerror"),
        "the host name %(host)s could not be resolved (DNS)",
    ),
    (
        ("remotedisconnected", "closed connection without response"),
        "the receiver closed the connection without answering",
    ),
    (("badstatusline", "protocolerror"), "the receiver did not answer in HTTP"),
    (("certificate", "ssl", "tls"), "the TLS handshake with %(host)s failed"),
    (("timed out", "timeout"), "timed out waiting for %(host)s"),
)


def _describe(exc, url=""):
    """An exception as the delivery log shows it: its kind, then what happened in words (not
    urllib3's nested reprs with object addresses)."""
    kind = type(exc).__name__
    if not isinstance(exc, requests.RequestException):
        return ("%s: %s" % (kind, exc))[:1000]
    text = str(exc).lower()
    parts = urlsplit(url or getattr(getattr(exc, "request", None), "url", "") or "")
    host = parts.netloc or "the receiver"
    if isinstance(exc, requests.ConnectTimeout):
        return "%s: could not connect to %s in time (timed out)" % (kind, host)
    if isinstance(exc, requests.ReadTimeout):
        return "%s: %s did not answer in time (timed out)" % (kind, host)
    for needles, words in _PLAIN:
        if any(needle in text for needle in needles):
            return ("%s: %s" % (kind, words % {"host": host}))[:1000]
    return ("%s: %s" % (kind, re.sub(r" at 0x[0-9a-f]+", "", str(exc))))[:1000]


class SendPool:
    """A bounded pool of sending threads with a cap on concurrent sends per destination host."""

    def __init__(self, concurrency, per_host):
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="delivery")
        self.per_host = per_host
        self._hosts = {}
        self._lock = threading.Lock()

    def _gate(self, url):
        host = urlsplit(url).netloc.lower()
        gate = self._hosts.get(host)
        if gate is None:
            with self._lock:  # a semaphore is made once per host, not once per send
                gate = self._hosts.setdefault(host, threading.BoundedSemaphore(self.per_host))
        return gate

    def submit(self, send, delivery, lease, timeout, clock, finish_by=None):
        """Start one attempt; the future's result is a ``Sent``, never an exception.
        ``finish_by``: when the send must be over (``time.monotonic()``; its claim's lease less
        the time kept to record the outcome). A row whose whole deadline no longer fits before
        it is given back unsent: a deadline cut short would fail sends that need all of it."""
        gate = self._gate(delivery.url)
        return self.executor.submit(_attempt, send, delivery, lease, timeout, gate, clock, finish_by)

    def shutdown(self):
        self.executor.shutdown(wait=True)


# Seconds of a lease kept for recording the outcome after the send's deadline (less when the
# lease exceeds the deadline by under twice this: then half of what the deadline leaves of it).
LEASE_MARGIN = 1.0


def lease_margin(lease_seconds, timeout):
    """The seconds of a ``lease_seconds`` lease kept to record an attempt sent with ``timeout``."""
    return min(LEASE_MARGIN, (lease_seconds - as_timeouts(timeout).total) / 2)


def _attempt(send, delivery, lease, timeout, gate, clock, finish_by=None):
    with gate:
        at, started = clock(), time.monotonic()
        if finish_by is not None and finish_by - started < as_timeouts(timeout).total:
            return Sent(delivery, lease, at, 0.0, None, "not sent: its lease was nearly over", unsent=True)
        try:
            answer, error = send(delivery, timeout), ""
        except DestinationRefused as exc:
            duration = (time.monotonic() - started) * 1000
            return Sent(delivery, lease, at, round(duration, 1), None, str(exc), refused=True)
        except requests.RequestException as exc:  # refused, reset, timed out, not HTTP at all
            answer, error = None, _describe(exc, delivery.url)
        except Exception as exc:  # a bug, not the receiver: say so loudly, and go on
            logger.exception("sending delivery %d failed unexpectedly", delivery.id)
            answer, error = None, _describe(exc)
        duration = (time.monotonic() - started) * 1000
    return Sent(delivery, lease, at, round(duration, 1), answer, error)


def header(answer, name):
    """A response header by case-insensitive name (a sender may return a plain dict)."""
    headers = answer.headers or {}
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
