"""Benchmark of outgoing deliveries (run by hand, not collected by pytest):

    python tests/bench/deliveries.py [--count 5000] [--concurrency 8] [--conversions 200]

1. Throughput: ``count`` queued deliveries drained by ``deliver_due`` against a local
   receiver, beside a bare ``requests`` loop with the same concurrency, in the same run.
2. Latency: a real ``tracker worker`` (its default 1 s interval) while conversions are
   committed one by one; the time from each commit to its delivery arriving, p50 and p99.

The receiver is a threaded ``http.server`` in its own process (keep-alive, answers "ok").
SQLite in a temporary folder unless ``TRACKER_DATABASE_URL`` is set.
"""

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arrivals = {}

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACKs add 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        if self.path.startswith("/dump"):
            self._answer(json.dumps(Receiver.arrivals).encode())
            return
        if self.path.startswith("/l?n="):
            Receiver.arrivals[self.path[5:]] = time.time()
        self._answer(b"ok")

    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_receiver(port):
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    server.daemon_threads = True
    server.serve_forever()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_receiver():
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    base = "http://127.0.0.1:%d" % port
    import requests

    for _ in range(100):
        try:
            requests.get(base + "/ping", timeout=1)
            return process, base
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("the receiver did not start")


def bare_loop(base, count, concurrency):
    """The same GETs with plain requests sessions, one per thread: requests per second."""
    import requests

    local = threading.local()

    def get(i):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False  # as the worker's sessions: no per-request proxy/netrc lookups
        session.get("%s/b?n=%d" % (base, i), timeout=(5, 10)).close()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(get, range(count)))
    return count / (time.perf_counter() - started)


def throughput(app, base, count):
    """``count`` due deliveries drained by deliver_due: deliveries per second."""
    from tracker.db import db
    from tracker.delivery.queue import deliver_due
    from tracker.models import Delivery, DeliveryAttempt, utcnow

    now = utcnow()
    with db.atomic():
        for start in range(0, count, 500):
            Delivery.insert_many(
                [
                    {
                        "trigger": "conversion",
                        "url": "%s/d?n=%d" % (base, i),
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(count, start + 500))
                ]
            ).execute()
    started = time.perf_counter()
    sent = deliver_due(config=app.config)
    elapsed = time.perf_counter() - started
    delivered = Delivery.select().where(Delivery.status == "delivered").count()
    assert sent == count == delivered == DeliveryAttempt.select().count(), (sent, delivered)
    return count / elapsed


def make_flow_with_postback(url):
    """A flow with one conversion postback, and one click on it."""
    from tracker.clickin.record import new_click_id
    from tracker.flows import clean_flow, save_flow
    from tracker.models import Click

    flow = save_flow(
        clean_flow(
            {
                "name": "Bench",
                "offer_url": "https://offer.example/?c={clickid}",
                "postbacks": [{"trigger": "conversion", "url": url}],
            }
        )
    )
    flow.bench_click = Click.create(click_id=new_click_id(), flow=flow)
    return flow


def commit_conversion(flow, txid):
    """Insert a conversion and its deliveries in one transaction; the time of the commit."""
    from tracker.db import db
    from tracker.models import Conversion
    from tracker.postbacks import outbox

    with db.atomic():
        conversion = Conversion.create(
            click=flow.bench_click.click_id, flow=flow.id, txid=txid, dedup_key=txid
        )
        outbox.enqueue_for_conversion(conversion)
    return time.time()


def latency(app, base, conversions, env):
    """Commit conversions one by one while a real worker runs; seconds from commit to arrival."""
    flow = make_flow_with_postback(base + "/l?n={txid}")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tracker", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # let it start and settle
        committed = {}
        for i in range(conversions):
            committed[str(i)] = commit_conversion(flow, str(i))
            time.sleep(random.uniform(0.005, 0.03))
        import requests

        deadline = time.time() + 30
        while time.time() < deadline:
            arrivals = requests.get(base + "/dump", timeout=5).json()
            if len(arrivals) >= conversions:
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(30)
    delays = sorted(arrivals[n] - committed[n] for n in committed)
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1], len(delays)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver", type=int)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--conversions", type=int, default=200)
    args = parser.parse_args()
    if args.receiver:
        return run_receiver(args.receiver)

    folder = tempfile.mkdtemp(prefix="tracker-bench-")
    env = dict(
        os.environ,
        TRACKER_INSTANCE_PATH=folder,
        TRACKER_GEOIP_DIR=folder,
        TRACKER_DATABASE_URL=os.environ.get("TRACKER_DATABASE_URL") or "sqlite:///%s/bench.db" % folder,
        TRACKER_DELIVERY_CONCURRENCY=str(args.concurrency),
        TRACKER_DELIVERY_PER_HOST=str(args.concurrency),
        TRACKER_DELIVERY_ALLOWED_NETWORKS="127.0.0.0/8",  # the receiver is on loopback
    )
    os.environ.update(env)
    from tracker import create_app
    from tracker.migrations import upgrade

    app = create_app()
    upgrade()
    receiver, base = start_receiver()
    try:
        # The bare loop runs before and after, and the faster of the two is the reference.
        before = bare_loop(base, args.count, args.concurrency)
        ours = throughput(app, base, args.count)
        bare = max(before, bare_loop(base, args.count, args.concurrency))
        print(
            "throughput: %d deliveries, concurrency %d: tracker %.0f/s, bare requests loop %.0f/s "
            "(best of two), ratio %.2f" % (args.count, args.concurrency, ours, bare, ours / bare)
        )
        p50, p99, n = latency(app, base, args.conversions, env)
        print(
            "latency: %d conversions, worker interval %.1f s: commit → arrival p50 %.0f ms, p99 %.0f ms"
            % (n, app.config["TRACKER_WORKER_INTERVAL"], p50 * 1000, p99 * 1000)
        )
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()
