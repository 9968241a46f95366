"""Sending one stored request: ``send_http`` (requests, no redirects, the first bytes of the
answer kept, only to the addresses ``destinations`` allows) and ``SendPool``, the bounded
thread pool with a cap per destination host."""

import datetime
import logging
import re
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
    return session


def send_http(request, timeout, policy=STRICT):
    """Send a stored request with ``requests``; return an ``Answer`` or raise on network errors
    (``DestinationRefused`` when ``policy`` does not allow the address connected to)."""
    response = _session(policy).request(
        request.method,
        request.url,
        headers=request.headers,
        data=request.body.encode("utf-8") if request.body else None,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
    )
    try:
        body, error = _read_start(response)
    finally:
        response.close()
    return Answer(response.status_code, body, response.headers, error)


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
        with self._lock:
            return self._hosts.setdefault(host, threading.BoundedSemaphore(self.per_host))

    def submit(self, send, delivery, lease, timeout, clock):
        """Start one attempt; the future's result is a ``Sent``, never an exception."""
        return self.executor.submit(_attempt, send, delivery, lease, timeout, self._gate(delivery.url), clock)

    def shutdown(self):
        self.executor.shutdown(wait=True)


def _attempt(send, delivery, lease, timeout, gate, clock):
    with gate:
        at, started = clock(), time.monotonic()
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
