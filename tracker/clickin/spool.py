"""The click spool (DESIGN §4.8): where a click waits when the database cannot take it.

When the click's INSERT fails (SQLite locked past ``TRACKER_CLICK_BUSY_MS``, a full disk,
PostgreSQL down, restarting or holding a lock past its ``lock_timeout``), ``ClickSpool.append``
writes the click, as the INSERT's own values, as one JSON line to ``clicks.jsonl`` in the
spool folder and fsyncs it before the visitor gets the redirect.

Every web process of the node may append; one drains at a time (an ``flock`` on ``.drain``),
on a thread of its own (``Drainer``), so the node that spooled a click is the one that writes
it. A drain renames ``clicks.jsonl`` to ``batch-<ns>.jsonl`` (appenders then start a new
file), waits for an appender still writing into the renamed file, and writes the batches
oldest first, each click with its click postbacks' deliveries in one transaction, skipping a
click already stored (the click id is unique): exactly once, however often a drain stops half
way. A line the database refuses for a reason other than being away (it will never be
accepted) moves to ``rejected/`` and the log says so.

The write-behind (``TRACKER_CLICK_BATCH_MS`` > 0) sends every click of a flow without click
postbacks this way too, not fsynced (durable as the database's asynchronous commit): the web
process answers it once the line is written, and its drainer writes the clicks of each
``TRACKER_CLICK_BATCH_MS`` together, in one transaction (one INSERT of them all on PostgreSQL).
Any other request to the node first writes what waits (``ClickSpool.settle``), so a postback or
a read of the click log never misses a click the node answered before it.

Appenders hold an exclusive ``flock`` on the file while they write, and check that the file
they locked is still ``clicks.jsonl``: a drain that renamed it meanwhile has read it already.
"""

import datetime
import fcntl
import json
import logging
import os
import threading
import time

from peewee import SQL, DateTimeField, InterfaceError, OperationalError

from ..db import db, default_timeouts, is_postgres
from ..models import Click, Flow, utcnow
from ..operations.metrics import SPOOL_RENAMES, folder_lock, spool_depth
from ..postbacks import outbox
from ..reports import rollups

logger = logging.getLogger(__name__)

ACTIVE = "clicks.jsonl"
LOCK = ".drain"
REJECTED = "rejected"
# A click id whose time is this recent may still be waiting in some node's spool (§4.8).
SPOOL_WINDOW = datetime.timedelta(minutes=10)
CLOCK_SKEW = datetime.timedelta(minutes=1)  # another node's clock may run a little ahead
BATCH = 500  # write-behind clicks written in one transaction, at most
BYPASS = 1.0  # seconds a process spools its clicks without asking the database, after it failed one
DATETIME_COLUMNS = {f.name for f in Click._meta.sorted_fields if isinstance(f, DateTimeField)} | {
    "unique_since"
}


def click_id_time(click_id):
    """When a click id was made (its first 9 base-36 characters are Unix milliseconds), as a
    naive UTC datetime; None for a value that is no click id of ours."""
    if not click_id or len(click_id) < 9 or len(click_id) > 32 or not click_id.isascii():
        return None
    try:
        ms = int(click_id[:9], 36)
        return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
    except (ValueError, OverflowError):
        return None


def may_be_spooled(click_id, now=None):
    """True when ``click_id``, not in the database, may still wait in a spool: it was made in
    the last ten minutes. Its postback then answers 503 (retry), never 404."""
    made = click_id_time((click_id or "").lower())
    now = now or utcnow()
    return made is not None and now - SPOOL_WINDOW <= made <= now + CLOCK_SKEW


def _json_default(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError("%r is not JSON serializable" % type(value).__name__)


def encode(values, batched=False):
    """A click's INSERT values (database form) as one spool line (bytes, ending in a newline);
    ``batched``: a click of the write-behind (``TRACKER_CLICK_BATCH_MS``), not one the database
    failed."""
    line = {"v": 1, "click": values, "batched": True} if batched else {"v": 1, "click": values}
    return (json.dumps(line, default=_json_default, separators=(",", ":")) + "\n").encode()


def is_batched(line):
    """True for the line of a write-behind click (``encode``'s ``batched``)."""
    return line.endswith(b',"batched":true}')


def decode(line):
    """A spool line back into the click's INSERT values."""
    values = json.loads(line)["click"]
    for name in DATETIME_COLUMNS:
        if values.get(name):
            values[name] = datetime.datetime.fromisoformat(values[name])
    if "days" in values:  # PostgreSQL's partition bounds (record.click_values)
        values["days"] = [datetime.datetime.fromisoformat(day) for day in values["days"]]
        values.setdefault("ids_until", "z" * 10)  # a line spooled before that bound: none
    return values


class SpoolError(Exception):
    """The spool itself could not take the click (its disk is full, its folder unwritable)."""


class ClickSpool:
    """The spool folder of this node, its appenders and its drain."""

    def __init__(self, folder, batch_ms=0):
        self.folder = folder
        self.active = os.path.join(folder, ACTIVE)
        self.failures = 0  # clicks this process could neither store nor spool
        self.batch_ms = batch_ms  # TRACKER_CLICK_BATCH_MS: 0 writes each click at once
        self.drainer = Drainer(self, gather=batch_ms / 1000)
        self.bypass_until = 0.0

    def trip(self):
        """The database just failed a click: for the next ``BYPASS`` seconds this process's
        clicks go straight to the spool, so that under a long lock each visitor does not wait
        TRACKER_CLICK_BUSY_MS for it in turn (a sync worker answers one click at a time)."""
        self.bypass_until = time.monotonic() + BYPASS

    def bypassing(self):
        """True while clicks skip the database (see ``trip``)."""
        return self.bypass_until and time.monotonic() < self.bypass_until

    def append(self, values, batched=False):
        """Append one click (its INSERT values) and fsync it; wakes this process's drainer.
        ``batched``: a write-behind click, not fsynced (written to the database within
        ``TRACKER_CLICK_BATCH_MS``, durable as the database's asynchronous commit is, see
        ``db.ASYNC_COMMIT``). Raises ``SpoolError`` when the spool cannot be written."""
        line = encode(values, batched)
        try:
            try:
                self._append(line, sync=not batched)
            except FileNotFoundError:  # no folder yet (made on the first click, not stat'ed on each)
                os.makedirs(self.folder, exist_ok=True)
                self._append(line, sync=not batched)
        except OSError as exc:
            self.failures += 1
            raise SpoolError("%s (%d click(s) lost by this process so far)" % (exc, self.failures)) from exc
        self.drainer.wake()

    def _append(self, line, sync):
        while True:
            fd = os.open(self.active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.stat(self.active).st_ino
                except FileNotFoundError:
                    current = None
                opened = os.fstat(fd)
                if current != opened.st_ino:
                    continue  # a drain took this file meanwhile: append to the new one
                size = opened.st_size
                try:
                    written = 0
                    while written < len(line):
                        written += os.write(fd, line[written:])
                    if sync:
                        os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, size)  # no torn line for the next click to follow
                    raise
                return
            finally:
                os.close(fd)

    def depth(self):
        """How many clicks wait in the spool (the lines of its files)."""
        return spool_depth(self.folder)

    def batches(self):
        """The spooled files a drain writes, oldest first."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return [os.path.join(self.folder, n) for n in sorted(names) if n.startswith("batch-")]

    def drain(self, wait=False):
        """Write every spooled click to the database, oldest first; returns how many were
        written, or None when another process of this node is draining (``wait``: wait for it,
        then drain what is left). Raises when the database is still away (what was written
        stays written; the rest waits)."""
        if not os.path.isdir(self.folder):
            return 0
        with folder_lock(self.folder, LOCK, wait=wait) as held:
            if not held:
                return None
            self._take_active()
            return sum(self._drain_batch(path) for path in self.batches())

    def settle(self):
        """Write this node's write-behind clicks now, if any wait: every request but a click's
        (``init_app``) sees the clicks this node answered before it (a postback right after its
        click, the click log). Waits for a drain under way. Without ``TRACKER_CLICK_BATCH_MS``
        it does nothing (clicks the database failed wait for it in the drainer's thread); when
        the database is away the request goes on without them (a postback then answers 503)."""
        if not self.batch_ms or not self.pending():
            return
        try:
            db.connect(reuse_if_open=True)
            self.drain(wait=True)
        except (OperationalError, InterfaceError):
            pass  # the drainer's thread says so in the log, and retries
        except Exception:
            logger.exception("could not write the click spool before a request")

    def pending(self):
        """True when a file of the spool holds clicks (cheaper than ``depth``: nothing read)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return False
        if any(name.startswith("batch-") for name in names):
            return True
        try:
            return os.path.getsize(self.active) > 0
        except FileNotFoundError:
            return False

    def _take_active(self):
        if os.path.exists(self.active) and os.path.getsize(self.active) > 0:
            with folder_lock(self.folder, SPOOL_RENAMES):  # never counted mid-rename (spool_depth)
                os.rename(self.active, os.path.join(self.folder, "batch-%020d.jsonl" % time.time_ns()))

    def _drain_batch(self, path):
        with open(path, "rb+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # an appender that opened it before the rename finishes
            lines = f.read().splitlines()
        written = index = spooled = 0  # spooled: clicks the database had failed
        while index < len(lines):
            run = 0  # write-behind clicks in a row: written together
            while run < BATCH and index + run < len(lines) and is_batched(lines[index + run]):
                run += 1
            try:
                if run:
                    written += self._write_run(lines[index : index + run])
                    index += run
                else:
                    spooled += self._write_one(lines[index])
                    index += 1
            except (OperationalError, InterfaceError):
                self._keep(path, lines[index:])
                raise
        os.unlink(path)
        if spooled:  # the write-behind's own clicks are the usual way, not news for the log
            logger.info("wrote %d spooled click(s) to the database", spooled)
        return written + spooled

    def _write_run(self, lines):
        """Write write-behind clicks together; one at a time (``_write_one``) when the database
        refuses one of them. Raises when the database is away."""
        try:
            return write_batched(lines)
        except (OperationalError, InterfaceError):
            raise
        except Exception:  # a line the database refuses: find it, one at a time
            return sum(self._write_one(line) for line in lines)

    def _write_one(self, line):
        """Write one spooled click; 0 when it is stored already or refused (then kept in
        ``rejected/``). Raises when the database is away."""
        try:
            return write_spooled(line)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("a spooled click the database refuses; kept in %s/", REJECTED)
            self._reject(line)
            return 0

    def _keep(self, path, rest):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"".join(line + b"\n" for line in rest))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _reject(self, line):
        folder = os.path.join(self.folder, REJECTED)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "clicks.jsonl"), "ab") as f:
            f.write(line + b"\n")


def write_spooled(line):
    """Write one spooled click, with its click postbacks' deliveries, in one transaction;
    returns 1, or 0 when the click is stored already."""
    from .record import insert_values  # record imports this module

    values = decode(line)
    with db.atomic():
        if Click.select(SQL("1")).where(Click.click_id == values["click_id"]).exists():
            return 0
        is_unique = insert_values(values)
        flow = Flow.get_or_none(Flow.id == values["flow"])
        if flow is not None:
            click = Click(__no_default__=True)
            click.__data__ = {f.name: f.python_value(values.get(f.name)) for f in Click._meta.sorted_fields}
            click.is_unique = is_unique
            flow.source = flow.traffic_source if flow.traffic_source_id else None
            outbox.enqueue_for_click(click, flow, now=click.created_at)
            # a click written after its hour was rolled up: reports read that hour raw until
            # the worker rolls it up again
            rollups.mark([(click.created_at, flow.id)])
    return 1


def write_batched(lines):
    """Write write-behind clicks (flows without click postbacks) in one transaction: on
    PostgreSQL with one INSERT of the lines as they are (``record.insert_batch``), on SQLite each
    with the click path's own INSERT; returns how many were written (a click stored already is
    skipped)."""
    from .record import INSERT_CLICK_NO_RETURNING, insert_batch  # record imports this module

    if is_postgres():
        with db.atomic():
            written = insert_batch(lines)
            rollups.mark(written)
        return len(written)
    rows = [decode(line) for line in lines]
    with db.atomic():
        stored = {
            click_id
            for (click_id,) in Click.select(Click.click_id)
            .where(Click.click_id.in_([values["click_id"] for values in rows]))
            .tuples()
        }
        rows = [values for values in rows if values["click_id"] not in stored]
        # oldest first: each is_unique sees the clicks before it
        INSERT_CLICK_NO_RETURNING.execute_many(rows)
        rollups.mark([(values["created_at"], values["flow"]) for values in rows])
    return len(rows)


class Drainer:
    """The thread that drains the spool while it holds clicks, started when this process
    spools one (``wake``) or finds some left by an earlier process (``resume``). ``gather``:
    seconds it waits before each drain, so that the write-behind's clicks of that time are
    written together (``TRACKER_CLICK_BATCH_MS``); 0 drains at once."""

    def __init__(self, spool, pause=0.2, longest_pause=2.0, gather=0.0):
        self.spool, self.pause, self.longest_pause, self.gather = spool, pause, longest_pause, gather
        self._lock = threading.Lock()
        self._thread = None
        self._pending = False

    def wake(self):
        """Make sure a drain runs after this moment."""
        with self._lock:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spool-drain", daemon=True)
                self._thread.start()

    def resume(self):
        """Start draining when the spool holds clicks (at a web process's start)."""
        if self.spool.depth():
            self.wake()

    def _run(self):
        pause = self.pause
        while True:
            time.sleep(self.gather)
            with self._lock:
                self._pending = False
            failed = False
            try:
                db.connect(reuse_if_open=True)
                default_timeouts()  # a pooled connection the click path cut short
                self.spool.drain()
                pause = self.pause
            except Exception as exc:
                logger.warning("the click spool waits for the database: %s", str(exc).strip()[:300])
                pause, failed = min(pause * 2, self.longest_pause), True
            finally:
                try:
                    db.close()  # this thread's own connection (back to the pool on PostgreSQL)
                except Exception:
                    logger.exception("could not close the drain's database connection")
            if not self.spool.pending():
                with self._lock:
                    if not self._pending:
                        self._thread = None
                        return
                continue
            if failed or not self.gather:
                time.sleep(pause)
