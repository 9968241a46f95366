"""PostgreSQL's planner statistics and visibility map, kept fresh by the worker where
autovacuum does not.

A prepared statement's generic plan, and every plan, is made from the statistics of the moment:
a table (a month's click partition) last analyzed empty is planned as if it still were, and a
lookup of one click by its id then read the whole month by some other index (a postback's click,
measured at 20,000 clicks: 20,000 index entries and 4 ms of server time a postback, against one
entry). Autovacuum analyzes a table once 50 rows and a tenth of it changed; on a server that runs
without it (``autovacuum = off``, as this project's test machines do) nothing ever does. There
the worker does what autovacuum would, by the same rule, once a minute (``analyze_stale``, in
``tend``, scheduled by ``retention.schedule_partitions``); an ANALYZE also makes every
connection plan its prepared statements again. With autovacuum on it does nothing. A no-op on
SQLite, whose planner needs no statistics for these lookups.

Autovacuum also VACUUMs a table once 1,000 rows and a fifth of it were inserted (or 50 and a
fifth died), which marks its pages all-visible: an index-only scan then reads the index alone.
Reports read the combination rollup so (the index in drill-down order, ``models.COMBO_ORDER``);
on a table never vacuumed each of its rows costs a visit to the table too (``vacuum_stale``:
the 30-day country,os,sub1 over all flows at 10 M clicks, 4.7 M rows, see the README).
"""

from ..db import db, is_postgres
from . import partitions

# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor's defaults
THRESHOLD = 50
SCALE = 0.1
# autovacuum_vacuum_(insert_)threshold and _scale_factor's defaults
DEAD_THRESHOLD, DEAD_SCALE = 50, 0.2
INSERT_THRESHOLD, INSERT_SCALE = 1000, 0.2
INTERVAL = 60  # seconds between the worker's checks


def autovacuum_on():
    """True when the server analyzes tables by itself."""
    return db.execute_sql("SHOW autovacuum").fetchone()[0] == "on"


def stale_tables():
    """The tables (and click partitions) changed past autovacuum's rule since their last
    ANALYZE, most changed first."""
    rows = db.execute_sql(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE c.relkind = 'r' AND s.n_mod_since_analyze > %s + %s * greatest(c.reltuples, 0) "
        "ORDER BY s.n_mod_since_analyze DESC",
        (THRESHOLD, SCALE),
    )
    return [name for (name,) in rows]


def unvacuumed_tables():
    """The tables (and click partitions) with rows inserted or dead past autovacuum's rules
    since their last VACUUM, most changed first."""
    rows = db.execute_sql(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE c.relkind = 'r' AND (s.n_dead_tup > %s + %s * greatest(c.reltuples, 0) "
        "OR s.n_ins_since_vacuum > %s + %s * greatest(c.reltuples, 0)) "
        "ORDER BY s.n_ins_since_vacuum + s.n_dead_tup DESC",
        (DEAD_THRESHOLD, DEAD_SCALE, INSERT_THRESHOLD, INSERT_SCALE),
    )
    return [name for (name,) in rows]


def _left_to_the_server(autovacuum):
    """Whether the worker has nothing to do: on SQLite, or on a PostgreSQL server whose autovacuum
    runs (``autovacuum``: whether it does; None asks the server)."""
    return not is_postgres() or (autovacuum_on() if autovacuum is None else autovacuum)


def _each(command, tables, autovacuum):
    """``command`` (VACUUM or ANALYZE) on each of ``tables()``, unless the server's autovacuum
    does it (``autovacuum``: whether it runs; None asks the server); the tables it ran on."""
    if _left_to_the_server(autovacuum):
        return []
    names = tables()
    for name in names:
        db.execute_sql('%s "%s"' % (command, name))
    return names


def vacuum_stale(autovacuum=None):
    """VACUUM what ``unvacuumed_tables`` names (outside a transaction: the worker's connection
    is in autocommit); returns the tables vacuumed."""
    return _each("VACUUM", unvacuumed_tables, autovacuum)


def analyze_stale(autovacuum=None):
    """ANALYZE what ``stale_tables`` names; returns the tables analyzed."""
    return _each("ANALYZE", stale_tables, autovacuum)


def summarize_stale(autovacuum=None):
    """Summarize the click times' block ranges written since (``partitions.TIME_INDEX``), as
    autovacuum's ``autosummarize`` would: a VACUUM of a month comes only once a fifth of it is
    new, and until then the rollups' read of the last hour over every flow would read every
    range written since. Returns how many ranges were summarized."""
    if _left_to_the_server(autovacuum):
        return 0
    return partitions.summarize_new_ranges()


def tend(autovacuum=None):
    """The worker's minute job: ``vacuum_stale``, ``summarize_stale``, then ``analyze_stale``;
    what each did."""
    if not is_postgres():
        return []
    autovacuum = autovacuum_on() if autovacuum is None else autovacuum
    done = ["VACUUM " + name for name in vacuum_stale(autovacuum)]
    ranges = summarize_stale(autovacuum)
    if ranges:
        done.append("SUMMARIZE %s (%d block ranges)" % (partitions.TIME_INDEX, ranges))
    return done + ["ANALYZE " + name for name in analyze_stale(autovacuum)]
