"""PostgreSQL's planner statistics, kept fresh by the worker where autovacuum does not.

A prepared statement's generic plan, and every plan, is made from the statistics of the moment:
a table (a month's click partition) last analyzed empty is planned as if it still were, and a
lookup of one click by its id then read the whole month by some other index (a postback's click,
measured at 20,000 clicks: 20,000 index entries and 4 ms of server time a postback, against one
entry). Autovacuum analyzes a table once 50 rows and a tenth of it changed; on a server that runs
without it (``autovacuum = off``, as this project's test machines do) nothing ever does. There
the worker does what autovacuum would, by the same rule, once a minute (``analyze_stale``,
scheduled by ``retention.schedule_partitions``); an ANALYZE also makes every connection plan
its prepared statements again. With autovacuum on it does nothing. A no-op on SQLite, whose
planner needs no statistics for these lookups.
"""

from ..db import db, is_postgres

# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor's defaults
THRESHOLD = 50
SCALE = 0.1
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


def analyze_stale(autovacuum=None):
    """ANALYZE what ``stale_tables`` names, unless the server's autovacuum does it (``autovacuum``:
    whether it runs; None asks the server). Returns the tables analyzed."""
    if not is_postgres() or (autovacuum_on() if autovacuum is None else autovacuum):
        return []
    names = stale_tables()
    for name in names:
        db.execute_sql('ANALYZE "%s"' % name)
    return names
