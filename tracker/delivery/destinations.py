"""Where outgoing postbacks may go (DESIGN §4.8): never to a private, loopback, link-local,
multicast, reserved or otherwise non-public address, unless ``TRACKER_DELIVERY_ALLOWED_NETWORKS``
allows it.

The check runs inside the connection: the host name is resolved there, each address is
checked before it is connected to, and the connected socket's peer address is checked again.
So no earlier lookup can be fooled (DNS rebinding: a name that resolves to a public address
when checked and to 127.0.0.1 when connected), and a refused address is never even dialled, so
"send test" cannot tell an open internal port from a closed one. ``guarded_session(policy)``
is a ``requests.Session`` whose every connection goes through that check.
"""

import ipaddress
import socket
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from ..config import parse_networks

SETTING = "TRACKER_DELIVERY_ALLOWED_NETWORKS"


class DestinationRefused(Exception):
    """The postback's address is one outgoing requests may not reach. (Not an ``OSError``, so
    urllib3 does not retry it or bury it in a ``MaxRetryError``: it reaches the sender as is.)"""


def _address(ip):
    address = ipaddress.ip_address(str(ip).split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def special_kind(ip):
    """What makes ``ip`` no public address ("loopback", "private", …), or None for a public one."""
    address = _address(ip)
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return kind
    return None if address.is_global else "reserved"


def host_kind(host):
    """``special_kind`` of a URL's host when it is an address literal or ``localhost``; None
    for other names (they are checked when the worker connects)."""
    host = (host or "").strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        return special_kind(host)
    except ValueError:
        return None


def host_allowed(host, allowed):
    """True when ``host`` (an address literal, or ``localhost``) is in one of ``allowed``."""
    host = (host or "").strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        address = _address(host)
    except ValueError:
        return False
    return any(address in network for network in allowed)


def allowed_networks(config):
    """The parsed ``TRACKER_DELIVERY_ALLOWED_NETWORKS`` of an app's config."""
    return parse_networks(config.get(SETTING), SETTING)


@dataclass(frozen=True)
class Policy:
    """The networks outgoing requests may reach although they are not public."""

    allowed: tuple = ()

    @classmethod
    def from_config(cls, config):
        return cls(parse_networks(config.get(SETTING), SETTING))

    def refusal(self, ip, host=None):
        """Why ``ip`` (which ``host`` resolved to) may not be reached, or None when it may."""
        try:
            address = _address(ip)
            kind = special_kind(ip)
        except ValueError:
            return "%r is no IP address" % ip
        if kind is None or any(address in network for network in self.allowed):
            return None
        named = "%s (%s)" % (host, ip) if host and host != str(ip) else str(ip)
        return "refused: %s is a %s address; postbacks go only to public addresses unless %s allows it" % (
            named,
            kind,
            SETTING,
        )


class _Guard:
    """The connection's ``_new_conn`` with the address check (mixed into urllib3's classes)."""

    policy = Policy()

    def _new_conn(self):
        host = self._dns_host
        try:
            infos = socket.getaddrinfo(host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        allowed = [ip for ip in addresses if self.policy.refusal(ip) is None]
        if not allowed:
            raise DestinationRefused(self.policy.refusal(addresses[0], self.host))
        error = None
        for ip in allowed:
            self._dns_host = ip
            try:
                sock = super()._new_conn()
            except (NewConnectionError, ConnectTimeoutError) as exc:
                error = exc
                continue
            finally:
                self._dns_host = host
            refusal = self.policy.refusal(sock.getpeername()[0], self.host)
            if refusal:  # belt and braces: what the socket is connected to is what counts
                sock.close()
                raise DestinationRefused(refusal)
            return sock
        raise error


class _GuardedAdapter(HTTPAdapter):
    """An adapter whose pools make guarded connections for ``policy``."""

    def __init__(self, policy, **kwargs):
        attrs = {"policy": policy}
        http = type("GuardedHTTPConnection", (_Guard, HTTPConnection), attrs)
        https = type("GuardedHTTPSConnection", (_Guard, HTTPSConnection), attrs)
        self._pools = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy, **kwargs):  # a proxy would connect for us, unchecked
        raise DestinationRefused("refused: outgoing postbacks are never sent through a proxy")


def guarded_session(policy):
    """A ``requests.Session`` that connects only where ``policy`` allows (no proxies either)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
