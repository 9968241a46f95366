"""The ``tracker`` command, run as a user runs it: in a subprocess."""

import io
import os
import subprocess
import sys
import tarfile

import requests
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tracker.migrations import LATEST

from conftest import PG_URL, ROOT


def run(args, env, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_db_upgrade_creates_then_keeps_the_schema(server_env, tmp_path):
    env = dict(server_env)
    if not PG_URL:  # a database of its own, so that the first upgrade creates it
        env["TRACKER_DATABASE_URL"] = "sqlite:///" + str(tmp_path / "new.db")
    first = run(["db", "upgrade"], env)
    assert ("→ version %d" % LATEST) in first.stdout
    if not PG_URL:
        assert "new → version %d" % LATEST in first.stdout
    again = run(["db", "upgrade"], env)
    assert "version %d → version %d" % (LATEST, LATEST) in again.stdout


def test_token_create_prints_a_working_token(server_env, start_server):
    token = run(["token", "create", "ci"], server_env).stdout.strip()
    assert token.startswith("trk_")
    server = start_server("web", workers=1)
    assert (
        requests.get(
            server.url + "/api/v1/flows", headers={"Authorization": "Bearer " + token}, timeout=10
        ).status_code
        == 200
    )
    assert (
        requests.get(
            server.url + "/api/v1/flows", headers={"Authorization": "Bearer nope"}, timeout=10
        ).status_code
        == 401
    )


def test_user_create_refuses_duplicates_and_short_passwords(server_env, app):
    assert (
        "created user admin"
        in run(["user", "create", "admin", "--password", "correct horse"], server_env).stdout
    )
    again = run(["user", "create", "admin", "--password", "correct horse"], server_env, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    short = run(["user", "create", "bob", "--password", "short"], server_env, check=False)
    assert short.returncode == 1 and "at least 8" in short.stderr


def test_token_create_reveal_makes_a_token_that_may_unmask(server_env, start_server):
    plain = run(["token", "create", "bi"], server_env).stdout.strip()
    revealing = run(["token", "create", "ops", "--reveal"], server_env).stdout.strip()
    server = start_server("web", workers=1)
    url = server.url + "/api/v1/flows?reveal=1"
    assert requests.get(url, headers={"Authorization": "Bearer " + plain}, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": "Bearer " + revealing}, timeout=10).status_code == 200


def test_user_password_sets_it_and_ends_the_users_sessions(server_env, start_server):
    run(["user", "create", "admin", "--password", "correct horse"], server_env)
    server = start_server("web", workers=1)
    browser = requests.Session()
    page = browser.get(server.url + "/login", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = browser.post(
        server.url + "/login",
        data={"username": "admin", "password": "correct horse", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    assert browser.get(server.url + "/flows", allow_redirects=False, timeout=10).status_code == 200
    changed = run(["user", "password", "admin", "--password", "a brand new one"], server_env)
    assert changed.stdout.strip() == "password of admin changed; 1 session(s) ended"
    assert browser.get(server.url + "/flows", allow_redirects=False, timeout=10).status_code == 302
    short = run(["user", "password", "admin", "--password", "short"], server_env, check=False)
    assert short.returncode == 1 and "at least 8" in short.stderr
    nobody = run(["user", "password", "nobody", "--password", "long enough"], server_env, check=False)
    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr


def _city_tarball():
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-City")
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "city": {"names": {"en": "London"}},
        },
    )
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "city-%d.mmdb" % os.getpid())
    writer.to_db_file(path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(path, arcname="GeoLite2-City_20261120/GeoLite2-City.mmdb")
    os.unlink(path)
    return buffer.getvalue()


def test_geoip_update_then_lookup(server_env, httpserver, tmp_path, app):
    tarball = _city_tarball()
    httpserver.expect_request("/GeoLite2-City/download").respond_with_data(
        tarball, content_type="application/gzip"
    )
    httpserver.expect_request("/GeoLite2-ASN/download").respond_with_data(
        tarball, content_type="application/gzip"
    )
    env = {
        **server_env,
        "MAXMIND_ACCOUNT_ID": "123",
        "MAXMIND_LICENSE_KEY": "key",
        "MAXMIND_DOWNLOAD_URL": httpserver.url_for("/").rstrip("/"),
    }
    result = run(["geoip", "update"], env)
    assert "GeoLite2-City.mmdb" in result.stdout
    lookup = run(["geoip", "lookup", "81.2.69.160"], env)
    assert '"country": "GB"' in lookup.stdout and '"city": "London"' in lookup.stdout


def test_geoip_update_without_credentials_says_what_to_set(server_env, app):
    env = {k: v for k, v in server_env.items() if not k.startswith("MAXMIND")}
    result = run(["geoip", "update"], env, check=False)
    assert result.returncode == 2 and "MAXMIND_ACCOUNT_ID" in result.stderr


def test_python_dash_m_and_help(server_env):
    result = run(["--help"], server_env)
    for command in ("serve", "web", "worker", "user", "token", "db", "geoip"):
        assert command in result.stdout


def test_user_create_says_nothing_about_geoip(server_env, app):
    result = run(["user", "create", "quiet", "--password", "correct horse"], server_env)
    assert result.stdout == "created user quiet\n"
    assert "GeoIP" not in result.stderr
