"""``tracker db backup PATH`` and ``tracker db restore PATH`` (DESIGN §4.9).

SQLite: the online backup API copies the database in one step, inside one read transaction,
so the copy is the database as it was when the backup began, while clicks keep being written
(WAL: a reader never blocks the writers). Copying page by page in several steps would restart
each time another process writes, which under a steady flow of clicks may be forever. The copy
is written beside PATH, checked (``PRAGMA quick_check``), then renamed into place.

PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, clicks go on) and
``pg_restore --clean --if-exists --single-transaction``; both must be on PATH, of the server's
major version or newer.

A restore goes into a stopped tracker: it refuses while another process has the database open.
It then upgrades the schema, so a backup made by an older version comes back current.
"""

import logging
import os
import re
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing  # a connection's own ``with`` ends a transaction, not the connection
from urllib.parse import urlparse, urlunparse

logger = logging.getLogger(__name__)


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why, in one line."""


def sqlite_path(url):
    """The file of a ``sqlite:///…`` URL, or None for another engine."""
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else None


def backup(url, path):
    """Write a consistent copy of the database at ``url`` to ``path``; returns a summary line."""
    started = time.monotonic()
    source = sqlite_path(url)
    if source is not None:
        backup_sqlite(source, path)
    else:
        run_pg("pg_dump", url, ["--format=custom", "--no-owner", "--file", path])
    return "backed up %s to %s (%.1f MB in %.1f s)" % (
        describe(url),
        path,
        os.path.getsize(path) / 1e6,
        time.monotonic() - started,
    )


def restore(url, path):
    """Replace the database at ``url`` with the backup at ``path`` (the tracker stopped)."""
    if not os.path.isfile(path):
        raise BackupError("no backup at %s" % path)
    started = time.monotonic()
    target = sqlite_path(url)
    if target is not None:
        restore_sqlite(path, target)
    else:
        refuse_if_pg_in_use(url)
        restore_pg(url, path)
    return "restored %s into %s in %.1f s" % (path, describe(url), time.monotonic() - started)


# What pg_restore --clean cannot drop one by one in a partitioned table (the click table's
# months, operations.partitions; the rollup tables' weeks, operations.rollup_weeks): a
# partition's primary key and indexes belong to the parent's, and go with it.
PARTITION = r"(click_(p\d{4}_\d{2}|default)|rollup_(click|combo)_(w\d{8}|default))"
PARTITION_DROP = re.compile(
    r"^(ALTER TABLE IF EXISTS ONLY public\.%s DROP CONSTRAINT|DROP INDEX IF EXISTS public\.%s_)"
    % (PARTITION, PARTITION)
)


def restore_pg(url, path):
    """``pg_restore --clean --if-exists`` in one transaction: its script (minus the drops a
    partitioned click table refuses, see ``PARTITION_DROP``) run by psql, all or nothing."""
    script = run_pg("pg_restore", None, ["--clean", "--if-exists", "--no-owner", "--file", "-", path])
    script = "\n".join(line for line in script.splitlines() if not PARTITION_DROP.match(line))
    run_pg("psql", url, ["--single-transaction", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--quiet"], script)


def describe(url):
    """The database named without its password."""
    parsed = urlparse(url)
    return urlunparse(parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[-1])) if parsed.password else url


def backup_sqlite(source, path):
    if not os.path.isfile(source):
        raise BackupError("no database at %s" % source)
    partial = "%s.%d.partial" % (path, os.getpid())
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # one step: one snapshot (see the module's docstring)
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            check_sqlite(dst, partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def restore_sqlite(path, target):
    with closing(sqlite3.connect("file:%s?mode=ro" % path, uri=True)) as src:
        check_sqlite(src, path)
        if not src.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone():
            raise BackupError("%s is not a tracker database (no schema_version table)" % path)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        with closing(sqlite3.connect(target, timeout=0.2, isolation_level=None)) as dst:
            # Exclusive locking mode: the lock, once taken, is kept until the connection closes,
            # and it can't be taken while any other process (a running tracker) has the file open.
            dst.execute("PRAGMA locking_mode=EXCLUSIVE")
            try:
                dst.execute("BEGIN EXCLUSIVE")
                dst.execute("SELECT count(*) FROM sqlite_master").fetchone()
                dst.execute("COMMIT")
            except sqlite3.OperationalError:
                raise BackupError(
                    "%s is in use by another process: stop the tracker (serve, web, worker) first" % target
                ) from None
            src.backup(dst)


def check_sqlite(conn, path):
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError("%s is not a SQLite database: %s" % (path, exc)) from None
    if result != "ok":
        raise BackupError("%s failed its integrity check: %s" % (path, result))


def refuse_if_pg_in_use(url):
    """A restore drops and recreates every table: not under a running tracker."""
    import psycopg2

    with closing(psycopg2.connect(url)) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        others = cursor.fetchone()[0]
    if others:
        raise BackupError(
            "%d other connection(s) to %s: stop the tracker (serve, web, worker) first"
            % (others, describe(url))
        )


def run_pg(program, url, arguments, stdin=None):
    """Run pg_dump, pg_restore or psql on the database at ``url`` (its password in the
    environment, not on the command line, where every user of the machine could read it), or on
    none (``url`` None); returns what it printed."""
    if shutil.which(program) is None:
        raise BackupError("%s is not installed (Debian: apt-get install postgresql-client)" % program)
    env = dict(os.environ)
    target = []
    if url is not None:
        parsed = urlparse(url)
        if parsed.password:
            env["PGPASSWORD"] = parsed.password
        netloc = parsed.netloc.rsplit("@", 1)[-1]
        target = ["--dbname", urlunparse(parsed._replace(scheme="postgresql", netloc=netloc))]
        if parsed.username:
            env["PGUSER"] = parsed.username
    result = subprocess.run(
        [program, *target, *arguments], env=env, capture_output=True, text=True, input=stdin
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["exit code %d" % result.returncode])[-1]
        raise BackupError("%s failed: %s" % (program, last))
    return result.stdout
