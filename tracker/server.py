"""``tracker serve|web|worker``: start the processes and stop them cleanly together.

``serve`` supervises gunicorn (``wsgi:app``) and one delivery worker process. SIGTERM or
Ctrl-C is passed on to every child, which finish in-flight work; if one child dies, the
others are stopped too.
"""

import errno
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .config import PROJECT_ROOT

logger = logging.getLogger(__name__)

# Clicks carry long query strings: gunicorn's default 4 KB request line would answer 414.
GUNICORN_OPTIONS = [
    "--worker-class",
    "sync",
    "--limit-request-line",
    "0",
    "--limit-request-field_size",
    "32768",
    "--graceful-timeout",
    "20",
    "--keep-alive",
    "5",
    "--logger-class",
    "tracker.operations.process_logs.GunicornLogger",
    "--worker-tmp-dir",
    "/dev/shm",
]
# Seconds gunicorn lets a worker go silent before killing it. No click waits that long (a
# click the database cannot take goes to the spool after TRACKER_CLICK_BUSY_MS); the fault
# tests lower it to prove that with a lock held longer than it.
DEFAULT_WEB_TIMEOUT = 30


def gunicorn_command(host, port, workers):
    """The gunicorn command line that serves ``wsgi:app``."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        "%s:%d" % (host, port),
        "--workers",
        str(workers),
        "--pythonpath",
        PROJECT_ROOT,
        "--timeout",
        str(int(os.environ.get("TRACKER_WEB_TIMEOUT") or DEFAULT_WEB_TIMEOUT)),
        *GUNICORN_OPTIONS,
    ]
    if not os.path.isdir("/dev/shm"):
        command = command[:-2]
    return command + ["wsgi:app"]


def worker_command():
    """The command line of one delivery worker process."""
    return [sys.executable, "-m", "tracker", "worker"]


def port_in_use(host, port):
    """The reason ``host:port`` can't be listened on (e.g. another ``tracker serve`` has it),
    or None when it is free. gunicorn binds it right after, with the same SO_REUSEADDR."""
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "port %d on %s is already in use (is another tracker running? stop it first)" % (
                port,
                host,
            )
        return "cannot listen on %s port %d: %s" % (host, port, exc.strerror or exc)
    return None


def use_metrics_folder():
    """Point prometheus_client's multiprocess mode at an empty folder, for this process and
    the children it starts (gunicorn's workers each write their figures there; ``/metrics``
    adds them up). Returns the folder when it was made here (to remove at the end), else None.

    Set before anything imports prometheus_client: it picks its mode when imported."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:  # the operator's own: it must start empty, as prometheus_client requires
        os.makedirs(folder, exist_ok=True)
        for path in glob.glob(os.path.join(folder, "*.db")):
            os.unlink(path)
        return None
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tracker-metrics-")
    return folder


def prepare(url=None):
    """Create or upgrade the schema and say what a first start needs to say.

    ``url`` is where this process serves pages (None for the worker alone); the hooks
    find it in ``app.config["TRACKER_SERVE_URL"]``."""
    from . import create_app
    from .migrations import upgrade

    app = create_app()
    app.config["TRACKER_SERVE_URL"] = url
    upgrade()
    for hook in app.extensions.get("tracker.on_serve", []):
        hook(app)
    return app


def supervise(commands):
    """Run ``commands`` as children until a signal or a child's exit; returns an exit code."""
    children = [subprocess.Popen(command) for command in commands]
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        while not stopping:
            exited = [child for child in children if child.poll() is not None]
            if exited:
                code = exited[0].returncode or 1
                name = "gunicorn" if "gunicorn" in exited[0].args else "the delivery worker"
                logger.error("%s exited with %s; stopping", name, exited[0].returncode)
                break
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def serve(args, web=True, worker=True):
    """Start the web server and/or the delivery worker; return when they have stopped.

    ``worker`` alone runs in this process; with ``web`` it is a supervised child.
    """
    if web and (problem := port_in_use(args.host, args.port)):
        print("error: %s" % problem, file=sys.stderr, flush=True)
        return 1
    if worker and not web:
        from .delivery.worker import run_worker

        return run_worker(prepare(None))
    metrics_folder = use_metrics_folder()
    try:
        prepare("http://%s:%d" % (args.host, args.port))
        commands = [gunicorn_command(args.host, args.port, args.workers)]
        print("tracker listening on http://%s:%d" % (args.host, args.port), flush=True)
        if worker:
            commands.append(worker_command())
        return supervise(commands)
    finally:
        if metrics_folder:
            shutil.rmtree(metrics_folder, ignore_errors=True)
