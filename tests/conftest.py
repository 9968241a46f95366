"""Fixtures: a fresh database per test (a copy of a SQLite file migrated once per session, or
PostgreSQL, emptied, when TRACKER_TEST_DATABASE_URL is set), the app, its client, and a real
``tracker serve``. Tests that start a process or a browser are marked ``e2e``.

The suite runs in parallel (pytest-xdist, one process per core): each process has its own
PostgreSQL database (the given one's name with the worker's id appended), and the ``e2e`` tests
all run in one process, one at a time, as their timing needs the machine to themselves."""

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg2.extensions
import pytest
import requests

from tracker import create_app
from tracker.clickin.flow_cache import forget_flows
from tracker.db import db, default_timeouts, init_db, is_postgres
from tracker.migrations import upgrade
from tracker.models import ALL_MODELS

pytest_plugins = ["postback_helpers", "browser_helpers"]

API_TOKEN = "test-api-token"
# The tests' receivers listen on loopback, which outgoing postbacks may not reach by default
# (DESIGN §4.8): the tests allow it, and tests/delivery/test_destinations.py proves the refusal.
LOOPBACK = "127.0.0.0/8,::1/128"


def worker_database_url(url):
    """The PostgreSQL database of this test process: ``url`` itself, or under pytest-xdist
    the same server's ``<name>_<worker>`` (created by ``template_database``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/%s_%s" % (parts.path.lstrip("/"), worker)))


IN_CI = bool(os.environ.get("CI"))


class Sent(psycopg2.extensions.cursor):
    """A PostgreSQL cursor that keeps each text it sends (``Sent.texts``): one text, one round
    trip. Set as a connection's ``cursor_factory``."""

    texts = []

    def execute(self, sql, params=None):
        Sent.texts.append(sql if isinstance(sql, str) else sql.decode())
        return super().execute(sql, params)


@pytest.fixture
def counted(monkeypatch):
    """PostgreSQL: every connection the pool opens from now on counts what it sends
    (``Sent.texts``)."""
    connect = db.obj._connect

    def counting():
        conn = connect()
        conn.cursor_factory = Sent
        return conn

    db.obj.close_all()
    monkeypatch.setattr(db.obj, "_connect", counting)
    Sent.texts = []
    yield Sent.texts
    db.obj.close_all()


def examples(count):
    """How many examples a property test makes: ``count`` in CI, a third of it (at least 10) in
    the fast loop on a developer's machine, where the property tests would otherwise be a
    quarter of ``pytest -m "not e2e"``. ``CI=1 pytest`` runs them all by hand."""
    return count if IN_CI else max(10, count // 3)


BASE_PG_URL = os.environ.get("TRACKER_TEST_DATABASE_URL")
PG_URL = worker_database_url(BASE_PG_URL)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E2E_FIXTURES = {"start_server", "browser"}


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a test process per core and one more. The tests that mostly wait on real
    timeouts (the xdist group "waits", about 20 s of sleeping) then leave no core idle."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


def pytest_collection_modifyitems(config, items):
    """Mark ``e2e`` every test that starts a process or a browser (``pytest -m "not e2e"``
    runs the rest): those under ``tests/e2e/``, those using a process or browser fixture, and
    those marked by hand (a CLI run in a subprocess); all of them run in one process.
    Tests of what only one engine has (``postgres_only``: partitions, the pool, a server going
    down; ``sqlite_only``: the tracker's own disk filling up) are left out of the other engine's
    run: nothing is missing from the machine, they do not apply there."""
    other_engine = "sqlite_only" if PG_URL else "postgres_only"
    elsewhere = [item for item in items if item.get_closest_marker(other_engine)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not item.get_closest_marker(other_engine)]
    for item in items:
        by_hand = item.get_closest_marker("e2e")
        if "e2e" in item.path.parts or E2E_FIXTURES & set(item.fixturenames) or by_hand:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))


def create_postgres_database(url):
    """Create ``url``'s database on its server unless it exists."""
    import psycopg2

    name = urlsplit(url).path.lstrip("/")
    admin = psycopg2.connect(BASE_PG_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute('CREATE DATABASE "%s"' % name)
    admin.close()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory):
    """The schema, made once per session: a SQLite file each test copies, or PostgreSQL's."""
    if PG_URL and PG_URL != BASE_PG_URL:
        create_postgres_database(PG_URL)
    url = PG_URL or "sqlite:///" + str(tmp_path_factory.mktemp("template") / "tracker.db")
    init_db(url)
    upgrade()
    return None if PG_URL else url[len("sqlite:///") :]


@pytest.fixture
def database_url(tmp_path, template_database):
    """The database this test runs on, at the latest schema (emptied by ``make_app``)."""
    if PG_URL:
        return PG_URL
    path = tmp_path / "tracker.db"
    shutil.copyfile(template_database, path)
    return "sqlite:///" + str(path)


def empty_database():
    """Remove every row of PostgreSQL's shared tables (a SQLite test has its own copy)."""
    tables = ", ".join('"%s"' % m._meta.table_name for m in ALL_MODELS)
    # not under a click's timeouts, which a pooled connection that served one keeps (as the
    # app's requests do: db.init_app): a TRUNCATE on a loaded machine outlasted its 2 s or so
    default_timeouts()
    db.execute_sql("TRUNCATE %s RESTART IDENTITY CASCADE" % tables)


@pytest.fixture
def app_config(tmp_path, database_url):
    """The settings of the test app; a test may change them before using ``app``."""
    (tmp_path / "geoip").mkdir(exist_ok=True)
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_GEOIP_DIR": str(tmp_path / "geoip"),
        "TRACKER_API_TOKEN": API_TOKEN,
        "TRACKER_SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "TRACKER_DELIVERY_ALLOWED_NETWORKS": LOOPBACK,
    }


@pytest.fixture
def make_app(app_config):
    """Build the app (with settings changed by ``overrides``) on an empty, current schema."""

    def make(**overrides):
        application = create_app({**app_config, **overrides})
        upgrade()  # a no-op on the template's copy; a test's own database gets its schema
        if is_postgres():
            with db.connection_context():
                empty_database()
        return application

    yield make
    if not db.is_closed():
        db.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture(scope="session")
def _dataset_files():
    return {}


@pytest.fixture
def dataset_copy(app, _dataset_files, tmp_path_factory):
    """``dataset_copy(name, build)`` gives this test's database the rows ``build()`` writes.
    On SQLite they are written once per test process and copied, page by page, into each later
    test's database (a large dataset is most of a report test's time); PostgreSQL builds them
    per test, as its databases are shared and only emptied."""

    def restore_or_build(name, build):
        saved = _dataset_files.get(name)
        if is_postgres():
            build()
        elif saved:
            with contextlib.closing(sqlite3.connect(saved)) as source:
                source.backup(db.connection())
            forget_flows()
        else:
            build()
            path = tmp_path_factory.mktemp("dataset") / (name + ".db")
            with contextlib.closing(sqlite3.connect(path)) as target:
                db.connection().backup(target)
            _dataset_files[name] = path

    return restore_or_build


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """The test client with the API token, answering ``(status, json)``."""

    def __init__(self, client):
        self.client = client
        self.headers = {"Authorization": "Bearer " + API_TOKEN}

    def call(self, method, path, json=None, **kwargs):
        response = self.client.open(path, method=method, json=json, headers=self.headers, **kwargs)
        return response.status_code, response.get_json(silent=True)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def api(client):
    return Api(client)


def seed_one_of_everything(client, api):
    """One of everything, so ids 1 and 2 find rows: a traffic source, a flow with an event and
    a postback, a click, a conversion (and so a delivery), a refused postback, an offer, a lander."""
    status, source = api.post("/api/v1/traffic-sources", json={"name": "Src", "click_id_param": "zone"})
    assert status == 201
    assert api.post("/api/v1/offers", json={"name": "O", "url": "https://offer.example/o"})[0] == 201
    assert api.post("/api/v1/landers", json={"name": "L", "url": "https://lander.example/l"})[0] == 201
    status, flow = api.post(
        "/api/v1/flows",
        json={
            "name": "Fuzz",
            "offer_url": "https://offer.example/?c={clickid}",
            "traffic_source_id": source["id"],
            "events": [{"name": "conversion", "conversion": True}],
            "postbacks": [{"trigger": "conversion", "url": "https://pb.example/?c={clickid}&p={payout}"}],
        },
    )
    assert status == 201
    location = client.get("/r/%s?sub1=a&zone=7" % flow["key"]).headers["Location"]
    click_id = location.rsplit("=", 1)[1]
    assert client.get("/postback?click_id=%s&payout=3" % click_id).status_code == 200
    assert client.get("/postback?click_id=zzz").status_code == 404
    return flow


@pytest.fixture
def make_flow(api):
    """Create a flow over the API and return its JSON."""

    def make(**fields):
        body = {"name": "Test flow", "offer_url": "https://offer.example/lp?cid={clickid}"}
        body.update(fields)
        status, flow = api.post("/api/v1/flows", json=body)
        assert status == 201, flow
        return flow

    return make


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real ``tracker serve`` (or other sub-command) in a subprocess."""

    def __init__(self, process, url, log_path):
        self.process, self.url, self.log_path = process, url, log_path

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def api(self, method, path, **kwargs):
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = "Bearer " + API_TOKEN
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def server_env(tmp_path, database_url):
    """The environment a served tracker runs with (the same database as the test's app)."""
    env = dict(os.environ)
    env.update(
        {
            "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_GEOIP_DIR": str(tmp_path / "geoip"),
            "TRACKER_API_TOKEN": API_TOKEN,
            "TRACKER_WORKER_INTERVAL": "0.2",
            "TRACKER_DELIVERY_ALLOWED_NETWORKS": LOOPBACK,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_server(tmp_path, server_env, app):
    """Start ``tracker <command>`` on a free port; every server is stopped after the test."""
    started = []

    def start(command="serve", workers=2, env=None, extra=()):
        port = free_port()
        log_path = tmp_path / ("server-%d.log" % port)
        argv = [sys.executable, "-m", "tracker", command]
        if command in ("serve", "web"):
            argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        argv += list(extra)
        log = open(log_path, "w")
        process = subprocess.Popen(
            argv, cwd=ROOT, env={**server_env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        server = Server(process, "http://127.0.0.1:%d" % port, log_path)
        started.append(server)
        if command in ("serve", "web"):
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(server.url + "/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start:\n" + server.log())
                time.sleep(0.1)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture
def machine_in_new_york(monkeypatch):
    """The machine's local time zone set to America/New_York (UTC-4 in May) for one test, in
    every pass of the suite: code that reads local time where it means UTC answers wrong."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield "America/New_York"
    monkeypatch.undo()
    time.tzset()
