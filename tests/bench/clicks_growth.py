"""Click-path benchmark as the table grows (PostgreSQL): the tracker's ``GET /r/<key>`` on an
empty click table and on one holding ``--rows`` clicks, beside the bare Flask 302, under wrk,
in the same run.

Run by hand from the project root (pytest does not collect tests/bench)::

    python tests/bench/clicks_growth.py --pg postgresql://postgres@127.0.0.1:5432/NAME \\
        [--rows 1000000] [--seconds 10] [--slices 5] [--runs 1] [--stats]

The three apps are served as ``clicks.py`` serves them and loaded in turn in rotating slices.
The grown table lives in the database ``NAME_rows<rows>``, made once (``generate_series`` in one
INSERT: about a minute per million rows here) and used again by later runs; its clicks are
spread over the 30 days before the load, on the bench flow, with ids naming their time as the
click path makes them, 8 user agents and a visitor per ~3 clicks, and then ``VACUUM ANALYZE``.
``--stats`` prints, for the grown database after the load, the size of the table and of each
index and the buffer cache hit ratios of the click table and its indexes during the load.

Printed: requests/s, p50/p99, worker CPU for each app; grown/empty and empty/bare. Targets
(issue 14): empty/bare >= 0.5, grown/empty >= 0.9, every answered click stored.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

from clicks import add_up, count_clicks, run_wrk, spread, start_bare, start_tracker  # noqa: E402

AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0.0.0 Safari/537.36 Edg/126",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
]
# Base-36 digits of a number in SQL: the click id's 9 time digits.
B36 = """CREATE OR REPLACE FUNCTION pg_temp.b36(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT string_agg(substr('0123456789abcdefghijklmnopqrstuvwxyz', ((n / (36::bigint ^ (8 - i))::bigint) %
36)::int + 1, 1), '' ORDER BY i) FROM generate_series(0, 8) i $$"""


def grown_url(args):
    parts = urlsplit(args.pg)
    return urlunsplit(parts._replace(path="/%s_rows%d" % (parts.path.lstrip("/"), args.rows)))


def ensure_database(url):
    import psycopg2

    admin = psycopg2.connect(args_pg_admin(url))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (urlsplit(url).path.lstrip("/"),))
        if cursor.fetchone() is None:
            cursor.execute('CREATE DATABASE "%s"' % urlsplit(url).path.lstrip("/"))
    admin.close()


def args_pg_admin(url):
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def fill(rows):
    """``prepare`` of the grown tracker: its flow's clicks up to ``rows``, once."""

    def prepare(server, link, db_url):
        import psycopg2

        have = count_clicks(db_url)
        if have >= rows:
            return
        conn = psycopg2.connect(db_url)
        conn.autocommit = True
        started = time.monotonic()
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM flow WHERE key = %s", (link.rsplit("/", 1)[1],))
            flow_id = cursor.fetchone()[0]
            cursor.execute(B36)
            agents = "ARRAY[%s]" % ", ".join("'%s'" % agent for agent in AGENTS)
            span_ms = 30 * 86400 * 1000
            cursor.execute(
                """INSERT INTO click SELECT
                    pg_temp.b36(t.ms) || substr(md5(g::text), 1, 16), %(flow)s,
                    to_timestamp(t.ms / 1000.0) AT TIME ZONE 'UTC',
                    '81.2.' || (g %% 250) || '.' || (g / 250 %% 250),
                    substr(md5((g / 3)::text), 1, 16), ({agents})[g %% 8 + 1], '', 'en-US',
                    'GB', 'United Kingdom', 'England', 'London', '', 'Andrews & Arnold', 20712, '', '',
                    'mobile', 'Apple', 'iPhone', 'iOS', '17.5', 'Mobile Safari', '17.5', false, g %% 3 = 0,
                    'g' || g, 'banner' || (g %% 50), '', '', '', '', 'bench', '', '', '', '',
                    '', '', '', '', '', '', '', '', '', '', 0,
                    '{{"sub1":"banner' || (g %% 50) || '","utm_source":"bench","gclid":"g' || g || '"}}',
                    '{{}}', '[]', NULL, NULL, NULL, NULL
                FROM generate_series(%(have)s + 1, %(rows)s) g,
                     LATERAL (SELECT (extract(epoch FROM now()) * 1000)::bigint - %(span)s
                                     + (g::bigint * 7919 %% %(span)s) AS ms) t""".format(agents=agents),
                {"flow": flow_id, "have": have, "rows": rows, "span": span_ms},
            )
            cursor.execute("VACUUM ANALYZE click")
        conn.close()
        print("grown table: %d clicks written in %.0f s" % (rows - have, time.monotonic() - started))

    return prepare


def io_counters(db_url):
    """Blocks read from disk or the OS cache vs found in shared buffers: the click table's
    partitions, and their indexes."""
    import psycopg2

    conn = psycopg2.connect(db_url)
    with conn.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce(sum(heap_blks_read), 0), coalesce(sum(heap_blks_hit), 0),
                      coalesce(sum(idx_blks_read), 0), coalesce(sum(idx_blks_hit), 0)
               FROM pg_statio_user_tables WHERE relname LIKE 'click%'"""
        )
        counters = cursor.fetchone()
    conn.close()
    return counters


def sizes(db_url):
    import psycopg2

    conn = psycopg2.connect(db_url)
    with conn.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)), c.relkind
               FROM pg_class c WHERE (c.relname LIKE 'click%') AND c.relkind IN ('r', 'i')
               AND pg_relation_size(c.oid) > 1000000 ORDER BY pg_relation_size(c.oid) DESC"""
        )
        rows = cursor.fetchall()
    conn.close()
    return rows


def one_run(args, run):
    workdir = tempfile.mkdtemp(prefix="tracker-bench-")
    servers = {}
    try:
        bare, bare_link = start_bare(workdir)
        servers["bare"] = (bare, bare_link, None)
        servers["empty"] = start_tracker(args, workdir, False, name="empty")
        url = grown_url(args)
        ensure_database(url)
        servers["grown"] = start_tracker(
            args, workdir, False, name="grown", db_url=url, prepare=fill(args.rows)
        )
        before = {name: count_clicks(db) for name, (_, _, db) in servers.items() if db}
        io_before = io_counters(url)
        slices = {name: [] for name in servers}
        seconds = max(1, args.seconds // args.slices)
        order = list(servers)
        for number in range(args.slices):
            shift = (number + run) % len(order)
            for name in order[shift:] + order[:shift]:
                server, link, _ = servers[name]
                slices[name].append(run_wrk(server, link, seconds, args.connections, args.threads))
        results = {name: add_up(parts, seconds) for name, parts in slices.items()}
        for server, _, _ in servers.values():
            server.stop()
        for name, (_, _, db) in servers.items():
            if db:
                results[name]["stored"] = count_clicks(db) - before[name]
        if args.stats:
            heap_read, heap_hit, idx_read, idx_hit = (
                b - a for a, b in zip(io_before, io_counters(url), strict=True)
            )
            print(
                "grown click table during the load: heap hit ratio %.3f (%d blocks read), index hit ratio "
                "%.3f (%d blocks read)"
                % (
                    heap_hit / max(heap_hit + heap_read, 1),
                    heap_read,
                    idx_hit / max(idx_hit + idx_read, 1),
                    idx_read,
                )
            )
            for name, size, kind in sizes(url):
                print("  %-45s %10s %s" % (name, size, "index" if kind == "i" else "table"))
    finally:
        for server, _, _ in servers.values():
            if server.process.poll() is None:
                server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results, rows):
    print("%-9s %10s %9s %9s %12s" % ("", "req/s", "p50 ms", "p99 ms", "worker CPU"))
    for name, r in results.items():
        print("%-9s %10.0f %9.2f %9.2f %9.2f ms" % (name, r["rps"], r["p50"], r["p99"], r["cpu_ms"]))
    for name in ("empty", "grown"):
        r = results[name]
        print("%s: clicks stored %d, 302s answered %d, sent %d" % (name, r["stored"], r["found"], r["sent"]))
    print(
        "ratio empty/bare %.2f, grown (%d rows)/empty %.2f"
        % (
            results["empty"]["rps"] / results["bare"]["rps"],
            rows,
            results["grown"]["rps"] / results["empty"]["rps"],
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", metavar="URL", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--stats", action="store_true")
    parser.add_argument("--geo", choices=("mmdb", "none"), default="mmdb")
    args = parser.parse_args(argv)
    runs = []
    for run in range(args.runs):
        print("== run %d/%d: PostgreSQL, %d rows" % (run + 1, args.runs, args.rows))
        results = one_run(args, run)
        report(results, args.rows)
        runs.append(results)
    print("== %d run(s): median (min–max)" % len(runs))
    empty_bare = [r["empty"]["rps"] / r["bare"]["rps"] for r in runs]
    grown_empty = [r["grown"]["rps"] / r["empty"]["rps"] for r in runs]
    print("empty/bare %s; grown/empty %s" % (spread(empty_bare), spread(grown_empty)))
    stored = all(
        r[name]["found"] <= r[name]["stored"] <= r[name]["sent"] for r in runs for name in ("empty", "grown")
    )
    met = stored and statistics.median(empty_bare) >= 0.5 and statistics.median(grown_empty) >= 0.9
    print(
        "targets (empty/bare >= 0.50, grown/empty >= 0.90, every click stored): %s"
        % ("met" if met else "NOT met")
    )
    return runs


if __name__ == "__main__":
    main()
