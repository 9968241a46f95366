"""Sending deliveries: claim due rows with a lease, send them, record every attempt.

``deliver_due`` is one sweep of the worker. It claims due rows (SQLite: one
``UPDATE … RETURNING`` in an immediate transaction; PostgreSQL: ``SELECT … FOR UPDATE SKIP
LOCKED`` then the update, in one transaction), so several workers never send one row twice.
It sends them on a bounded thread pool with a cap per destination host, with connect and
read timeouts and without following redirects, and records each attempt.

The outcome of an attempt: 2xx is delivered, unless the delivery has a ``success_body`` its
answer's body does not match (TikTok answers 200 with an error code), which fails at once.
Network errors, timeouts, 5xx, 408 and 429 (and every 4xx with ``retry_4xx``) are retried
after the next of ``TRACKER_RETRY_DELAYS`` (±10% jitter; a 429's or 503's ``Retry-After``
replaces it), and fail after the last. Any other status fails at once, 3xx included: a
redirect is not followed, since a postback URL that redirects is a configuration error the
user should see, and following it could send the data elsewhere.
"""

import datetime
import functools
import logging
import random
import re
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..db import Prepared, Rows, db, is_postgres
from ..errors import ValidationError, found
from ..masking import mask_headers, mask_secrets
from ..models import Delivery, DeliveryAttempt, utcnow
from .destinations import Policy
from .sender import SendPool, Timeouts, header, lease_margin, send_http

logger = logging.getLogger(__name__)

LEASE_LOST = "no answer recorded: the worker stopped while sending (its lease expired)"


@dataclass(frozen=True)
class Settings:
    """The worker's knobs, read from the app config."""

    retry_delays: tuple
    connect_timeout: float
    read_timeout: float
    lease: float
    concurrency: int
    per_host: int
    batch: int
    interval: float

    @classmethod
    def from_config(cls, config):
        return cls(
            tuple(config["TRACKER_RETRY_DELAYS"]),
            config["TRACKER_DELIVERY_CONNECT_TIMEOUT"],
            config["TRACKER_DELIVERY_READ_TIMEOUT"],
            config["TRACKER_DELIVERY_LEASE"],
            config["TRACKER_DELIVERY_CONCURRENCY"],
            config["TRACKER_DELIVERY_PER_HOST"],
            config["TRACKER_DELIVERY_BATCH"],
            config["TRACKER_WORKER_INTERVAL"],
        )


def retry_after_seconds(value, now):
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from ``now``, or None."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return max(0.0, (when - now).total_seconds())


def next_step(
    status_code, attempt_number, delays, now, retry_after=None, rand=random.random, retry_4xx=False
):
    """``(status, next_attempt_at)`` after attempt number ``attempt_number`` (1-based).

    ``status_code`` None means a network error or timeout; ``retry_4xx`` retries every 4xx.
    """
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", now
    retryable = (
        status_code is None
        or status_code in (408, 429)
        or not 100 <= status_code < 500
        or (retry_4xx and status_code >= 400)
    )
    if not retryable or attempt_number > len(delays):
        return "failed", now
    delay = delays[attempt_number - 1] * (0.9 + 0.2 * rand())
    if status_code in (429, 503) and retry_after is not None:
        wait_for = retry_after_seconds(retry_after, now)
        if wait_for is not None:
            delay = min(wait_for, 7 * 86400)
    return "retrying", now + datetime.timedelta(seconds=delay)


@functools.lru_cache(maxsize=256)
def _pattern(success_body):
    return re.compile(success_body)


def accepted(result):
    """True when an attempt delivered: a 2xx whose body matches the delivery's ``success_body``."""
    answer = result.answer
    if answer is None or not 200 <= answer.status_code < 300:
        return False
    pattern = result.delivery.success_body
    return not pattern or _pattern(pattern).search(_response_text(answer)) is not None


def _error_text(result):
    if result.answer is None:
        return result.error
    code = result.answer.status_code
    if 200 <= code < 300:
        if not accepted(result):
            return "HTTP %d, but the answer does not match success_body %s: %s" % (
                code,
                result.delivery.success_body,
                _response_text(result.answer)[:1000] or "(empty)",
            )
        return result.answer.error
    if 300 <= code < 400:
        location = header(result.answer, "Location") or ""
        return "HTTP %d: redirect to %s (redirects are not followed)" % (code, location[:500] or "?")
    return "HTTP %d" % code


def _response_text(answer):
    if answer is None:
        return ""
    return answer.body.decode("utf-8", "replace").replace("\x00", "")


def record(results, settings, clock):
    """Save the attempts of ``results`` and move each delivery to its next status, in one
    transaction. The common case, delivered, is one UPDATE per claim; others go one by one."""
    now = clock()
    unsent = [result for result in results if result.unsent]
    results = [result for result in results if not result.unsent]
    delivered, others = {}, []
    for result in results:
        if accepted(result):
            delivered.setdefault(result.delivery.claim_token, []).append(result)
        else:
            others.append(result)
    with db.atomic():
        if results:
            _insert_attempts(results)
        for token, group in delivered.items():
            _advance_delivered(group, token, now)
        for result in others:
            _advance(result, settings, now)
        for result in unsent:
            _give_back(result, now)
    for result in results:
        ok = accepted(result)
        level = logging.DEBUG if ok else logging.INFO
        if not logger.isEnabledFor(level):
            continue
        headers = mask_headers(result.delivery.headers) if not ok and result.delivery.headers else ""
        logger.log(
            level,
            "delivery %d %s %s%s → %s",
            result.delivery.id,
            result.delivery.method,
            mask_secrets(result.delivery.url[:200]),
            " %s" % headers if headers else "",
            result.answer.status_code if ok else _error_text(result)[:300],
        )


def _insert_attempts(results):
    """One multi-row INSERT: peewee's query building would cost more than the insert itself.
    In the caller's transaction, which goes on to write the deliveries' outcomes."""
    table, fields = DeliveryAttempt._meta.table_name, DeliveryAttempt._meta.fields
    columns = [
        fields[name].column_name
        for name in ("delivery", "at", "status_code", "duration_ms", "error", "response")
    ]
    row = "(%s)" % ", ".join([db.param] * len(columns))
    sql = 'INSERT INTO "%s" (%s) VALUES %s' % (
        table,
        ", ".join('"%s"' % c for c in columns),
        ", ".join([row] * len(results)),
    )
    at = DeliveryAttempt.at
    params = []
    for r in results:
        params += [
            r.delivery.id,
            at.db_value(r.at),
            r.answer.status_code if r.answer else None,
            r.duration_ms,
            _error_text(r),
            _response_text(r.answer),
        ]
    if is_postgres():  # sent with the transaction's next statement: one round trip fewer
        db.obj.defer(sql, params)
    else:
        db.execute_sql(sql, params)


# The worker's statements per delivery, their SQL made once (db.Prepared): peewee building an
# UPDATE cost the sweep's thread more than running it, and that thread shares the GIL with the
# sending threads (tests/bench/deliveries.py).
@functools.lru_cache(maxsize=None)  # at most one per claim size: TRACKER_DELIVERY_BATCH
def _advance_delivered_statement(count):
    """The UPDATE that marks ``count`` deliveries of one claim delivered (slots ``id0``…)."""
    return Prepared(
        lambda slot: Delivery.update(
            status="delivered",
            next_attempt_at=slot("now"),
            lease_until=None,
            attempts_count=Delivery.attempts_count + 1,
            last_error="",
            updated_at=slot("now"),
        ).where(
            Delivery.id.in_([slot("id%d" % i) for i in range(count)]),
            Delivery.status == "sending",
            Delivery.claim_token == slot("token"),
        )
    )


def _advance_delivered(results, token, now):
    values = {"id%d" % i: r.delivery.id for i, r in enumerate(results)}
    values.update(now=Delivery.updated_at.db_value(now), token=token)
    cursor = _advance_delivered_statement(len(results)).execute(values)
    updated = cursor.rowcount
    cursor.close()
    if updated < len(results):
        _log_fenced(results, "delivered")


def _log_fenced(results, outcome):
    ids = ", ".join(str(r.delivery.id) for r in results)
    logger.warning(
        "delivery %s: this attempt (%s) finished after its lease was taken over; it is kept in "
        "the attempt log and changes nothing",
        ids,
        outcome,
    )


def _give_back(result, now):
    """A claimed row not sent (too little of its lease was left for a whole send): due again
    at once, no attempt counted."""
    delivery = result.delivery
    (
        Delivery.update(
            status="retrying" if delivery.attempts_count else "queued",
            next_attempt_at=now,
            lease_until=None,
            updated_at=now,
        )
        .where(
            Delivery.id == delivery.id,
            Delivery.status == "sending",
            Delivery.claim_token == delivery.claim_token,
        )
        .execute()
    )


def _advance(result, settings, now):
    delivery, answer = result.delivery, result.answer
    code = answer.status_code if answer is not None else None
    retry_after = header(answer, "Retry-After") if answer is not None else None
    if code is not None and 200 <= code < 300:  # a 2xx that says it failed: resending won't help
        status, next_at = "failed", now
    elif result.refused:  # an address outgoing requests may not reach: so it stays
        status, next_at = "failed", now
    else:
        status, next_at = next_step(
            code,
            delivery.attempts_count + 1,
            settings.retry_delays,
            now,
            retry_after,
            retry_4xx=delivery.retry_4xx,
        )
    updated = (
        Delivery.update(
            status=status,
            next_attempt_at=next_at,
            lease_until=None,
            attempts_count=Delivery.attempts_count + 1,
            last_error=_error_text(result),
            updated_at=now,
        )
        .where(
            Delivery.id == delivery.id,
            Delivery.status == "sending",
            Delivery.claim_token == delivery.claim_token,
        )
        .execute()
    )
    if not updated:
        _log_fenced([result], status)


def reclaim_expired(now, retry_delays=None):
    """Put back deliveries whose worker died mid-send (lease expired): the lost attempt counts,
    so one past the retry limit (``retry_delays``' length) fails instead; returns how many."""
    expired = (Delivery.status == "sending") & (Delivery.lease_until < now)
    if not Delivery.select(Delivery.id).where(expired).exists():
        return 0
    over = Delivery.attempts_count >= (len(retry_delays) if retry_delays is not None else 2**31)
    rows = []
    with db.atomic():
        for status, which in (("failed", expired & over), ("retrying", expired & ~over)):
            changed = (
                Delivery.update(
                    status=status,
                    next_attempt_at=now,
                    lease_until=None,
                    attempts_count=Delivery.attempts_count + 1,
                    last_error=LEASE_LOST,
                    updated_at=now,
                )
                .where(which)
                .returning(Delivery.id)
                .execute()
            )
            rows += [(row.id, status) for row in changed]
        if rows:
            DeliveryAttempt.insert_many(
                [{"delivery": delivery_id, "at": now, "error": LEASE_LOST} for delivery_id, _ in rows]
            ).execute()
    for delivery_id, status in rows:
        then = "sending it again" if status == "retrying" else "failed: no retry left"
        logger.warning("delivery %d: %s; %s", delivery_id, LEASE_LOST, then)
    return len(rows)


CLAIMED = (
    Delivery.id,
    Delivery.claim_token,
    Delivery.method,
    Delivery.url,
    Delivery.headers,
    Delivery.body,
    Delivery.attempts_count,
    Delivery.success_body,
    Delivery.retry_4xx,
)
CLAIMED_ROWS = Rows(Delivery, fields=CLAIMED)


def _due(slot):
    return Delivery.select(Delivery.id).where(
        Delivery.status.in_(("queued", "retrying")), Delivery.next_attempt_at <= slot("now")
    )


def _claim_query(slot):
    """One statement: lease the first ``limit`` due rows (PostgreSQL: those no other worker
    holds locked, ``FOR UPDATE SKIP LOCKED``) and return them."""
    due = _due(slot).order_by(Delivery.next_attempt_at).limit(slot("limit"))
    if is_postgres():
        due = due.for_update(skip_locked=True)
    return (
        Delivery.update(
            status="sending", lease_until=slot("lease"), claim_token=slot("token"), updated_at=slot("now")
        )
        .where(Delivery.id.in_(due))
        .returning(*CLAIMED)
    )


ANY_DUE = Prepared(lambda slot: _due(slot).limit(1))
CLAIM = Prepared(_claim_query)


def claim(now, limit, lease_seconds):
    """Lease up to ``limit`` due deliveries to this worker; returns ``(rows, lease_until)``."""
    lease = now + datetime.timedelta(seconds=lease_seconds)
    token = secrets.randbits(62) or 1  # this claim's fencing token (0: never claimed)
    at = Delivery.next_attempt_at.db_value
    values = {"now": at(now), "limit": limit, "lease": at(lease), "token": token}
    if not ANY_DUE.first(values):  # nothing due: no write transaction
        return [], lease
    rows = [CLAIMED_ROWS.build(row)[0] for row in CLAIM.execute(values).fetchall()]
    return rows, lease


def deliver_due(config, now=None, send=None, stop=None, pool=None):
    """One sweep: claim due deliveries and send them until none are due; returns the attempts made.

    ``config`` is the app's config; ``now`` fixes the clock (tests); ``send(delivery, timeout)``
    returns an ``Answer`` or raises (default: ``send_http``); ``stop`` (an Event) stops
    claiming while in-flight sends finish; ``pool`` is a ``SendPool`` to reuse.
    """
    settings = Settings.from_config(config)
    clock = (lambda: now) if now is not None else utcnow
    own_pool = pool is None
    pool = pool or SendPool(settings.concurrency, settings.per_host)
    try:
        send = send or functools.partial(send_http, policy=Policy.from_config(config))
        return _sweep(settings, clock, send, stop, pool)
    finally:
        if own_pool:
            pool.shutdown()


def _sweep(settings, clock, send, stop, pool):
    reclaim_expired(clock(), settings.retry_delays)
    timeout = Timeouts(settings.connect_timeout, settings.read_timeout)
    margin = lease_margin(settings.lease, timeout)
    window = max(settings.batch, settings.concurrency * 2)
    pending, attempts, drained, last_claim = {}, 0, False, float("-inf")
    while True:
        stopping = stop is not None and stop.is_set()
        room = window - len(pending)
        may_claim = not drained or time.monotonic() - last_claim >= settings.interval
        if not stopping and may_claim and room >= window // 2:
            finish_by = time.monotonic() + settings.lease - margin
            rows, lease = claim(clock(), room, settings.lease)
            last_claim, drained = time.monotonic(), len(rows) < room
            for row in rows:
                pending[pool.submit(send, row, lease, timeout, clock, finish_by)] = row
        if not pending:
            if drained or stopping:
                return attempts
            continue
        done, _ = wait(pending, timeout=settings.interval, return_when=FIRST_COMPLETED)
        if done:
            time.sleep(0.002)  # let a few more finish, to record them in one transaction
            done = [future for future in pending if future.done()]
            results = [future.result() for future in done]
            record(results, settings, clock)
            for future in done:
                del pending[future]
            unsent = sum(1 for result in results if result.unsent)
            attempts += len(results) - unsent  # a row given back unsent was no attempt
            if unsent == len(results):
                # nothing fit in the lease: claim again after a pause, not at once (also when the
                # rows given back finish in several batches, as they do on a loaded machine)
                drained = True


def retry(delivery_id, now=None):
    """Queue a delivery again now (the same request), with a fresh retry schedule."""
    now = now or utcnow()
    delivery = found(Delivery, Delivery.id == delivery_id, what="delivery %d" % delivery_id)
    if delivery.status == "sending":
        raise ValidationError("delivery %d is being sent right now" % delivery_id, 422)
    (
        Delivery.update(
            status="queued",
            next_attempt_at=now,
            attempts_count=0,
            lease_until=None,
            last_error="",
            updated_at=now,
        )
        .where(Delivery.id == delivery_id, Delivery.status != "sending")
        .execute()
    )
    logger.info("delivery %d queued again (was %s)", delivery_id, delivery.status)
    return Delivery.get_by_id(delivery_id)
