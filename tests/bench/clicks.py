"""Click-path benchmark: the tracker's ``GET /r/<key>`` on a plain flow and on a routed one
against a bare Flask 302, under wrk, in the same run.

Run by hand from the project root (pytest does not collect tests/bench)::

    apt-get install -y wrk          # once; wrk must be on PATH
    python tests/bench/clicks.py [--seconds 10] [--slices 5] [--connections 32] [--threads 2] [--runs 1]
                                 [--workers 2] [--geo none] [--batch-ms 100]

Every app is served by gunicorn with the options of ``tracker.server.gunicorn_command``
(2 sync workers, or ``--workers`` for every app) on a free loopback port. Each tracker
measurement runs on its own fresh SQLite database in a temporary instance folder, with a GeoIP
City and ASN database written by mmdb-writer, and ``TRACKER_TRUSTED_PROXIES=1``: wrk sends public addresses in
``X-Forwarded-For`` (a GeoIP database cannot cover loopback), so the lookup really runs. The
wrk script (``clicks.lua``) rotates through 8 real user agents, sub1 values and client
addresses. ``--geo none`` leaves the GeoIP folder empty, as on a fresh install: country then
comes from iptocc (the offer URL's ``geo=`` shows it). ``--batch-ms N`` runs the trackers with
the write-behind (``TRACKER_CLICK_BATCH_MS=N``); each waits for its spool to empty (``/healthz``)
before the clicks are counted. The trackers run with
``PROMETHEUS_MULTIPROC_DIR`` set, as ``tracker serve`` runs them (their metrics are written to
files shared by the workers).

The plain flow sends every click to its ``offer_url``. The routed flow (DESIGN §4.7) has 5
routes of 4 rules each (country, IP ranges, user agent, a query parameter, device, sub1),
arranged so that every rule of every route is evaluated and only the last route matches; it
draws one of 2 landers and one of 3 offers by weight, and its 302 goes to the lander with
``{click_url}`` filled.

The three apps are served at once and loaded in turn, ``--slices`` slices of ``seconds /
slices`` each in a rotating order (only one is loaded at a time; the others sit idle), so that
whatever else the machine runs meanwhile falls on all three alike.

Printed for each app: requests/s, p50 and p99 latency, and the gunicorn workers' CPU time per
request (less disturbed by whatever else the machine runs); then the ratios plain/bare and
routed/plain, the clicks stored against the 302s answered, non-302 responses, socket errors,
and whether "database is locked" appears in the gunicorn log. With ``--runs N``, the medians
and the spread (min–max). Targets (2 cores): the plain click at no less than half the bare
app's throughput, the routed click at no less than 0.9 of the plain one, every answered click stored,
no error, no "database is locked".
"""

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import requests

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))
sys.path.insert(0, ROOT)

from tracker.server import gunicorn_command  # noqa: E402

API_TOKEN = "bench-token"
GRACE = 2  # seconds
OFFER_URL = "https://offer.example/lp?cid={clickid}&s1={sub1}&geo={country}"
LANDER_URLS = ["https://lander-%s.example/?go={click_url}&s1={sub1}" % name for name in "ab"]
ROUTED_OFFER_URLS = [
    "https://offer-%d.example/lp?cid={clickid}&geo={country}&o={offer.id}" % n for n in (1, 2, 3)
]
# The /16 networks the GeoIP databases cover; clicks.lua draws client addresses from them.
NETWORKS = {
    "81.2.0.0/16": ("GB", "United Kingdom", "England", "London", 20712, "Andrews & Arnold"),
    "2.125.0.0/16": ("GB", "United Kingdom", "England", "Boxford", 12576, "EE Limited"),
    "216.160.0.0/16": ("US", "United States", "Washington", "Milton", 209, "CenturyLink"),
    "89.160.0.0/16": ("SE", "Sweden", "Östergötland", "Linköping", 29518, "Bredband2"),
    "175.16.0.0/16": ("CN", "China", "Jilin", "Changchun", 4837, "China Unicom"),
    "202.196.0.0/16": ("PH", "Philippines", "Metro Manila", "Manila", 9299, "PLDT"),
    "67.43.0.0/16": ("BT", "Bhutan", "Thimphu", "Thimphu", 35908, "Krypt"),
    "149.101.0.0/16": ("US", "United States", "Texas", "Austin", 7018, "AT&T"),
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_geoip(directory):
    """A City and an ASN database covering ``NETWORKS``, written with mmdb-writer."""
    from mmdb_writer import MmdbU32, MMDBWriter
    from netaddr import IPSet

    city = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["en"],
        description="bench City",
    )
    asn = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-ASN",
        languages=["en"],
        description="bench ASN",
    )
    for cidr, (iso, country, region, town, number, org) in NETWORKS.items():
        city.insert_network(
            IPSet([cidr]),
            {
                "country": {"iso_code": iso, "names": {"en": country}},
                "subdivisions": [{"names": {"en": region}}],
                "city": {"names": {"en": town}},
                "postal": {"code": "0000"},
                "location": {"latitude": 1.5, "longitude": 2.5, "accuracy_radius": MmdbU32(50)},
            },
        )
        asn.insert_network(
            IPSet([cidr]),
            {"autonomous_system_number": MmdbU32(number), "autonomous_system_organization": org},
        )
    city.to_db_file(os.path.join(directory, "City.mmdb"))
    asn.to_db_file(os.path.join(directory, "ASN.mmdb"))


class Served:
    """A gunicorn process on a free loopback port, its output in ``log_path``."""

    def __init__(self, command, env, log_path):
        self.port = free_port()
        command = list(command)
        command[command.index("--bind") + 1] = "127.0.0.1:%d" % self.port
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + path, timeout=1, allow_redirects=False)
                return
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + self.log()) from None
                time.sleep(0.1)

    def cpu_seconds(self):
        """CPU time (user + system) used so far by the gunicorn workers, from /proc."""
        total = 0
        for entry in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(self.process.pid):  # the fields after "(comm)": state, ppid, ...
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.terminate()
        self.process.wait(30)
        self._log.close()

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def database_cpu_seconds():
    """CPU time (user + system) used so far by the local PostgreSQL server's processes (0 when
    there are none): on a machine where the database shares the cores, its share of a click."""
    total = 0
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                comm, fields = f.read().split("(", 1)[1].rsplit(")", 1)
        except (OSError, IndexError, ValueError):
            continue
        if comm == "postgres":
            fields = fields.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(server, url, seconds, connections, threads, script="clicks.lua", extra=()):
    """Load ``url`` for ``seconds``; return wrk's figures, the script's status counts and the
    workers' CPU time per request (what the app costs, whatever else the machine runs)."""
    # The script stops sending after `seconds`; wrk runs GRACE seconds longer so that the
    # requests in flight at the deadline are answered and counted.
    command = [
        "wrk",
        "-t%d" % threads,
        "-c%d" % connections,
        "-d%ds" % (seconds + GRACE),
        "--latency",
        "-s",
        os.path.join(BENCH_DIR, script),
        url,
        "--",
        str(seconds),
        *extra,
    ]
    cpu, database = server.cpu_seconds(), database_cpu_seconds()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out, seconds)
    result["cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / max(result["requests"], 1)
    result["db_cpu_ms"] = (database_cpu_seconds() - database) * 1000 / max(result["requests"], 1)
    return result


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out, seconds):
    """Requests/s (over the sending window), p50 and p99 in ms, and the error counts."""
    pct = dict((p, to_ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    total = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    sent, found, other = map(
        int, re.search(r"^BENCH sent=(\d+) (?:found302|ok)=(\d+) other=(\d+)", out, re.M).groups()
    )
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": total / seconds,
        "p50": pct["50"],
        "p99": pct["99"],
        "requests": total,
        "sent": sent,
        "found": found,
        "other": other,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "raw": out,
    }


def count_rows(db_url, table="click"):
    """Rows of ``table`` in the database at ``db_url`` (a SQLite or PostgreSQL URL)."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url[len("sqlite:///") :]) as conn:
            return conn.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
    import psycopg2

    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM %s" % table)
            return cursor.fetchone()[0]
    finally:
        conn.close()


def count_clicks(db_url):
    return count_rows(db_url, "click")


def fresh_database_url(args, workdir, name):
    """A new empty database for one app: a SQLite file in ``workdir``, or, with ``--pg URL``,
    a PostgreSQL database named after URL's with ``_name`` appended (dropped and made anew)."""
    if not getattr(args, "pg", None):
        return "sqlite:///" + os.path.join(workdir, name, "instance", "tracker.db")
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(args.pg)
    database = "%s_%s" % (parts.path.lstrip("/"), name)
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))  # URL's own may not exist
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % database)
        cursor.execute('CREATE DATABASE "%s"' % database)
    admin.close()
    return urlunsplit(parts._replace(path="/" + database))


def start_bare(workdir, workers=2):
    """The bare Flask 302 app, warmed up; returns ``(server, url)``."""
    command = gunicorn_command("127.0.0.1", 0, workers)
    command[command.index("--pythonpath") + 1] = BENCH_DIR
    command[-1] = "bare302:app"
    server = Served(command, dict(os.environ), os.path.join(workdir, "bare.log"))
    server.wait_ready("/r/warm")
    for _ in range(50):
        requests.get(server.url + "/r/warm", allow_redirects=False, timeout=5)
    return server, server.url + "/r/bench"


def routes(lander_ids, offer_ids):
    """5 routes × 4 rules: the first four fail on their last rule (every rule is evaluated),
    the fifth holds for every click the wrk script sends."""
    missing = [
        {
            "name": "miss %d" % n,
            "rules": [
                {"field": "country", "op": "not_in", "values": ["XX", "YY"]},
                {"field": "ip", "op": "not_in", "values": ["10.0.0.0/8", "192.168.0.0/16", "100.64.0.0/10"]},
                {"field": "user_agent", "op": "not_contains", "values": ["curl", "wget"]},
                {"field": "param:utm_source", "op": "in", "values": ["campaign-%d" % n]},
            ],
            "offers": [{"offer_id": offer_ids[0], "weight": 1}],
        }
        for n in range(4)
    ]
    everyone = {
        "name": "everyone",
        "rules": [
            {"field": "country", "op": "not_in", "values": ["XX"]},
            {"field": "device_type", "op": "in", "values": ["desktop", "mobile", "tablet", "bot", "other"]},
            {"field": "sub1", "op": "contains", "values": ["banner"]},
            {"field": "param:utm_source", "op": "in", "values": ["bench"]},
        ],
        "landers": [{"lander_id": lander_id, "weight": 1} for lander_id in lander_ids],
        "offers": [{"offer_id": offer_id, "weight": n} for n, offer_id in enumerate(offer_ids, 1)],
    }
    return missing + [everyone]


def create_flow(server, routed):
    """The plain flow, or the routed one with its landers and offers; returns its link."""

    def post(path, body):
        answer = requests.post(
            server.url + path, timeout=10, headers={"Authorization": "Bearer " + API_TOKEN}, json=body
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    if not routed:
        return server.url + "/r/" + post("/api/v1/flows", {"name": "bench", "offer_url": OFFER_URL})["key"]
    landers = [post("/api/v1/landers", {"name": "lander", "url": url})["id"] for url in LANDER_URLS]
    offers = [post("/api/v1/offers", {"name": "offer", "url": url})["id"] for url in ROUTED_OFFER_URLS]
    flow = post(
        "/api/v1/flows", {"name": "routed", "offer_url": OFFER_URL, "routes": routes(landers, offers)}
    )
    return server.url + "/r/" + flow["key"]


def existing_flow(server):
    """The link of the plain bench flow already in the database, or None."""
    headers = {"Authorization": "Bearer " + API_TOKEN}
    items = requests.get(server.url + "/api/v1/flows", headers=headers, timeout=10).json()["items"]
    keys = [flow["key"] for flow in items if flow["name"] == "bench"]
    return server.url + "/r/" + keys[0] if keys else None


def start_tracker(args, workdir, routed, name=None, db_url=None, prepare=None):
    """A tracker on its own fresh SQLite database with the plain or the routed flow, warmed
    up; returns ``(server, link, database URL)``. ``db_url``: a database of earlier runs
    instead (its plain flow is used again); ``prepare(server, link, db_url)`` runs before the
    warm-up."""
    name = name or ("routed" if routed else "plain")
    instance = os.path.join(workdir, name, "instance")
    geoip = os.path.join(workdir, name, "geoip")
    os.makedirs(geoip)
    if args.geo == "mmdb":
        write_geoip(geoip)
    metrics = os.path.join(workdir, name, "metrics")
    os.makedirs(metrics)
    db_url = db_url or fresh_database_url(args, workdir, name)
    env = dict(
        os.environ,
        TRACKER_INSTANCE_PATH=instance,
        TRACKER_DATABASE_URL=db_url,
        TRACKER_GEOIP_DIR=geoip,
        TRACKER_API_TOKEN=API_TOKEN,
        TRACKER_TRUSTED_PROXIES="1",
        PROMETHEUS_MULTIPROC_DIR=metrics,
        TRACKER_CLICK_BATCH_MS=str(getattr(args, "batch_ms", 0)),
    )
    subprocess.run(
        [sys.executable, "-m", "tracker", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    workers = getattr(args, "workers", 2)
    server = Served(gunicorn_command("127.0.0.1", 0, workers), env, os.path.join(workdir, name + ".log"))
    server.wait_ready("/healthz")
    link = (not routed and existing_flow(server)) or create_flow(server, routed)
    if prepare is not None:
        prepare(server, link, db_url)
    warm = requests.get(
        link + "?sub1=banner1&utm_source=bench",
        allow_redirects=False,
        timeout=10,
        headers={"X-Forwarded-For": "81.2.69.142"},
    )
    location = warm.headers.get("Location", "")
    if routed:
        assert location.startswith("https://lander-") and "%2Fclick%3Fclick_id%3D" in location, warm.headers
    else:
        assert warm.status_code == 302 and ("geo=GB" in location or args.geo == "none"), warm.headers
    for _ in range(99):  # both workers: parsers and caches built before the load
        requests.get(link, allow_redirects=False, timeout=10)
    if db_url.startswith("postgresql"):
        analyze_clicks(db_url)
    return server, link, db_url


def analyze_clicks(db_url):
    """What the worker's minute job (operations.statistics) or autovacuum does once a month's
    partition has taken its first 50 clicks: ANALYZE, which makes every connection plan its
    click INSERT again. Planned on the statistics of the month's empty partition, the plan's
    index is a toss-up among the flow's indexes, and some read every click of the unique window
    for each click (the routed flow's database CPU 0.21 -> 0.50 ms a click in one run of two);
    this bench runs no worker, and a tracker serving clicks runs one."""
    import psycopg2

    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("ANALYZE click")
    finally:
        conn.close()


def wait_for_spool(server, seconds=60):
    """Until the server's spool is empty (the write-behind's last clicks written)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if requests.get(server.url + "/healthz", timeout=10).json()["spool_depth"] == 0:
            return
        time.sleep(0.1)


def add_up(slices, seconds):
    """One app's figures over its slices: counts summed, CPU per request over all of them,
    p50 and p99 the median of the slices'."""
    requests_ = sum(r["requests"] for r in slices)
    total = {
        name: sum(r[name] for r in slices) for name in ("requests", "sent", "found", "other", "socket_errors")
    }
    total["rps"] = requests_ / (seconds * len(slices))
    for name in ("cpu_ms", "db_cpu_ms"):
        total[name] = sum(r[name] * r["requests"] for r in slices) / max(requests_, 1)
    total["p50"] = statistics.median(r["p50"] for r in slices)
    total["p99"] = statistics.median(r["p99"] for r in slices)
    return total


def one_run(args, run):
    """Bare, plain and routed served at once (idle while not measured) and loaded in turn, a
    slice of ``seconds / slices`` each, in a rotating order: what else the machine does then
    falls on all three alike."""
    workdir = tempfile.mkdtemp(prefix="tracker-bench-")
    servers, slices = {}, {"bare": [], "plain": [], "routed": []}
    try:
        bare, bare_link = start_bare(workdir, args.workers)
        servers["bare"] = (bare, bare_link, None)
        for routed in (False, True):
            servers["routed" if routed else "plain"] = start_tracker(args, workdir, routed)
        for server, _, db in servers.values():
            if db:
                wait_for_spool(server)  # the warm-up's write-behind clicks counted before, not after
        before = {name: count_clicks(db) for name, (_, _, db) in servers.items() if db}
        seconds = max(1, args.seconds // args.slices)
        order = list(slices)
        for number in range(args.slices):
            shift = (number + run) % len(order)
            for name in order[shift:] + order[:shift]:
                server, link, _ = servers[name]
                slices[name].append(run_wrk(server, link, seconds, args.connections, args.threads))
        results = {name: add_up(parts, seconds) for name, parts in slices.items()}
        for server, _, db in servers.values():
            if db:
                wait_for_spool(server)
            server.stop()
        for name, (server, _, db) in servers.items():
            if db:
                results[name]["stored"] = count_clicks(db) - before[name]
                results[name]["locked"] = "database is locked" in server.log()
    finally:
        for server, _, _ in servers.values():
            if server.process.poll() is None:
                server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results["bare"], results["plain"], results["routed"]


def report(bare, plain, routed):
    print("%-9s %10s %9s %9s %12s %12s" % ("", "req/s", "p50 ms", "p99 ms", "worker CPU", "database CPU"))
    for name, r in (("bare 302", bare), ("plain", plain), ("routed", routed)):
        print(
            "%-9s %10.0f %9.2f %9.2f %9.2f ms %9.2f ms"
            % (name, r["rps"], r["p50"], r["p99"], r["cpu_ms"], r["db_cpu_ms"])
        )
    ratios = (plain["rps"] / bare["rps"], routed["rps"] / plain["rps"])
    print(
        "ratio plain/bare: %.2f, routed/plain: %.2f (worker CPU per request: %.2f, %.2f)"
        % (*ratios, bare["cpu_ms"] / plain["cpu_ms"], plain["cpu_ms"] / routed["cpu_ms"])
    )
    for name, r in (("plain", plain), ("routed", routed)):
        verdict = "equal" if r["stored"] == r["found"] else "MISSING" if r["stored"] < r["found"] else "more"
        print(
            "%s: clicks stored %d, 302s answered %d (%s), requests sent %d"
            % (name, r["stored"], r["found"], verdict, r["sent"])
        )
    print(
        "non-302 responses: bare %d, plain %d, routed %d; socket errors: bare %d, plain %d, routed %d"
        % (
            bare["other"],
            plain["other"],
            routed["other"],
            bare["socket_errors"],
            plain["socket_errors"],
            routed["socket_errors"],
        )
    )
    locked = plain["locked"] or routed["locked"]
    print('"database is locked" in the gunicorn logs: %s' % ("YES" if locked else "no"))
    return ratios


def clean(bare, *trackers):
    """Every answered click stored, no error, no lock. A click may be stored whose 302 wrk no
    longer counted (it stops waiting GRACE seconds after a slice), never one more than sent."""
    return bare["socket_errors"] == 0 and all(
        t["found"] <= t["stored"] <= t["sent"]
        and t["other"] == 0
        and t["socket_errors"] == 0
        and not t["locked"]
        for t in trackers
    )


def spread(values, fmt="%.2f"):
    """``median (min–max)``."""
    return (fmt + " (" + fmt + "–" + fmt + ")") % (statistics.median(values), min(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1, help="repeat, and print the medians")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers of every app (tracker serve's default: 2)"
    )
    parser.add_argument("--slices", type=int, default=5, help="load each app in this many turns per run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, database)")
    parser.add_argument(
        "--pg", metavar="URL", help="PostgreSQL: each app gets a fresh database named URL's + _plain, _routed"
    )
    parser.add_argument(
        "--batch-ms", type=int, default=0, help="the trackers' TRACKER_CLICK_BATCH_MS (0: off)"
    )
    parser.add_argument(
        "--geo", choices=("mmdb", "none"), default="mmdb", help="none: no .mmdb file (country from iptocc)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    runs, ok = [], True
    for run in range(args.runs):
        print(
            "== run %d/%d (%d cores, wrk %d s in %d slices, %d connections, %d threads)"
            % (run + 1, args.runs, os.cpu_count(), args.seconds, args.slices, args.connections, args.threads)
        )
        bare, plain, routed = one_run(args, run)
        runs.append((bare, plain, routed, report(bare, plain, routed)))
        ok = ok and clean(bare, plain, routed)
    print("== %d run(s): median (min–max)" % len(runs))
    for index, name in enumerate(("bare 302", "plain", "routed")):
        print("%-9s req/s %s" % (name, spread([r[index]["rps"] for r in runs], "%.0f")))
    plain_ratio = statistics.median(r[3][0] for r in runs)
    routed_ratio = statistics.median(r[3][1] for r in runs)
    print("ratio plain/bare   %s" % spread([r[3][0] for r in runs]))
    print("ratio routed/plain %s" % spread([r[3][1] for r in runs]))
    print(
        "worker CPU per request, plain/routed: %s" % spread([r[1]["cpu_ms"] / r[2]["cpu_ms"] for r in runs])
    )
    met = ok and plain_ratio >= 0.5 and routed_ratio >= 0.9
    print(
        "targets (plain/bare >= 0.50, routed/plain >= 0.90, every answered click stored, no error, "
        "not locked): %s" % ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
