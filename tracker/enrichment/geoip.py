"""GeoIP enrichment from MaxMind .mmdb files, with a built-in country when there is none.

Each file's role (geo, ASN, ISP, connection type) is read from its metadata,
so any file name works. The directory is re-scanned periodically so that new
databases are picked up by a running server. Without a City or Country database,
``country`` comes from iptocc: the country each address is registered in, from the
regional internet registries' statistics compiled into its wheel (no file, no download).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import maxminddb
from iptocc import country_code as registered_country

logger = logging.getLogger(__name__)

FIELDS = ("country", "country_name", "region", "city", "zip", "isp", "asn", "carrier", "connection_type")
EMPTY_RESULT: Mapping[str, Any] = MappingProxyType({name: (None if name == "asn" else "") for name in FIELDS})

CACHE_SIZE = 10_000

# What each MaxMind database adds to a click (the dashboard and the start-up notice say it).
ADDS = {
    "City": "a located country (not only where the address is registered), its name, region, city, zip",
    "ASN": "asn, isp",
    "ISP": "isp, asn, carrier (paid)",
    "Connection-Type": "connection type (paid)",
}
# RIR pseudo-codes that name no country: EU (the European Union), AP (Asia/Pacific), ZZ.
NOT_COUNTRIES = frozenset(("EU", "AP", "ZZ"))


def offline_country(ip: str) -> str:
    """The ISO code of the country ``ip`` is registered in (iptocc); '' for private,
    unallocated or malformed input. The string goes to iptocc as it is: parsing it with
    ``ipaddress`` first would cost twenty times the lookup."""
    code = registered_country(ip)
    if code is None and ip[:7].lower() == "::ffff:":  # IPv4-mapped, from a dual-stack socket
        try:
            mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        except ValueError:
            return ""
        code = registered_country(str(mapped)) if mapped else None
    return "" if code is None or code in NOT_COUNTRIES else code


@dataclass
class _Database:
    reader: maxminddb.Reader
    database_type: str
    path: str
    mtime: float
    ip_version: int
    role: str | None


@dataclass
class _State:
    """Immutable-by-convention snapshot of the open databases; swapped whole on reload."""

    signature: tuple | None
    roles: dict[str, _Database] = field(default_factory=dict)


def _name(record: Mapping[str, Any] | None) -> str:
    """The English name of a geo record (country, subdivision, city), or ''."""
    return (record or {}).get("names", {}).get("en") or ""


# First bytes of every special-purpose IPv4 block (RFC 6890: this network, private, shared,
# loopback, link-local, documentation, benchmarking, multicast, reserved, broadcast). An
# address outside them is public without ipaddress's slower checks (a click's lookup).
SPECIAL_IPV4_FIRST_BYTES = frozenset([0, 10, 100, 127, 169, 172, 192, 198, 203, *range(224, 256)])


def not_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for private, loopback, link-local, multicast, unspecified and reserved addresses."""
    if addr.version == 4 and int(addr) >> 24 not in SPECIAL_IPV4_FIRST_BYTES:
        return False
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
    )


def _role_for(database_type: str) -> str | None:
    if "City" in database_type or "Country" in database_type:
        return "geo"
    if "ASN" in database_type:
        return "asn"
    if "ISP" in database_type:
        return "isp"
    if "Connection-Type" in database_type:
        return "connection_type"
    return None


def _preference(db: _Database) -> tuple:
    # City beats Country for the geo role; otherwise the newest file wins.
    return ("City" in db.database_type, db.mtime)


def _missing(roles: Mapping[str, _Database]) -> list[str]:
    geo = roles.get("geo")
    missing = []
    if geo is None or "City" not in geo.database_type:
        missing.append("City")  # a Country database is only a partial geo
    if "asn" not in roles and "isp" not in roles:
        missing.append("ASN")  # the ISP database also carries the ASN
    if "isp" not in roles:
        missing.append("ISP")
    if "connection_type" not in roles:
        missing.append("Connection-Type")
    return missing


class GeoIP:
    """Looks up click geo/network fields in the MaxMind databases of a directory."""

    def __init__(self, directory: str | os.PathLike, rescan_seconds: float = 60):
        """Open every ``*.mmdb`` in ``directory``; re-scan it at most every ``rescan_seconds``."""
        self.directory = os.fspath(directory)
        self.rescan_seconds = rescan_seconds
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._state = _State(signature=None)
        self._cached_lookup: Callable[[str], Mapping[str, Any]] = self._make_cache(self._state)
        self._next_scan = 0.0
        self._rescan()

    # -- public API ---------------------------------------------------------

    def lookup(self, ip: str) -> dict:
        """Return the geo/network fields for ``ip``; empty values when unknown, never raises."""
        self._maybe_rescan()
        if not isinstance(ip, str):
            ip = "" if ip is None else str(ip)
        try:
            return dict(self._cached_lookup(ip.strip()))
        except Exception:  # belt and braces: the click path must never fail here
            self._warn_once("lookup", "GeoIP lookup failed", exc_info=True)
            return dict(EMPTY_RESULT)

    def missing(self) -> list[str]:
        """Names of the database kinds ("City", "ASN", "ISP", "Connection-Type") not available."""
        self._maybe_rescan()
        return _missing(self._state.roles)

    def source(self) -> str:
        """Where ``country`` comes from: the MaxMind database's type, or iptocc."""
        self._maybe_rescan()
        geo = self._state.roles.get("geo")
        return "MaxMind %s (%s)" % (geo.database_type, os.path.basename(geo.path)) if geo else "iptocc"

    def notice(self) -> str | None:
        """One line for whoever runs the tracker: the geo source and what each missing database
        would add; None when every kind is there."""
        missing = self.missing()
        if not missing:
            return None
        if self._state.roles.get("geo") is None:
            source = "built-in iptocc data (the country each address is registered in)"
        else:
            source = self.source()
        return "GeoIP: country from %s; not in %s: %s. Free ones: tracker geoip update" % (
            source,
            self.directory,
            "; ".join("%s adds %s" % (kind, ADDS[kind]) for kind in missing),
        )

    def databases(self) -> dict[str, str]:
        """Map of role (geo, asn, isp, connection_type) to the file path serving it."""
        self._maybe_rescan()
        return {role: db.path for role, db in self._state.roles.items()}

    # -- scanning -----------------------------------------------------------

    def _maybe_rescan(self) -> None:
        if time.monotonic() < self._next_scan:
            return
        # Another thread already scanning: keep serving from the current state.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._rescan_locked()
        finally:
            self._lock.release()

    def _rescan(self) -> None:
        with self._lock:
            self._rescan_locked()

    def _rescan_locked(self) -> None:
        self._next_scan = time.monotonic() + self.rescan_seconds
        signature = tuple(sorted(self._list_files()))
        if signature == self._state.signature:
            return
        first = self._state.signature is None
        state = _State(signature=signature, roles=self._open_roles(p for p, _, _ in signature))
        # Old readers are not closed: other threads may still be using them;
        # they are closed when garbage-collected.
        self._cached_lookup = self._make_cache(state)
        self._state = state
        # Every process scans at start; what is missing is said once, by the process that
        # serves (see announce_geoip). A change while running is worth a line in each.
        logger.log(
            logging.DEBUG if first else logging.INFO,
            "GeoIP databases in %s: %s",
            self.directory,
            {role: os.path.basename(db.path) for role, db in state.roles.items()} or "none",
        )

    def _list_files(self) -> list[tuple[str, int, int]]:
        try:
            with os.scandir(self.directory) as it:
                found = []
                for entry in it:
                    if entry.name.lower().endswith(".mmdb") and entry.is_file():
                        st = entry.stat()
                        found.append((entry.path, st.st_mtime_ns, st.st_size))
                return found
        except OSError:
            return []

    def _open_roles(self, paths: Iterable[str]) -> dict[str, _Database]:
        roles: dict[str, _Database] = {}
        for path in paths:
            db = self._open(path)
            if db is None:
                continue
            role = db.role
            if role is None:
                self._warn_once(
                    "type:" + path, "Ignoring %s: unsupported database type %r", path, db.database_type
                )
                continue
            current = roles.get(role)
            if current is None or _preference(db) > _preference(current):
                roles[role] = db
        return roles

    def _open(self, path: str) -> _Database | None:
        try:
            reader = maxminddb.open_database(path)
            meta = reader.metadata()
            return _Database(
                reader,
                meta.database_type,
                path,
                os.path.getmtime(path),
                meta.ip_version,
                _role_for(meta.database_type),
            )
        except Exception as exc:  # corrupt or half-copied file
            self._warn_once("open:" + path, "Cannot open GeoIP database %s: %s", path, exc)
            return None

    # -- lookups ------------------------------------------------------------

    def _make_cache(self, state: _State) -> Callable[[str], Mapping[str, Any]]:
        @functools.lru_cache(maxsize=CACHE_SIZE)
        def cached(ip: str) -> Mapping[str, Any]:
            return self._lookup_uncached(state, ip)

        return cached

    def _lookup_uncached(self, state: _State, ip: str) -> Mapping[str, Any]:
        if not state.roles:
            country = offline_country(ip)
            return MappingProxyType({**EMPTY_RESULT, "country": country}) if country else EMPTY_RESULT
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            self._warn_once("invalid-ip", "Not an IP address: %r (GeoIP fields left empty)", ip[:100])
            return EMPTY_RESULT
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if not_public(addr):
            return EMPTY_RESULT

        result = dict(EMPTY_RESULT)
        roles = state.roles
        if "geo" not in roles:
            result["country"] = offline_country(str(addr))
        elif geo := self._record(roles.get("geo"), addr):
            self._fill_geo(result, geo)
        if isp := self._record(roles.get("isp"), addr):
            result["isp"] = isp.get("isp") or isp.get("organization") or ""
            result["asn"] = isp.get("autonomous_system_number")
            if isp.get("mobile_country_code") or isp.get("mobile_network_code"):
                result["carrier"] = isp.get("isp") or ""
        if not result["isp"] or result["asn"] is None:
            if asn := self._record(roles.get("asn"), addr):
                result["isp"] = result["isp"] or asn.get("autonomous_system_organization") or ""
                if result["asn"] is None:
                    result["asn"] = asn.get("autonomous_system_number")
        if conn := self._record(roles.get("connection_type"), addr):
            result["connection_type"] = conn.get("connection_type") or ""
        return MappingProxyType(result)

    @staticmethod
    def _fill_geo(result: dict, geo: Mapping[str, Any]) -> None:
        result["country"] = geo.get("country", {}).get("iso_code") or ""
        result["country_name"] = _name(geo.get("country"))
        # Country databases have no city/subdivisions/postal: those stay empty.
        subdivisions = geo.get("subdivisions")
        result["region"] = _name(subdivisions[0]) if subdivisions else ""
        result["city"] = _name(geo.get("city"))
        result["zip"] = geo.get("postal", {}).get("code") or ""

    def _record(self, db: _Database | None, addr: ipaddress.IPv4Address | ipaddress.IPv6Address):
        """The raw record of ``addr`` in ``db`` (a dict), or None."""
        if db is None or (addr.version == 6 and db.ip_version == 4):
            return None
        try:
            return db.reader.get(addr)
        except Exception as exc:
            self._warn_once("reader:" + db.path, "GeoIP lookup in %s failed: %s", db.path, exc)
            return None

    def _warn_once(self, kind: str, msg: str, *args: Any, **kwargs: Any) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(msg, *args, **kwargs)


def announce_geoip(app) -> None:
    """The ``tracker.on_serve`` hook: say once, in the process that serves pages, where geo
    comes from and what is missing (gunicorn's workers and the delivery worker stay quiet)."""
    if not app.config.get("TRACKER_SERVE_URL"):
        return
    if notice := app.extensions["tracker.geoip"].notice():
        logger.info("%s", notice)
