"""Bots (DESIGN §4.7): a click is a bot when user-agents says so, when it sends no user
agent, or when its address or user agent is on the user's bot lists (``PUT /api/v1/bot-rules``
``{ips: [CIDR, …], user_agents: [substring, …]}``).

The lists are kept as one ``setting`` row (``flows.clean_bot_rules`` validates them) and
compiled into ``BotLists``, read by the flow cache every few seconds, so the check on a click
is a few set lookups and substring searches.
"""

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass

from ..errors import ValidationError
from ..models import Setting

logger = logging.getLogger(__name__)

SETTING_KEY = "bot_rules"


class NetworkSet:
    """Addresses and CIDR blocks, matched in as many set lookups as there are distinct
    prefix lengths (not one comparison per block): a bot list may hold thousands. The last
    answer is kept: the routes of a flow often check one click's address against one list."""

    def __init__(self, networks=()):
        self._by_version = {4: {}, 6: {}}  # version -> {prefix length: {network as int >> host bits}}
        for network in networks:
            net = ipaddress.ip_network(network, strict=False)
            shift = net.max_prefixlen - net.prefixlen
            self._by_version[net.version].setdefault(shift, set()).add(int(net.network_address) >> shift)
        self._lengths = {version: sorted(blocks.items()) for version, blocks in self._by_version.items()}
        self._any = any(self._lengths.values())
        self._last = ("", False)

    def __bool__(self):
        return self._any

    def __contains__(self, ip):
        last, hit = self._last
        if ip == last:
            return hit
        version, number = ip_number(ip)
        hit = version is not None and any(
            number >> shift in blocks for shift, blocks in self._lengths[version]
        )
        self._last = (ip, hit)  # one assignment: a thread reading it sees an address with its own answer
        return hit


_last_ip = ("", (None, None))  # a click's address is checked by several rules and lists
IPV4_MAPPED = bytes(10) + b"\xff\xff"


def ip_number(ip):
    """``(version, address as int)`` of an IP address text (an IPv4-mapped IPv6 address as
    IPv4), ``(None, None)`` when it is none. ``inet_pton`` is strict and 10x faster than
    ``ipaddress``; the last answer is kept, as several rules check one click's address."""
    global _last_ip
    last, parsed = _last_ip
    if ip == last:
        return parsed
    try:
        parsed = (4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big"))
    except (OSError, ValueError, TypeError):
        try:
            packed = socket.inet_pton(socket.AF_INET6, ip)
        except (OSError, ValueError, TypeError):
            parsed = (None, None)
        else:
            if packed[:12] == IPV4_MAPPED:
                parsed = (4, int.from_bytes(packed[12:], "big"))
            else:
                parsed = (6, int.from_bytes(packed, "big"))
    _last_ip = (ip, parsed)
    return parsed


def parse_network(text):
    """An address or CIDR block as its normalized text (``10.0.0.0/8``); ValueError otherwise."""
    if not isinstance(text, str) or "\x00" in text:
        raise ValueError("not an IP address or CIDR block")
    network = ipaddress.ip_network(text.strip(), strict=False)
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


@dataclass(frozen=True)
class BotLists:
    """The user's bot lists, compiled."""

    ips: NetworkSet
    agents: tuple = ()  # lowercased substrings (str's own search beats a regex alternation)

    def is_bot(self, ip, user_agent, detected=False):
        """True when user-agents ``detected`` a bot, the user agent is empty, or a list holds
        the address or a substring of the user agent."""
        if detected or not user_agent.strip():
            return True
        if self.agents:
            lowered = user_agent.lower()
            for agent in self.agents:
                if agent in lowered:
                    return True
        return bool(self.ips) and ip in self.ips


def compile_bot_rules(rules):
    """``{ips, user_agents}`` (as cleaned) → ``BotLists``."""
    agents = tuple(dict.fromkeys(agent.lower() for agent in rules.get("user_agents") or []))
    return BotLists(NetworkSet(rules.get("ips") or []), agents)


NO_LISTS = compile_bot_rules({})


def clean_networks(values, name):
    """Addresses and CIDR blocks, normalized and without duplicates; a ValidationError names
    every one that is neither."""
    networks, bad = [], []
    for value in values:
        try:
            networks.append(parse_network(value))
        except ValueError:
            bad.append(value)
    if bad:
        listed = ", ".join(repr(b.strip()[:60]) for b in bad[:5])
        what = (
            "is not an IP address or CIDR block" if len(bad) == 1 else "are not IP addresses or CIDR blocks"
        )
        raise ValidationError("%s: %s %s" % (name, listed, what))
    return list(dict.fromkeys(networks))


def load_bot_rules():
    """The stored lists, ``{ips, user_agents}`` (empty lists when none were saved)."""
    row = Setting.get_or_none(Setting.key == SETTING_KEY)
    if row is None:
        return {"ips": [], "user_agents": []}
    try:
        rules = json.loads(row.value)
        return {"ips": list(rules.get("ips") or []), "user_agents": list(rules.get("user_agents") or [])}
    except (ValueError, AttributeError):
        logger.error("the stored bot rules are not valid JSON; using none")
        return {"ips": [], "user_agents": []}


def store_bot_rules(rules):
    """Replace the stored lists with cleaned ``rules``."""
    value = json.dumps(rules, ensure_ascii=False)
    if Setting.update(value=value).where(Setting.key == SETTING_KEY).execute() == 0:
        Setting.insert(key=SETTING_KEY, value=value).on_conflict(
            conflict_target=[Setting.key], update={Setting.value: value}
        ).execute()


def load_bot_lists():
    """The stored lists, compiled; a broken list never stops clicks (it is logged). A database
    that can't be read raises: the flow cache then keeps the lists it has."""
    rules = load_bot_rules()
    try:
        return compile_bot_rules(rules)
    except Exception:
        logger.exception("could not compile the bot rules; using none")
        return NO_LISTS
