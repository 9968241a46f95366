"""Click-path benchmark: the tracker's ``GET /r/<key>`` against a bare Flask 302, under wrk.

Run by hand from the project root (pytest does not collect tests/bench)::

    apt-get install -y wrk          # once; wrk must be on PATH
    python tests/bench/clicks.py [--seconds 10] [--connections 32] [--threads 2] [--runs 1] [--geo none]

Both apps are served by gunicorn with the options of ``tracker.server.gunicorn_command``
(2 sync workers) on a free loopback port. The tracker runs on a fresh SQLite database in a
temporary instance folder, with a GeoIP City and ASN database written by mmdb-writer, and
``TRACKER_TRUSTED_PROXIES=1``: wrk sends public addresses in ``X-Forwarded-For`` (a GeoIP
database cannot cover loopback), so the lookup really runs. The wrk script (``clicks.lua``)
rotates through 8 real user agents, sub1 values and client addresses. ``--geo none`` leaves the
GeoIP folder empty, as on a fresh install: country then comes from iptocc (the offer URL's
``geo=`` shows it). The tracker runs with ``PROMETHEUS_MULTIPROC_DIR`` set, as ``tracker serve``
runs it (its metrics are written to files shared by the workers).

Printed for each app: requests/s, p50 and p99 latency, and the gunicorn workers' CPU time per
request (less disturbed by whatever else the machine runs); then the ratio tracker/bare, the
clicks stored against the 302s answered, non-302 responses, socket errors, and whether
"database is locked" appears in the gunicorn log. With ``--runs N``, the median ratio.
Target (2 cores): the tracker at no less than half the bare app's throughput, every click
stored, no error, no "database is locked".
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


def run_wrk(server, url, seconds, connections, threads):
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
        os.path.join(BENCH_DIR, "clicks.lua"),
        url,
        "--",
        str(seconds),
    ]
    cpu = server.cpu_seconds()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out, seconds)
    result["cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / max(result["requests"], 1)
    return result


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out, seconds):
    """Requests/s (over the sending window), p50 and p99 in ms, and the error counts."""
    pct = dict((p, to_ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    total = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    sent, found, other = map(
        int, re.search(r"^BENCH sent=(\d+) found302=(\d+) other=(\d+)", out, re.M).groups()
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


def count_clicks(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT count(*) FROM click").fetchone()[0]


def bench_bare(args, workdir):
    command = gunicorn_command("127.0.0.1", 0, 2)
    command[command.index("--pythonpath") + 1] = BENCH_DIR
    command[-1] = "bare302:app"
    server = Served(command, dict(os.environ), os.path.join(workdir, "bare.log"))
    try:
        server.wait_ready("/r/warm")
        for _ in range(50):
            requests.get(server.url + "/r/warm", allow_redirects=False, timeout=5)
        result = run_wrk(server, server.url + "/r/bench", args.seconds, args.connections, args.threads)
    finally:
        server.stop()
    return result


def bench_tracker(args, workdir):
    instance = os.path.join(workdir, "instance")
    geoip = os.path.join(workdir, "geoip")
    os.makedirs(geoip)
    if args.geo == "mmdb":
        write_geoip(geoip)
    metrics = os.path.join(workdir, "metrics")
    os.makedirs(metrics)
    db_path = os.path.join(instance, "tracker.db")
    env = dict(
        os.environ,
        TRACKER_INSTANCE_PATH=instance,
        TRACKER_DATABASE_URL="sqlite:///" + db_path,
        TRACKER_GEOIP_DIR=geoip,
        TRACKER_API_TOKEN=API_TOKEN,
        TRACKER_TRUSTED_PROXIES="1",
        PROMETHEUS_MULTIPROC_DIR=metrics,
    )
    subprocess.run(
        [sys.executable, "-m", "tracker", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    server = Served(gunicorn_command("127.0.0.1", 0, 2), env, os.path.join(workdir, "tracker.log"))
    try:
        server.wait_ready("/healthz")
        flow = requests.post(
            server.url + "/api/v1/flows",
            timeout=10,
            headers={"Authorization": "Bearer " + API_TOKEN},
            json={"name": "bench", "offer_url": OFFER_URL},
        ).json()
        link = server.url + "/r/" + flow["key"]
        warm = requests.get(
            link + "?sub1=warm", allow_redirects=False, timeout=10, headers={"X-Forwarded-For": "81.2.69.142"}
        )
        assert warm.status_code == 302, warm.headers
        assert "geo=GB" in warm.headers["Location"] or args.geo == "none", warm.headers
        for _ in range(49):  # both workers: parsers and caches built before the load
            requests.get(link, allow_redirects=False, timeout=10)
        before = count_clicks(db_path)
        result = run_wrk(server, link, args.seconds, args.connections, args.threads)
    finally:
        server.stop()
    result["stored"] = count_clicks(db_path) - before
    result["locked"] = "database is locked" in server.log()
    return result


def one_run(args):
    workdir = tempfile.mkdtemp(prefix="tracker-bench-")
    try:
        bare = bench_bare(args, workdir)
        tracker = bench_tracker(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return bare, tracker


def report(bare, tracker):
    print("%-9s %10s %9s %9s %12s" % ("", "req/s", "p50 ms", "p99 ms", "worker CPU"))
    for name, r in (("bare 302", bare), ("tracker", tracker)):
        print("%-9s %10.0f %9.2f %9.2f %9.2f ms" % (name, r["rps"], r["p50"], r["p99"], r["cpu_ms"]))
    ratio = tracker["rps"] / bare["rps"]
    print(
        "ratio tracker/bare: %.2f (worker CPU per request: %.2f)"
        % (ratio, bare["cpu_ms"] / tracker["cpu_ms"])
    )
    equal = tracker["stored"] == tracker["found"]
    print(
        "clicks stored: %d, 302s answered: %d (%s)"
        % (
            tracker["stored"],
            tracker["found"],
            "equal" if equal else "DIFFERENT; wrk's script sent %d requests" % tracker["sent"],
        )
    )
    print(
        "non-302 responses: bare %d, tracker %d; socket errors: bare %d, tracker %d"
        % (bare["other"], tracker["other"], bare["socket_errors"], tracker["socket_errors"])
    )
    print('"database is locked" in the gunicorn log: %s' % ("YES" if tracker["locked"] else "no"))
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1, help="repeat, and print the medians")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, database)")
    parser.add_argument(
        "--geo", choices=("mmdb", "none"), default="mmdb", help="none: no .mmdb file (country from iptocc)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    ratios, ok = [], True
    for run in range(args.runs):
        print(
            "== run %d/%d (%d cores, wrk %d s, %d connections, %d threads)"
            % (run + 1, args.runs, os.cpu_count(), args.seconds, args.connections, args.threads)
        )
        bare, tracker = one_run(args)
        ratios.append(report(bare, tracker))
        ok = ok and (
            tracker["stored"] == tracker["found"]
            and tracker["other"] == 0
            and tracker["socket_errors"] == 0
            and bare["socket_errors"] == 0
            and not tracker["locked"]
        )
    median = statistics.median(ratios)
    print("median ratio tracker/bare over %d run(s): %.2f" % (len(ratios), median))
    met = ok and median >= 0.5
    print(
        "target (ratio >= 0.50, every click stored, no error, not locked): %s" % ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
