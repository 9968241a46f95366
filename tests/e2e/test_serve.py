"""The whole product as a user starts it: ``tracker serve`` in a subprocess."""

import signal
import socket
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import requests

from conftest import ROOT


def test_serve_create_flow_click_and_read_it_back(start_server):
    server = start_server("serve", workers=2)
    created = server.api(
        "POST",
        "/api/v1/flows",
        json={"name": "E2E", "offer_url": "https://offer.example/?cid={clickid}&s={sub1}"},
    )
    assert created.status_code == 201, created.text
    flow = created.json()
    assert flow["link"] == server.url + "/r/" + flow["key"]

    response = requests.get(
        flow["link"] + "?sub1=e2e&utm_source=push",
        allow_redirects=False,
        headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
        },
        timeout=10,
    )
    assert response.status_code == 302
    click_id = parse_qs(urlparse(response.headers["Location"]).query)["cid"][0]

    click = server.api("GET", "/api/v1/clicks/" + click_id).json()
    assert (click["sub1"], click["utm_source"], click["flow_id"]) == ("e2e", "push", flow["id"])
    assert (click["device_type"], click["os"], click["browser"]) == ("desktop", "Windows", "Chrome")


def test_serve_answers_hostile_clicks_with_redirects(start_server):
    server = start_server("serve", workers=1)
    flow = server.api(
        "POST", "/api/v1/flows", json={"name": "Hostile", "offer_url": "https://offer.example/?s={sub1}"}
    ).json()
    long_query = "sub1=%s&big=%s" % ("a" * 300, "b" * 200_000)
    many = "&".join("p%d=%d" % (i, i) for i in range(3000))
    for query in (long_query, many, "sub1=%ff%fe%00x"):
        response = requests.get(flow["link"] + "?" + query, allow_redirects=False, timeout=10)
        assert response.status_code == 302, query[:50]
    assert len(server.api("GET", "/api/v1/clicks").json()["items"]) == 3


def test_serve_stops_cleanly_on_sigterm(start_server):
    server = start_server("serve", workers=1)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0


def test_serve_on_a_busy_port_says_so_in_one_line_and_exits_non_zero(server_env, app):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        for command in ("serve", "web"):
            result = subprocess.run(
                [sys.executable, "-m", "tracker", command, "--port", str(port)],
                cwd=ROOT,
                env=server_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1
            assert result.stdout == ""  # no "listening", no setup link
            assert result.stderr == (
                "error: port %d on 127.0.0.1 is already in use (is another tracker running? stop it first)\n"
                % port
            )


def test_serve_says_where_geo_comes_from_once(start_server):
    server = start_server("serve", workers=2)
    server.api("GET", "/api/v1/flows")  # both processes up and answering
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    log = server.log()
    assert log.count("GeoIP: country from built-in iptocc data") == 1, log
    assert "GeoIP databases missing" not in log


def test_a_click_from_8_8_8_8_on_a_fresh_install_is_recorded_in_the_us(start_server):
    server = start_server("serve", workers=1, env={"TRACKER_TRUSTED_PROXIES": "1"})
    flow = server.api(
        "POST", "/api/v1/flows", json={"name": "Geo", "offer_url": "https://o.example/?g={country}"}
    )
    response = requests.get(
        flow.json()["link"], headers={"X-Forwarded-For": "8.8.8.8"}, allow_redirects=False, timeout=10
    )
    assert response.headers["Location"] == "https://o.example/?g=US"
    click = server.api("GET", "/api/v1/clicks").json()["items"][0]
    assert (click["ip"], click["country"], click["country_name"], click["asn"]) == ("8.8.8.8", "US", "", None)
