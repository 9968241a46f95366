"""Every benchmark of the project in one run, one table of ratios against baselines measured in
the same run (run by hand from the project root; pytest does not collect tests/bench)::

    python tests/bench/run.py [--full] [--pg URL] [--only click,postback,delivery,report]

- click (``clicks.py``): ``GET /r/<key>`` on SQLite against the bare Flask 302, and the routed
  click against the plain one;
- click on PostgreSQL (``clicks_growth.py``): an empty click table against the bare app, and a
  table grown to ``--rows`` clicks against the empty one;
- click with the write-behind (``clicks.py --batch-ms 100``) on each database, against the bare
  app;
- postback (``postbacks.py``): ``/postback`` on each database, every request a new conversion,
  against twice the issue 14 figures (345 and 205 req/s) and the bare JSON answer;
- delivery (``deliveries.py``): the worker draining queued deliveries against a bare
  ``requests`` loop on each database;
- report (``reports.py``, when present): the slowest 30-day report against its raw-table time.

Small sizes by default (a few minutes); ``--full`` runs the issue's sizes: 3 runs of 10 s in 5
slices per app, 10 million clicks on PostgreSQL, 1 million for the reports on SQLite (10 million
on PostgreSQL), 5,000 deliveries. PostgreSQL rows need ``--pg URL`` (or
``TRACKER_BENCH_PG_URL``): each bench makes its own databases named after URL's. Every figure is a
median of the runs with the spread; the load of the machine (``/proc/loadavg``) is printed
before and after, since the machine may be shared.
"""

import argparse
import contextlib
import datetime
import io
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))
sys.path.insert(0, BENCH_DIR)

import clicks  # noqa: E402
import clicks_growth  # noqa: E402
import postbacks  # noqa: E402

ROWS = []  # (path, database, figure, baseline, ratio, target, met)


def row(path, database, figure, baseline, ratio, target, met):
    ROWS.append((path, database, figure, baseline, ratio, target, "yes" if met else "NO"))


def spread(values, fmt="%.2f"):
    return clicks.spread(values, fmt)


def med(values):
    return statistics.median(values)


def quietly(call, *args):
    """Run a bench, its own printout kept for the log file, not the screen."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = call(*args)
    LOG.append(out.getvalue())
    return result


LOG = []


def click_args(opts, **fields):
    """The options of clicks.py and clicks_growth.py for this run, with ``fields``."""
    return argparse.Namespace(
        seconds=opts.seconds, slices=opts.slices, connections=32, threads=2, keep=False, geo="mmdb", **fields
    )


def bench_clicks_sqlite(opts):
    args = click_args(opts, pg=None)
    runs = [quietly(clicks.one_run, args, run) for run in range(opts.runs)]
    plain = [p["rps"] / b["rps"] for b, p, _ in runs]
    routed = [r["rps"] / p["rps"] for _, p, r in runs]
    stored = all(clicks.clean(*run) for run in runs)
    row(
        "click `GET /r/<key>`",
        "SQLite",
        "%s req/s, %s ms CPU"
        % (spread([p["rps"] for _, p, _ in runs], "%.0f"), spread([p["cpu_ms"] for _, p, _ in runs])),
        "bare Flask 302: %s req/s, %s ms"
        % (spread([b["rps"] for b, _, _ in runs], "%.0f"), spread([b["cpu_ms"] for b, _, _ in runs])),
        spread(plain),
        ">= 0.6, every click stored",
        med(plain) >= 0.6 and stored,
    )
    row(
        "routed click (5 routes, 20 rules)",
        "SQLite",
        "%s req/s" % spread([r["rps"] for _, _, r in runs], "%.0f"),
        "the plain click",
        spread(routed),
        ">= 0.9",
        med(routed) >= 0.9 and stored,
    )


BATCH_MS = 100


def bench_clicks_batched(opts, pg):
    """The plain click with the write-behind (TRACKER_CLICK_BATCH_MS=100) against the bare app."""
    args = click_args(opts, pg=pg, batch_ms=BATCH_MS)
    runs = [quietly(clicks.one_run, args, run) for run in range(opts.runs)]
    plain = [p["rps"] / b["rps"] for b, p, _ in runs]
    stored = all(clicks.clean(*run) for run in runs)
    row(
        "click, write-behind (`TRACKER_CLICK_BATCH_MS=%d`)" % BATCH_MS,
        "PostgreSQL" if pg else "SQLite",
        "%s req/s, %s ms CPU"
        % (spread([p["rps"] for _, p, _ in runs], "%.0f"), spread([p["cpu_ms"] for _, p, _ in runs])),
        "bare Flask 302: %s req/s" % spread([b["rps"] for b, _, _ in runs], "%.0f"),
        spread(plain),
        "%s, every click stored" % (">= 0.5" if pg else ">= 0.6"),
        med(plain) >= (0.5 if pg else 0.6) and stored,
    )


def bench_clicks_postgres(opts):
    args = click_args(opts, pg=opts.pg, rows=opts.rows, stats=True)
    runs = [quietly(clicks_growth.one_run, args, run) for run in range(opts.runs)]
    empty = [r["empty"]["rps"] / r["bare"]["rps"] for r in runs]
    grown = [r["grown"]["rps"] / r["empty"]["rps"] for r in runs]
    stored = all(r[n]["found"] <= r[n]["stored"] <= r[n]["sent"] for r in runs for n in ("empty", "grown"))
    row(
        "click",
        "PostgreSQL, empty table",
        "%s req/s, %s ms CPU"
        % (spread([r["empty"]["rps"] for r in runs], "%.0f"), spread([r["empty"]["cpu_ms"] for r in runs])),
        "bare Flask 302: %s req/s" % spread([r["bare"]["rps"] for r in runs], "%.0f"),
        spread(empty),
        ">= 0.5, every click stored",
        med(empty) >= 0.5 and stored,
    )
    row(
        "click",
        "PostgreSQL, %s rows" % format(opts.rows, ","),
        "%s req/s" % spread([r["grown"]["rps"] for r in runs], "%.0f"),
        "the same, empty table",
        spread(grown),
        ">= 0.9 (flat within 10 %)",
        med(grown) >= 0.9 and stored,
    )


def bench_postbacks(opts, pg):
    engine = "postgresql" if pg else "sqlite"
    args = argparse.Namespace(
        seconds=opts.seconds,
        slices=opts.slices,
        connections=8,
        threads=2,
        clicks=20000,
        outgoing=1,
        keep=False,
        pg=pg,
        geo="mmdb",
    )
    runs = [quietly(postbacks.one_run, args, run) for run in range(opts.runs)]
    rps = [r["postback"]["rps"] for r in runs]
    cpu = [r["postback"]["cpu_ms"] for r in runs]
    issue = postbacks.ISSUE_FIGURES[engine]
    stored = all(postbacks.clean(r) for r in runs)
    row(
        "`/postback`, 8 connections, 1 outgoing postback",
        "PostgreSQL" if pg else "SQLite",
        "%s req/s, %s ms CPU" % (spread(rps, "%.0f"), spread(cpu)),
        "issue 14: %d req/s; bare JSON: %s req/s; the click: %s ms CPU"
        % (
            issue,
            spread([r["bare"]["rps"] for r in runs], "%.0f"),
            spread([r["click"]["cpu_ms"] for r in runs]),
        ),
        "%s × issue (%s × scaled by the bare apps: postback/bare against the issue's %d/%d)"
        % (
            spread([x / issue for x in rps]),
            spread([r["postback"]["rps"] / r["bare"]["rps"] / (issue / postbacks.ISSUE_BARE) for r in runs]),
            issue,
            postbacks.ISSUE_BARE,
        ),
        ">= 2 × issue, CPU < 2.5 ms, every conversion stored",
        med(rps) >= 2 * issue and med(cpu) < 2.5 and stored,
    )


def bench_deliveries(opts, pg):
    workdir = tempfile.mkdtemp(prefix="tracker-bench-")
    env = dict(os.environ)
    env.pop("TRACKER_DATABASE_URL", None)  # SQLite: deliveries.py makes a file of its own each run
    ratios, ours, bare = [], [], []
    try:
        for _ in range(opts.runs):
            if pg:  # an empty database each run: deliveries.py counts every delivery it holds
                env["TRACKER_DATABASE_URL"] = clicks.fresh_database_url(
                    argparse.Namespace(pg=pg), workdir, "deliveries"
                )
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.join(BENCH_DIR, "deliveries.py"),
                    "--count",
                    str(opts.deliveries),
                    "--conversions",
                    str(opts.conversions),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            LOG.append(out.stdout + out.stderr)
            match = re.search(r"tracker (\d+)/s, bare requests loop (\d+)/s .*ratio ([\d.]+)", out.stdout)
            if match is None:
                raise RuntimeError("deliveries.py failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
            ours.append(float(match.group(1)))
            bare.append(float(match.group(2)))
            ratios.append(float(match.group(3)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    row(
        "deliveries (%d queued, concurrency 8)" % opts.deliveries,
        "PostgreSQL" if pg else "SQLite",
        "%s per s" % spread(ours, "%.0f"),
        "bare `requests` loop: %s per s" % spread(bare, "%.0f"),
        spread(ratios),
        ">= 0.75",
        med(ratios) >= 0.75,
    )


REPORT_PROBE = """
import json, sys
sys.path.insert(0, %(bench)r)
import reports
results = reports.run(reports.parse_args(%(argv)r))
print("RESULT " + json.dumps({name: [fast, slow] for name, (fast, slow) in results.items()}))
"""


def bench_reports(opts, pg):
    """The hook of h12's ``reports.py``: a row saying it is missing when it is."""
    database = "PostgreSQL" if pg else "SQLite"
    if not os.path.exists(os.path.join(BENCH_DIR, "reports.py")):
        row("30-day reports", database, "tests/bench/reports.py is not here yet", "-", "-", "< 1 s", False)
        return
    clicks_count = opts.report_clicks_pg if pg else opts.report_clicks
    argv = ["--clicks", str(clicks_count), "--runs", str(max(opts.runs, 3))]
    workdir = tempfile.mkdtemp(prefix="tracker-bench-")
    try:
        if pg:
            argv += [
                "--database-url",
                clicks.fresh_database_url(argparse.Namespace(pg=pg), workdir, "reports"),
            ]
        out = subprocess.run(
            [sys.executable, "-c", REPORT_PROBE % {"bench": BENCH_DIR, "argv": argv}],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    LOG.append(out.stdout + out.stderr)
    match = re.search(r"^RESULT (.*)$", out.stdout, re.M)
    if match is None:
        row("30-day reports", database, "reports.py failed (see the log)", "-", "-", "< 1 s", False)
        return
    import json

    results = json.loads(match.group(1))
    name, (fast, slow) = max(results.items(), key=lambda item: med(item[1][0]))
    row(
        "slowest 30-day report of %d (%s clicks)" % (len(results), format(clicks_count, ",")),
        database,
        "%s: %.0f ms" % (name, med(fast) * 1000),
        "the same from the raw rows: %s" % ("%.0f ms" % (med(slow) * 1000) if slow else "-"),
        "%.1f× faster" % (med(slow) / med(fast)) if slow else "-",
        "< 1 s",
        med(fast) < 1.0,
    )


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (an hour or more)")
    parser.add_argument("--pg", metavar="URL", default=os.environ.get("TRACKER_BENCH_PG_URL"))
    parser.add_argument("--only", default="click,postback,delivery,report")
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "tracker-bench-run.log"))
    opts = parser.parse_args(argv)
    full = opts.full
    opts.runs = 3 if full else 1
    opts.seconds = 10 if full else 5
    opts.slices = 5
    opts.rows = 10_000_000 if full else 100_000
    opts.deliveries = 5000 if full else 1000
    opts.conversions = 200 if full else 50
    opts.report_clicks = 1_000_000 if full else 50_000
    opts.report_clicks_pg = 10_000_000 if full else 50_000
    only = set(opts.only.split(","))
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    started = datetime.datetime.now(datetime.timezone.utc)
    print(
        "tracker benchmarks, %s: %s, %d cores, Python %s; load average before: %s"
        % (
            "full sizes" if full else "small sizes",
            platform.node(),
            os.cpu_count(),
            platform.python_version(),
            loadavg(),
        ),
        flush=True,
    )
    engines = [None] + ([opts.pg] if opts.pg else [])
    steps = []
    if "click" in only:
        steps.append(("click, SQLite", lambda: bench_clicks_sqlite(opts)))
        steps.append(("click, write-behind, SQLite", lambda: bench_clicks_batched(opts, None)))
        if opts.pg:
            steps.append(("click, PostgreSQL", lambda: bench_clicks_postgres(opts)))
            steps.append(("click, write-behind, PostgreSQL", lambda: bench_clicks_batched(opts, opts.pg)))
    for pg in engines:
        name = "PostgreSQL" if pg else "SQLite"
        if "postback" in only:
            steps.append(("postback, " + name, lambda pg=pg: bench_postbacks(opts, pg)))
        if "delivery" in only:
            steps.append(("delivery, " + name, lambda pg=pg: bench_deliveries(opts, pg)))
        if "report" in only:
            steps.append(("report, " + name, lambda pg=pg: bench_reports(opts, pg)))
    for name, step in steps:
        print("… %s (load %s)" % (name, loadavg()), flush=True)
        try:
            step()
        except Exception as exc:  # one bench failing still shows the others
            row(name, "-", "failed: %s" % str(exc).strip().splitlines()[-1][:120], "-", "-", "-", False)
    with open(opts.log, "w") as f:
        f.write("\n".join(LOG))
    print()
    print(
        "Measured %s UTC on %s (%d cores), load average after: %s; medians of %d run(s) (min–max)"
        % (started.strftime("%Y-%m-%d %H:%M"), platform.node(), os.cpu_count(), loadavg(), opts.runs)
    )
    print()
    print("| path | database | figure | baseline in the same run | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for cells in ROWS:
        print("| " + " | ".join(cells) + " |")
    print("\n(every bench's own printout: %s)" % opts.log)
    return 0 if all(cells[-1] == "yes" for cells in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
