"""Benchmark of the read path (run by hand, not collected by pytest):

    python tests/bench/reports.py [--clicks 1000000] [--runs 5] [--database-url URL]

1. Loads ``--clicks`` clicks spread over 30 days and 20 flows (countries, devices, OS and
   browsers with realistic weights, ~5,000 sub1 values on a long tail, a unique external_id
   each, 3 % bots, landers and offers on half the flows) and ``--conversions`` conversions
   (default one per 50 clicks) with bulk SQL, then builds the rollups (timed). With
   ``--history N`` the database then also holds N earlier periods of rollups (the period's rows
   copied further back), as a tracker that has run for months does: rollups are never purged.
2. Times, median of ``--runs`` with the spread, a 30-day ``GET /api/v1/stats`` per dimension
   over all flows and over one flow, the dashboard's flows list and reports page; each beside
   the same request reading only the raw tables (the rollups switched off), measured in the
   same run.

SQLite in a temporary folder unless ``--database-url`` (or ``TRACKER_DATABASE_URL``) names
another database (PostgreSQL: it is emptied first). ``run(args)`` / ``main(argv)`` let
``tests/bench/run.py`` call it with small sizes.
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

COUNTRIES = [
    ("US", 30),
    ("GB", 8),
    ("DE", 8),
    ("FR", 6),
    ("BR", 8),
    ("IN", 10),
    ("ID", 5),
    ("MX", 5),
    ("CA", 4),
    ("AU", 3),
    ("ES", 3),
    ("IT", 3),
    ("PL", 2),
    ("TR", 2),
    ("PH", 3),
]
DEVICES = [("mobile", 62), ("desktop", 33), ("tablet", 5)]
OS_BY_DEVICE = {
    "mobile": [("Android", 70), ("iOS", 30)],
    "tablet": [("iOS", 60), ("Android", 40)],
    "desktop": [("Windows", 75), ("Mac OS X", 18), ("Linux", 4), ("Chrome OS", 3)],
}
BROWSERS = [
    ("Chrome", 60),
    ("Safari", 22),
    ("Samsung Internet", 6),
    ("Firefox", 5),
    ("Edge", 5),
    ("Opera", 2),
]
CONNECTIONS = [("Cellular", 55), ("Cable/DSL", 40), ("Corporate", 5)]
DIMENSIONS = [
    "day",
    "hour",
    "flow",
    "country",
    "device_type",
    "os",
    "browser",
    "sub1",
    "offer",
    "lander",
    "external_id&order=key",  # a page in value order (order=clicks reads every click)
    "ip&order=key",
    "country,os",
    "flow,offer",
    "os&f.country=US",
    "offer&f.country=US",
    "day&f.country=US",
    "sub1&f.country=US",
    "sub1&f.country=US&f.os=Android",  # the drill-down's third level
    "country,os,sub1",
]
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=None, help="default: clicks / 50")
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sub1", type=int, default=5000, help="distinct sub1 values")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("TRACKER_DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--skip-raw", action="store_true", help="do not time the raw-table reads")
    parser.add_argument("--only", help="time only the cases whose name contains this text")
    parser.add_argument(
        "--db",
        help="a SQLite file to keep: loaded on the first run, reused (its rollups rebuilt) on the next",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --database-url: reuse the database when it holds --clicks clicks (its rollups rebuilt)",
    )
    parser.add_argument(
        "--keep-rollups",
        action="store_true",
        help="with --db or --reuse: keep the rollups it holds, not rebuilt (timing reruns)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="earlier periods of rollups the database holds: the period's rollup rows copied this "
        "many times further back, --days apart (rollups stay for good; reports read only their period)",
    )
    return parser.parse_args(argv)


def weighted(rng, pairs, n):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=n)


def base36(number, width):
    out = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def load(args, end):
    """Bulk-insert the flows, offers, landers, clicks and conversions; returns the flow ids."""
    from tracker.db import db, is_postgres
    from tracker.models import CLICK_COPIED, Flow, Lander, Offer

    rng = random.Random(args.seed)
    start = end - datetime.timedelta(days=args.days)
    flows = [
        Flow.create(name="Flow %02d" % n, key="bench%02d" % n, offer_url="https://o.example/?c={clickid}")
        for n in range(args.flows)
    ]
    offers = [Offer.create(name="Offer %d" % n, url="https://o.example/%d" % n).id for n in range(6)]
    landers = [Lander.create(name="Lander %d" % n, url="https://l.example/%d" % n).id for n in range(4)]
    # flows get traffic on a long tail, sub1 values too (a few zones bring most clicks)
    flow_weights = [1 / (n + 1) ** 0.7 for n in range(args.flows)]
    sub_weights = [1 / (n + 1) ** 1.1 for n in range(args.sub1)]
    sub_values = ["zone%05d" % n for n in range(args.sub1)]
    columns = [
        "click_id",
        "flow_id",
        "created_at",
        "ip",
        "visitor",
        "user_agent",
        "referrer",
        "language",
        "country",
        "country_name",
        "region",
        "city",
        "zip",
        "isp",
        "asn",
        "carrier",
        "connection_type",
        "device_type",
        "brand",
        "model",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "is_bot",
        "is_unique",
        "external_id",
        "sub1",
        "sub2",
        "sub3",
        "sub4",
        "sub5",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "var1",
        "var2",
        "var3",
        "var4",
        "var5",
        "var6",
        "var7",
        "var8",
        "var9",
        "var10",
        "cost",
        "params",
        "cookies",
        "cut",
        "route_id",
        "lander_id",
        "offer_id",
        "lp_clicked_at",
    ]
    span = args.days * 86400
    batch = 20_000
    conversion_rate = (args.conversions if args.conversions is not None else args.clicks // 50) / max(
        args.clicks, 1
    )
    conversions = []
    ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile"
    pg = is_postgres()
    true, false = (True, False) if pg else (1, 0)
    started = time.perf_counter()
    made = 0
    while made < args.clicks:
        n = min(batch, args.clicks - made)
        # in the order of their time, as clicks are written (each batch the next slice of the span)
        low, high = span * made / args.clicks, span * (made + n) / args.clicks
        seconds = sorted(low + rng.random() * (high - low) for _ in range(n))
        flow_ix = rng.choices(range(args.flows), weights=flow_weights, k=n)
        countries = weighted(rng, COUNTRIES, n)
        devices = weighted(rng, DEVICES, n)
        browsers = weighted(rng, BROWSERS, n)
        connections = weighted(rng, CONNECTIONS, n)
        subs = rng.choices(sub_values, weights=sub_weights, k=n)
        rows = []
        for i in range(n):
            moment = start + datetime.timedelta(seconds=seconds[i])
            flow = flows[flow_ix[i]]
            ms = int((moment - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)
            click_id = base36(ms, 9) + base36(rng.getrandbits(80), 16)
            device = devices[i]
            os_name = weighted(rng, OS_BY_DEVICE[device], 1)[0]
            routed = flow_ix[i] % 2 == 0
            lander = landers[flow_ix[i] % len(landers)] if routed else None
            lp_at = moment + datetime.timedelta(seconds=20) if lander and rng.random() < 0.3 else None
            bot = rng.random() < 0.03
            cost = rng.choice((10_000, 20_000, 50_000)) if flow_ix[i] % 3 else 0
            rows.append(
                (
                    click_id,
                    flow.id,
                    moment,
                    "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                    "",
                    ua,
                    "",
                    "en",
                    countries[i],
                    "",
                    "",
                    "",
                    "",
                    "ISP %d" % rng.randrange(40),
                    None,
                    "",
                    connections[i],
                    device,
                    "",
                    "",
                    os_name,
                    "",
                    browsers[i],
                    "",
                    true if bot else false,
                    true if rng.random() < 0.85 else false,
                    "ext%d-%d" % (made + i, rng.getrandbits(20)),
                    subs[i],
                    "",
                    "",
                    "",
                    "",
                    "src%d" % (flow_ix[i] % 5),
                    "cpc",
                    "camp%d" % flow_ix[i],
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    cost,
                    "{}",
                    "{}",
                    "[]",
                    (flow_ix[i] % 3) + 1 if routed else None,
                    lander,
                    offers[rng.randrange(len(offers))] if routed else None,
                    lp_at,
                )
            )
            if rng.random() < conversion_rate:
                conversions.append(rows[-1])
        _insert(db, "click", columns, rows, pg)
        made += n
    load_clicks = time.perf_counter() - started
    conv_columns = [
        "click_id",
        "flow_id",
        "event",
        "payout",
        "currency",
        "status",
        "txid",
        "dedup_key",
        "is_conversion",
        "rate",
        "report_payout",
        "data",
        "raw",
        "created_at",
        "updated_at",
        *["click_" + name for name in CLICK_COPIED],
    ]
    copied = [columns.index(name) for name in CLICK_COPIED]
    rows = []
    for number, click in enumerate(conversions):
        click_id, flow_id, moment = click[0], click[1], click[2]
        status = rng.choices(("approved", "pending", "declined"), weights=(80, 15, 5))[0]
        payout = rng.choice((5_000_000, 12_500_000, 30_000_000))
        euro = rng.random() < 0.1
        at = moment + datetime.timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
        rows.append(
            (
                click_id,
                flow_id,
                "conversion",
                payout,
                "EUR" if euro else "USD",
                status,
                "tx%d" % number,
                "",
                true,
                "1.08" if euro else "1",
                payout * 108 // 100 if euro else payout,
                "{}",
                "{}",
                at,
                at,
                *[click[index] for index in copied],  # what reports need of the click
            )
        )
    _insert(db, "conversion", conv_columns, rows, pg)
    db.execute_sql("ANALYZE")
    return [f.id for f in flows], load_clicks, len(rows)


def _insert(db, table, columns, rows, pg):
    if not rows:
        return
    if pg:
        import io

        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(_pg_text(v) for v in row) + "\n")
        buffer.seek(0)
        with db.atomic():
            cursor = db.connection().cursor()
            cursor.copy_expert(
                'COPY "%s" (%s) FROM STDIN' % (table, ",".join('"%s"' % c for c in columns)), buffer
            )
        return
    sql = 'INSERT INTO "%s" (%s) VALUES (%s)' % (
        table,
        ",".join('"%s"' % c for c in columns),
        ",".join("?" * len(columns)),
    )
    with db.atomic():
        db.connection().executemany(sql, [tuple(_sqlite_value(v) for v in row) for row in rows])


def _pg_text(value):
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _sqlite_value(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    return value


def timed(call, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def shown(times):
    if not times:
        return "-"
    return "%7.0f ms (%0.f–%0.f)" % (statistics.median(times) * 1000, min(times) * 1000, max(times) * 1000)


def add_history(periods, days, end):
    """Make the database one that kept rollups of earlier periods, as a tracker run for a year
    holds them (rollups stay, DESIGN §4.9): the rollup rows of the ``days`` before ``end`` copied
    ``periods`` times, each ``days`` further back (an earlier run's copies removed first). A
    report of the period has nothing to read in them. Returns the seconds taken."""
    from tracker.db import db, is_postgres
    from tracker.models import RollupClick, RollupCombo

    started = time.perf_counter()
    first = end - datetime.timedelta(days=days)
    mark = "%s" if is_postgres() else "?"
    with db.atomic():
        for model, time_column in ((RollupClick, RollupClick.hour), (RollupCombo, RollupCombo.day)):
            model.delete().where(time_column < first).execute()
            table, column = model._meta.table_name, time_column.column_name
            names = [f.column_name for f in model._meta.sorted_fields if f.column_name != "id"]
            for number in range(1, periods + 1):
                back = days * number
                shifted = (
                    "%s - interval '%d days'" % (column, back)
                    if is_postgres()
                    else "datetime(%s, '-%d days')" % (column, back)
                )
                selected = [shifted if name == column else name for name in names]
                db.execute_sql(
                    "INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s >= %s AND %s < %s"
                    % (table, ", ".join(names), ", ".join(selected), table, column, mark, column, mark),
                    (time_column.db_value(first), time_column.db_value(end)),
                )
    return time.perf_counter() - started


def run(args):
    """Load, roll up, time; prints a table and returns ``{name: (rollup times, raw times)}``."""
    from tracker import create_app
    from tracker.db import db, is_postgres
    from tracker.migrations import upgrade
    from tracker.models import ALL_MODELS, Setting, User
    from tracker.operations import partitions
    from tracker.operations.statistics import tend
    from tracker.reports import rollups

    folder = None
    url = args.database_url
    if args.db:
        url = "sqlite:///" + os.path.abspath(args.db)
        folder = os.path.dirname(os.path.abspath(args.db))
    if not url:
        folder = tempfile.mkdtemp(prefix="bench-reports-")
        url = "sqlite:///" + os.path.join(folder, "tracker.db")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": folder or tempfile.mkdtemp(prefix="bench-reports-"),
            "TRACKER_DATABASE_URL": url,
            "TRACKER_API_TOKEN": "bench-token",
            "TRACKER_SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
        }
    )
    upgrade()
    db.connect(reuse_if_open=True)
    from tracker.models import Click, Conversion, Flow

    end = datetime.datetime(2026, 11, 28)
    if (args.db or args.reuse) and Click.select().count() == args.clicks:
        flows, load_seconds = [f.id for f in Flow.select().order_by(Flow.id)], 0.0
        conversions = Conversion.select().count()
        if not args.keep_rollups:
            rollups.RollupClick.delete().execute()
            rollups.RollupCombo.delete().execute()
            Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
        User.delete().execute()
    else:
        if is_postgres():
            tables = ", ".join('"%s"' % m._meta.table_name for m in ALL_MODELS)
            db.execute_sql("TRUNCATE %s RESTART IDENTITY CASCADE" % tables)
        else:
            for model in reversed(ALL_MODELS):
                model.delete().execute()
        if is_postgres():  # the worker keeps each month's partition made before its clicks come
            partitions.ensure_months(end - datetime.timedelta(days=args.days + 1), end)
        flows, load_seconds, conversions = load(args, end)
        # what the worker's minute job did meanwhile on a server without autovacuum (this
        # machine's): the click months vacuumed (their time index summarized) and analyzed
        print("after the load, the worker's minute job: " + (", ".join(tend()) or "nothing"), flush=True)
    started = time.perf_counter()
    rollups.advance(now=end + datetime.timedelta(minutes=5), budget=datetime.timedelta(days=args.days + 2))
    rollup_seconds = time.perf_counter() - started
    # What the worker's minute job does next on a server without autovacuum (this machine's):
    # VACUUM and ANALYZE what the load changed (the rollup pass VACUUMs its own tables since
    # 2026-11-30; before, the bench timed the reports' index-only scans reading the table too: the
    # 30-day country,os,sub1 over all flows at 1 M clicks on PostgreSQL 2.7 s, against 0.8 s).
    history_seconds = add_history(args.history, args.days, end) if args.history else None
    tended = tend()
    rollup_rows = rollups.RollupClick.select().count()
    combo_rows = rollups.RollupCombo.select().count()
    engine = "PostgreSQL" if is_postgres() else "SQLite"
    print(
        "%s: %d clicks, %d conversions, %d flows loaded in %.1f s; rollups built in %.1f s (%d rows, "
        "and %d combination rows)"
        % (
            engine,
            args.clicks,
            conversions,
            len(flows),
            load_seconds,
            rollup_seconds,
            rollup_rows,
            combo_rows,
        )
    )
    if history_seconds is not None:
        print("%d earlier periods of rollups copied in %.1f s" % (args.history, history_seconds))
    if tended:
        print("then the worker's minute job: " + ", ".join(tended))
    print("load average %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    until = Setting.get(Setting.key == rollups.UNTIL_KEY).value
    client = app.test_client()
    user = User.create(username="bench", password_hash="!unusable")
    with client.session_transaction() as session:
        session["user_id"] = user.id
    headers = {"Authorization": "Bearer bench-token"}
    last = end - datetime.timedelta(days=1)
    period = {
        "from": (last - datetime.timedelta(days=args.days - 1)).date().isoformat(),
        "to": last.date().isoformat(),
    }
    one_flow = flows[len(flows) // 2]  # a middling flow, not the busiest

    def api(group_by, flow_id=None):
        group_by, _, filters = group_by.partition("&")
        query = dict(period, group_by=group_by)
        for pair in filters.split("&") if filters else ():
            name, _, value = pair.partition("=")
            query[name] = value
        if flow_id:
            query["flow_id"] = str(flow_id)

        def call():
            response = client.get("/api/v1/stats", query_string=query, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]

        return call

    def page(path, query=None):
        def call():
            response = client.get(path, query_string=query or {})
            assert response.status_code == 200, response.status_code

        return call

    cases = []
    for dimension in DIMENSIONS:
        cases.append(("stats %s, all flows" % dimension, api(dimension)))
        cases.append(("stats %s, one flow" % dimension, api(dimension, one_flow)))
    cases.append(("flows list (today, yesterday, 7 days)", page("/flows")))
    cases.append(("reports page, 30 days by day", page("/reports", period)))
    cases.append(("reports page, 30 days by sub1", page("/reports", dict(period, group_by="sub1"))))
    results = {}
    print(
        "%-44s %-28s %-28s %s"
        % ("what (30 days)", "rollups + fresh rows", "raw tables only", "raw / rollups")
    )
    for name, call in cases:
        if args.only and args.only not in name:
            continue
        call()  # warm caches and templates
        fast = timed(call, args.runs)
        slow = []
        if not args.skip_raw:
            Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
            try:
                slow = timed(call, args.runs)
            finally:
                Setting.create(key=rollups.UNTIL_KEY, value=until)
        ratio = "%.1f×" % (statistics.median(slow) / statistics.median(fast)) if slow else "-"
        print("%-44s %-28s %-28s %s" % (name, shown(fast), shown(slow), ratio), flush=True)
        results[name] = (fast, slow)
    print("load average %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    db.close()
    return results


def main(argv=None):
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
