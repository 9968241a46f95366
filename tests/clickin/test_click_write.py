"""The click write: the prepared INSERT stores every field, is_unique's 24-hour window, and
concurrent clicks on two gunicorn workers are all stored."""

import datetime
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import requests
from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet

from tracker.clickin.flow_cache import load_flow
from tracker.clickin.record import capture, insert_click, new_click_id, record_click
from tracker.clickin.visitor import make_visitor
from tracker.db import db
from tracker.models import Click

from conftest import Api

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
T0 = datetime.datetime(2026, 3, 1, 12, 0)
HOUR = datetime.timedelta(hours=1)


def write_mmdb(path, database_type, cidr, record):
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description=database_type,
    )
    writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))


def test_every_field_is_stored_with_geoip_and_device(make_app, tmp_path):
    write_mmdb(
        tmp_path / "geoip" / "city.mmdb",
        "GeoIP2-City",
        "81.2.69.0/24",
        {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "subdivisions": [{"names": {"en": "England"}}],
            "city": {"names": {"en": "London"}},
            "postal": {"code": "SW11"},
        },
    )
    write_mmdb(
        tmp_path / "geoip" / "asn.mmdb",
        "GeoLite2-ASN",
        "81.2.69.0/24",
        {
            "autonomous_system_number": MmdbU32(20712),
            "autonomous_system_organization": "Andrews & Arnold Ltd",
        },
    )
    client = make_app(TRACKER_TRUSTED_PROXIES=1).test_client()
    flow = client.post(
        "/api/v1/flows",
        headers={"Authorization": "Bearer test-api-token"},
        json={"name": "geo", "offer_url": "https://offer.example/lp?cid={clickid}&geo={country}&c={city}"},
    ).get_json()
    response = client.get(
        "/r/%s?sub1=s1&utm_term=t&var3=v3&cost=1.25&fbclid=F" % flow["key"],
        headers={"User-Agent": IPHONE, "X-Forwarded-For": "81.2.69.142"},
    )
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["Location"]).query)
    with db.connection_context():
        click = Click.get()
    assert query == {"cid": [click.click_id], "geo": ["GB"], "c": ["London"]}
    assert (click.ip, click.country, click.country_name, click.region, click.city, click.zip) == (
        "81.2.69.142",
        "GB",
        "United Kingdom",
        "England",
        "London",
        "SW11",
    )
    assert (click.asn, click.isp, click.carrier, click.connection_type) == (
        20712,
        "Andrews & Arnold Ltd",
        "",
        "",
    )
    assert (click.device_type, click.os, click.browser, click.brand, click.is_bot) == (
        "mobile",
        "iOS",
        "Mobile Safari",
        "Apple",
        False,
    )
    assert (click.sub1, click.utm_term, click.var3, click.external_id) == ("s1", "t", "v3", "F")
    assert click.cost == Decimal("1.25")
    assert click.params == {"sub1": "s1", "utm_term": "t", "var3": "v3", "cost": "1.25", "fbclid": "F"}
    fbc = "fb.1.%d.F" % (click.created_at.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    assert (click.cookies, click.cut, click.is_unique) == ({"_fbc": fbc}, [], True)


def test_unique_means_no_click_of_this_ip_and_agent_on_this_flow_in_24_hours(app, make_flow):
    key_a, key_b = make_flow()["key"], make_flow()["key"]
    visitor = make_visitor("203.0.113.9", IPHONE, "", "", [], {})
    other_agent = make_visitor("203.0.113.9", "curl/8.5", "", "", [], {})
    with db.connection_context():
        flow_a, flow_b = load_flow(key_a), load_flow(key_b)
        steps = [
            (flow_a, visitor, T0),
            (flow_a, visitor, T0 + HOUR),
            (flow_b, visitor, T0 + 2 * HOUR),
            (flow_a, other_agent, T0 + 3 * HOUR),
            (flow_a, visitor, T0 + 25 * HOUR + datetime.timedelta(seconds=1)),
            (flow_a, visitor, T0 + 26 * HOUR),
        ]
        returned = [record_click(flow, who, now=now)[0].is_unique for flow, who, now in steps]
        stored = [c.is_unique for c in Click.select().order_by(Click.created_at)]
    assert returned == [True, False, True, True, True, False]
    assert stored == returned


def test_concurrent_clicks_on_two_workers_are_all_stored(start_server):
    server = start_server("web", workers=2)
    flow = server.api(
        "POST", "/api/v1/flows", json={"name": "load", "offer_url": "https://offer.example/?cid={clickid}"}
    ).json()

    def clicks(n):
        with requests.Session() as session:
            return [
                session.get(
                    "%s?sub1=t%d" % (flow["link"], i),
                    allow_redirects=False,
                    headers={"User-Agent": IPHONE},
                    timeout=30,
                ).status_code
                for i in range(n)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(clicks, [25] * 8) for s in batch]
    assert statuses == [302] * 200
    with db.connection_context():
        assert Click.select().count() == 200
    assert "database is locked" not in server.log()
    assert "Traceback" not in server.log()


def test_is_unique_is_read_back_where_the_engine_has_no_returning(app, make_flow):
    # SQLite before 3.35 has no INSERT … RETURNING: the click reads its is_unique back.
    key = make_flow()["key"]
    visitor = make_visitor("203.0.113.9", IPHONE, "", "", [], {})
    with db.connection_context():
        flow = load_flow(key)
        clicks = [capture(flow, visitor, new_click_id(), T0 + n * HOUR) for n in (0, 1, 30)]
        for click in clicks:
            insert_click(click, returning=False)
        stored = [c.is_unique for c in Click.select().order_by(Click.created_at)]
    assert [c.is_unique for c in clicks] == stored == [True, False, True]


def test_sqlite_write_lock_is_free_as_soon_as_the_click_is_recorded(make_app, tmp_path):
    path = tmp_path / "own.db"
    api = Api(make_app(TRACKER_DATABASE_URL="sqlite:///%s" % path).test_client())
    key = api.post("/api/v1/flows", json={"name": "f", "offer_url": "https://o.example/"})[1]["key"]
    with db.connection_context():
        click, _ = record_click(load_flow(key), make_visitor("203.0.113.9", IPHONE, "", "", [], {}))
        other = sqlite3.connect(str(path), timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # fails at once if the INSERT still held the lock
        assert other.execute("SELECT click_id, is_unique FROM click").fetchall() == [(click.click_id, 1)]
        other.execute("ROLLBACK")
        other.close()
        assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone() == (10000,)
