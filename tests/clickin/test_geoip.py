"""GeoIP enrichment against real .mmdb files written with mmdb_writer."""

import base64
import io
import os
import shutil
import tarfile

import pytest
from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet
from werkzeug import Response

from tracker.enrichment.geoip import NOT_COUNTRIES, GeoIP, offline_country, registered_country
from tracker.enrichment.geoip_download import GeoIPDownloadError, download_databases

EMPTY = {
    "country": "",
    "country_name": "",
    "region": "",
    "city": "",
    "zip": "",
    "isp": "",
    "asn": None,
    "carrier": "",
    "connection_type": "",
}
ALL_MISSING = ["City", "ASN", "ISP", "Connection-Type"]


def _names(en):
    return {"en": en}


LONDON = {
    "continent": {"code": "EU", "names": _names("Europe")},
    "country": {"iso_code": "GB", "names": _names("United Kingdom")},
    "city": {"names": _names("London")},
    "subdivisions": [
        {"iso_code": "ENG", "names": _names("England")},
        {"iso_code": "WND", "names": _names("Wandsworth")},
    ],
    "postal": {"code": "SW11"},
    "location": {
        "latitude": 51.4642,
        "longitude": -0.1781,
        "time_zone": "Europe/London",
        "accuracy_radius": MmdbU32(100),
    },
}
BOXFORD = {
    "country": {"iso_code": "GB", "names": _names("United Kingdom")},
    "city": {"names": _names("Boxford")},
    "subdivisions": [{"iso_code": "ENG", "names": _names("England")}],
    "postal": {"code": "OX1"},
    "location": {"latitude": 51.75, "longitude": -1.25, "accuracy_radius": MmdbU32(100)},
}
MILTON = {
    "country": {"iso_code": "US", "names": _names("United States")},
    "city": {"names": _names("Milton")},
    "subdivisions": [{"iso_code": "WA", "names": _names("Washington")}],
    "postal": {"code": "98354"},
    "location": {"latitude": 47.2513, "longitude": -122.3149, "accuracy_radius": MmdbU32(22)},
}
TOKYO = {
    "country": {"iso_code": "JP", "names": _names("Japan")},
    "city": {"names": _names("Tokyo")},
    "location": {"latitude": 35.69, "longitude": 139.69},
}


def write_db(path, database_type, records, ip_version=6):
    """Write ``records`` ({cidr: record}) to an mmdb at ``path``."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description=f"test {database_type}",
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def write_city(path, database_type="GeoIP2-City"):
    return write_db(
        path,
        database_type,
        {
            "81.2.69.0/24": LONDON,
            "2.125.160.0/24": BOXFORD,
            "216.160.83.0/24": MILTON,
            "2001:218::/32": TOKYO,
        },
    )


def write_isp(path):
    return write_db(
        path,
        "GeoIP2-ISP",
        {
            "81.2.69.0/24": {
                "isp": "Andrews & Arnold Ltd",
                "organization": "STONEHOUSE office network",
                "autonomous_system_number": MmdbU32(20712),
                "autonomous_system_organization": "Andrews & Arnold Ltd",
            },
            "2.125.160.0/24": {
                "isp": "EE Mobile",
                "organization": "EE",
                "autonomous_system_number": MmdbU32(12576),
                "autonomous_system_organization": "EE Limited",
                "mobile_country_code": "234",
                "mobile_network_code": "30",
            },
        },
    )


def write_connection_type(path):
    return write_db(
        path,
        "GeoIP2-Connection-Type",
        {
            "81.2.69.0/24": {"connection_type": "Corporate"},
            "2.125.160.0/24": {"connection_type": "Cellular"},
        },
    )


def write_asn(path):
    return write_db(
        path,
        "GeoLite2-ASN",
        {
            "81.2.69.0/24": {
                "autonomous_system_number": MmdbU32(20712),
                "autonomous_system_organization": "Andrews & Arnold Ltd",
            },
            "216.160.83.0/24": {
                "autonomous_system_number": MmdbU32(209),
                "autonomous_system_organization": "CenturyLink",
            },
        },
        ip_version=4,
    )


@pytest.fixture
def full_dir(tmp_path):
    write_city(tmp_path / "a.mmdb")
    write_isp(tmp_path / "zz-net.mmdb")
    write_connection_type(tmp_path / "conn.mmdb")
    return tmp_path


def test_lookup_with_city_isp_and_connection_type(full_dir):
    geo = GeoIP(full_dir)
    assert geo.missing() == []
    assert geo.lookup("81.2.69.142") == {
        "country": "GB",
        "country_name": "United Kingdom",
        "region": "England",
        "city": "London",
        "zip": "SW11",
        "isp": "Andrews & Arnold Ltd",
        "asn": 20712,
        "carrier": "",
        "connection_type": "Corporate",
    }
    assert geo.lookup("2.125.160.216") == {
        "country": "GB",
        "country_name": "United Kingdom",
        "region": "England",
        "city": "Boxford",
        "zip": "OX1",
        "isp": "EE Mobile",
        "asn": 12576,
        "carrier": "EE Mobile",
        "connection_type": "Cellular",
    }


def test_lookup_partial_records_and_ipv6(full_dir):
    geo = GeoIP(full_dir)
    assert geo.lookup("216.160.83.56") == {
        **EMPTY,
        "country": "US",
        "country_name": "United States",
        "region": "Washington",
        "city": "Milton",
        "zip": "98354",
    }
    assert geo.lookup("2001:218::1") == {**EMPTY, "country": "JP", "country_name": "Japan", "city": "Tokyo"}
    assert geo.lookup("::ffff:81.2.69.142")["city"] == "London"
    assert geo.lookup(" 81.2.69.142 ")["city"] == "London"


def test_asn_type_is_int(full_dir):
    assert type(GeoIP(full_dir).lookup("81.2.69.1")["asn"]) is int


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "::1",
        "fe80::1",
        "0.0.0.0",
        "",
        "not-an-ip",
        "999.1.1.1",
        "\x00",
        "81.2.69.142\x00",
        pytest.param("1" * 5000, id="5000-digits"),
        None,
    ],
)
def test_unknown_private_and_invalid_ips_give_empty_fields(full_dir, ip):
    assert GeoIP(full_dir).lookup(ip) == EMPTY


def test_result_is_a_copy(full_dir):
    geo = GeoIP(full_dir)
    geo.lookup("81.2.69.142")["city"] = "Paris"
    assert geo.lookup("81.2.69.142")["city"] == "London"


def test_asn_only_fills_isp_from_as_organization(tmp_path):
    write_asn(tmp_path / "numbers.mmdb")
    geo = GeoIP(tmp_path)
    assert geo.missing() == ["City", "ISP", "Connection-Type"]
    # The country of registration (iptocc) beside the ASN database's fields.
    assert geo.lookup("216.160.83.56") == {**EMPTY, "country": "US", "isp": "CenturyLink", "asn": 209}
    assert geo.lookup("81.2.69.142") == {
        **EMPTY,
        "country": "GB",
        "isp": "Andrews & Arnold Ltd",
        "asn": 20712,
    }
    # IPv6 in an IPv4-only database: no ASN, not an error.
    assert geo.lookup("2001:218::1") == {**EMPTY, "country": "JP"}


def test_isp_db_makes_asn_not_missing(tmp_path):
    write_isp(tmp_path / "x.mmdb")
    assert GeoIP(tmp_path).missing() == ["City", "Connection-Type"]


def test_country_only_is_partial_geo(tmp_path):
    write_db(
        tmp_path / "c.mmdb",
        "GeoLite2-Country",
        {"81.2.69.0/24": {"country": {"iso_code": "GB", "names": _names("United Kingdom")}}},
    )
    geo = GeoIP(tmp_path)
    assert "City" in geo.missing()
    assert geo.lookup("81.2.69.142") == {**EMPTY, "country": "GB", "country_name": "United Kingdom"}


def test_city_preferred_over_newer_country(tmp_path):
    write_city(tmp_path / "old.mmdb", database_type="GeoLite2-City")
    os.utime(tmp_path / "old.mmdb", (1_000_000, 1_000_000))
    write_db(
        tmp_path / "new.mmdb",
        "GeoIP2-Country",
        {"81.2.69.0/24": {"country": {"iso_code": "FR", "names": _names("France")}}},
    )
    assert GeoIP(tmp_path).lookup("81.2.69.142")["city"] == "London"


def test_newest_file_wins_within_a_role(tmp_path):
    write_db(
        tmp_path / "b.mmdb", "GeoIP2-Connection-Type", {"81.2.69.0/24": {"connection_type": "Cable/DSL"}}
    )
    write_connection_type(tmp_path / "a.mmdb")
    os.utime(tmp_path / "b.mmdb", (1_000_000, 1_000_000))
    assert GeoIP(tmp_path).lookup("81.2.69.142")["connection_type"] == "Corporate"


@pytest.mark.parametrize("make_dir", [lambda p: p, lambda p: p / "does-not-exist"])
def test_no_databases_gives_the_registered_country_only(tmp_path, make_dir):
    geo = GeoIP(make_dir(tmp_path))
    assert geo.missing() == ALL_MISSING
    assert geo.source() == "iptocc"
    assert geo.lookup("81.2.69.142") == {**EMPTY, "country": "GB"}
    assert geo.lookup("8.8.8.8") == {**EMPTY, "country": "US"}


@pytest.mark.parametrize(
    "ip, country",
    [
        ("8.8.8.8", "US"),
        ("::ffff:8.8.8.8", "US"),  # IPv4-mapped: iptocc alone answers nothing
        ("::FFFF:81.2.69.142", "GB"),
        ("2001:218::1", "JP"),
        ("2a02:6b8::2:242", "RU"),
        (" 8.8.8.8 ", "US"),  # stripped, as a header value may come
        ("10.1.2.3", ""),
        ("127.0.0.1", ""),
        ("::1", ""),
        ("::ffff:10.0.0.1", ""),
        ("::ffff:zzz", ""),
        ("not an ip", ""),
        ("81.2.69.142\x00", ""),
        ("1" * 5000, ""),
        ("", ""),
        (None, ""),
    ],
)
def test_registered_country_without_a_geo_database(tmp_path, ip, country):
    assert GeoIP(tmp_path).lookup(ip) == {**EMPTY, "country": country}


def test_rir_pseudo_codes_are_no_country(tmp_path):
    assert NOT_COUNTRIES == {"EU", "AP", "ZZ"}
    # 151.175.0.0/16 is registered to "EU" (the European Union's institutions) in iptocc
    # 3.3.170; its data is refreshed with each release, so the block may move one day.
    eu = "151.175.56.130"
    assert offline_country(eu) not in NOT_COUNTRIES
    if registered_country(eu) == "EU":
        assert GeoIP(tmp_path).lookup(eu) == EMPTY


def test_a_maxmind_geo_database_wins_over_the_registered_country(tmp_path):
    # 2001:218::/32 is registered in Japan; the City database says Tokyo, and 81.2.69.0/24
    # is filled from the file whatever the registry says.
    write_db(
        tmp_path / "c.mmdb",
        "GeoIP2-City",
        {"81.2.69.0/24": {"country": {"iso_code": "FR", "names": _names("France")}}},
    )
    geo = GeoIP(tmp_path)
    assert geo.source() == "MaxMind GeoIP2-City (c.mmdb)"
    assert geo.lookup("81.2.69.142")["country"] == "FR"
    # An address the file does not cover stays empty: the file is the geo source.
    assert geo.lookup("8.8.8.8")["country"] == ""


def test_notice_names_the_source_and_what_each_missing_database_adds(tmp_path):
    geo = GeoIP(tmp_path)
    assert geo.notice() == (
        "GeoIP: country from built-in iptocc data (the country each address is registered in); "
        "not in %s: City adds a located country (not only where the address is registered), its name, "
        "region, city, zip; ASN adds asn, isp; ISP adds isp, asn, carrier (paid); Connection-Type adds "
        "connection type (paid). Free ones: tracker geoip update" % tmp_path
    )
    write_city(tmp_path / "city.mmdb")
    write_isp(tmp_path / "isp.mmdb")
    write_connection_type(tmp_path / "conn.mmdb")
    assert GeoIP(tmp_path).notice() is None


def test_unreadable_and_foreign_files_are_ignored(tmp_path):
    (tmp_path / "broken.mmdb").write_bytes(b"not a database")
    write_db(tmp_path / "other.mmdb", "GeoIP2-Anonymous-IP", {"81.2.69.0/24": {"is_anonymous": True}})
    write_city(tmp_path / "city.mmdb")
    geo = GeoIP(tmp_path)
    assert geo.missing() == ["ASN", "ISP", "Connection-Type"]
    assert geo.lookup("81.2.69.142")["city"] == "London"


def test_reload_picks_up_new_files(tmp_path):
    source = write_city(tmp_path / "source.mmdb")
    geo_dir = tmp_path / "geoip"
    geo_dir.mkdir()

    slow = GeoIP(geo_dir)  # default 60 s interval: does not see the new file yet
    geo = GeoIP(geo_dir, rescan_seconds=0)
    registered = {**EMPTY, "country": "GB"}
    assert geo.lookup("81.2.69.142") == registered

    shutil.copy(source, geo_dir / "whatever.mmdb")
    assert geo.lookup("81.2.69.142")["city"] == "London"
    assert geo.missing() == ["ASN", "ISP", "Connection-Type"]
    assert slow.lookup("81.2.69.142") == registered

    (geo_dir / "whatever.mmdb").unlink()
    assert geo.lookup("81.2.69.142") == registered
    assert geo.missing() == ALL_MISSING


# -- download ---------------------------------------------------------------


def _tarball(tmp_path, inner_name="GeoLite2-City_20261120/GeoLite2-City.mmdb"):
    mmdb = write_city(tmp_path / "built.mmdb", database_type="GeoLite2-City")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(mmdb, arcname=inner_name)
        readme = b"GeoLite2 test archive\n"
        info = tarfile.TarInfo("GeoLite2-City_20261120/README.txt")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    return buf.getvalue()


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_download_databases(httpserver, tmp_path):
    body = _tarball(tmp_path)
    httpserver.expect_oneshot_request(
        "/geoip/databases/GeoLite2-City/download",
        query_string="suffix=tar.gz",
        headers={"Authorization": _basic("12345", "secret-key")},
    ).respond_with_response(Response(status=302, headers={"Location": "/r2/bucket/city.tar.gz"}))
    httpserver.expect_oneshot_request("/r2/bucket/city.tar.gz").respond_with_data(
        body, content_type="application/gzip"
    )

    target = tmp_path / "geo"
    paths = download_databases(
        "12345",
        "secret-key",
        target,
        editions=("GeoLite2-City",),
        base_url=httpserver.url_for("/geoip/databases"),
    )

    assert paths == [str(target / "GeoLite2-City.mmdb")]
    assert sorted(os.listdir(target)) == ["GeoLite2-City.mmdb"]  # no temp files left
    httpserver.check_assertions()
    geo = GeoIP(target)
    assert geo.lookup("81.2.69.142")["city"] == "London"
    assert geo.missing() == ["ASN", "ISP", "Connection-Type"]


def test_download_bad_credentials(httpserver, tmp_path):
    httpserver.expect_request("/geoip/databases/GeoLite2-City/download").respond_with_data(
        "Invalid account ID or license key", status=401
    )
    with pytest.raises(GeoIPDownloadError, match="401") as excinfo:
        download_databases(
            "1",
            "wrong",
            tmp_path,
            editions=("GeoLite2-City",),
            base_url=httpserver.url_for("/geoip/databases"),
        )
    message = str(excinfo.value)
    assert "credentials" in message and "Invalid account ID" in message
    assert os.listdir(tmp_path) == []


def test_download_rejects_archive_without_mmdb(httpserver, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    httpserver.expect_request("/db/GeoLite2-ASN/download").respond_with_data(buf.getvalue())
    target = tmp_path / "geo"
    with pytest.raises(GeoIPDownloadError, match="one .mmdb"):
        download_databases("1", "k", target, editions=("GeoLite2-ASN",), base_url=httpserver.url_for("/db"))
    assert os.listdir(target) == []
    assert not (tmp_path / "evil.txt").exists()


def test_download_ignores_member_path(httpserver, tmp_path):
    body = _tarball(tmp_path, inner_name="../../../escape/GeoLite2-City.mmdb")
    httpserver.expect_request("/db/GeoLite2-City/download").respond_with_data(body)
    target = tmp_path / "geo"
    download_databases("1", "k", target, editions=("GeoLite2-City",), base_url=httpserver.url_for("/db"))
    assert os.listdir(target) == ["GeoLite2-City.mmdb"]
    assert not (tmp_path / "escape").exists()


def test_not_public_agrees_with_ipaddress_on_every_16_bit_block():
    import ipaddress

    from tracker.enrichment.geoip import not_public

    def slow(addr):
        return (
            addr.is_private
            or addr.is_loopback
            or addr.is_link_local
            or addr.is_multicast
            or addr.is_unspecified
            or addr.is_reserved
        )

    for block in range(0, 1 << 16):
        for addr in (ipaddress.IPv4Address(block << 16), ipaddress.IPv4Address((block << 16) | 0xFFFF)):
            assert not_public(addr) == slow(addr), addr
    for text in ("192.0.2.1", "198.51.100.7", "203.0.113.9", "100.64.0.1", "::1", "fe80::1", "2001:db8::1"):
        addr = ipaddress.ip_address(text)
        assert not_public(addr) == slow(addr), text
