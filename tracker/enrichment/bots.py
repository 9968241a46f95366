"""Bots (DESIGN §4.7): a click is a bot when user-agents says so, when it sends no user
agent, or when its address or user agent is on the user's bot lists (``PUT /api/v1/bot-rules``
``{ips: [CIDR, …], user_agents: [substring, …]}``).

The lists are kept as one ``setting`` row and compiled into ``BotLists`` (read by the flow
cache every few seconds), so the check on a click is a few set lookups and one regex search.
"""

import ipaddress
import json
import logging
import re
from dataclasses import dataclass

from ..errors import FieldErrors, ValidationError
from ..models import Setting

logger = logging.getLogger(__name__)

SETTING_KEY = "bot_rules"
MAX_ENTRIES = 10000
MAX_AGENT = 500


class NetworkSet:
    """Addresses and CIDR blocks, matched in as many set lookups as there are distinct
    prefix lengths (not one comparison per block): a bot list may hold thousands."""

    def __init__(self, networks=()):
        self._by_version = {4: {}, 6: {}}  # version -> {prefix length: {network as int >> host bits}}
        for network in networks:
            net = ipaddress.ip_network(network, strict=False)
            shift = net.max_prefixlen - net.prefixlen
            self._by_version[net.version].setdefault(shift, set()).add(int(net.network_address) >> shift)
        self._lengths = {version: sorted(blocks.items()) for version, blocks in self._by_version.items()}

    def __bool__(self):
        return any(self._lengths.values())

    def __contains__(self, ip):
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        number = int(address)
        return any(number >> shift in blocks for shift, blocks in self._lengths[address.version])


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
    agents: re.Pattern = None  # any of the substrings, case-insensitive

    def is_bot(self, ip, user_agent, detected=False):
        """True when user-agents ``detected`` a bot, the user agent is empty, or a list holds
        the address or a substring of the user agent."""
        if detected or not user_agent.strip():
            return True
        if self.agents is not None and self.agents.search(user_agent):
            return True
        return bool(self.ips) and ip in self.ips


def compile_bot_rules(rules):
    """``{ips, user_agents}`` (as cleaned) → ``BotLists``."""
    agents = rules.get("user_agents") or []
    pattern = re.compile("|".join(re.escape(a) for a in agents), re.IGNORECASE) if agents else None
    return BotLists(NetworkSet(rules.get("ips") or []), pattern)


NO_LISTS = compile_bot_rules({})


def clean_bot_rules(data):
    """Validate ``{ips: [CIDR, …], user_agents: [substring, …]}``; every mistake is named at
    once (``ValidationError.fields`` by list). Duplicates are dropped, order kept."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", 400)
    errors = FieldErrors()
    unknown = sorted(set(data) - {"ips", "user_agents"})
    if unknown:
        errors.add(unknown[0], "unknown field %r (bot rules have ips and user_agents)" % unknown[0])
    out = {"ips": [], "user_agents": []}
    with errors.field("ips"):
        out["ips"] = clean_networks(_entries(data, "ips"), "ips")
    with errors.field("user_agents"):
        agents = [agent.strip() for agent in _entries(data, "user_agents")]
        for agent in agents:
            if not agent or len(agent) > MAX_AGENT or "\x00" in agent:
                raise ValidationError(
                    "user_agents: %r must be a non-empty text of at most %d characters"
                    % (agent[:60], MAX_AGENT)
                )
        out["user_agents"] = list(dict.fromkeys(agents))
    errors.raise_any()
    return out


def _entries(data, name):
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("%s must be a list of texts" % name)
    if len(value) > MAX_ENTRIES:
        raise ValidationError("%s holds more than %d entries" % (name, MAX_ENTRIES))
    return value


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
        raise ValidationError(
            "%s: %s %s not an IP address or CIDR block"
            % (name, ", ".join(repr(b.strip()[:60]) for b in bad[:5]), "is" if len(bad) == 1 else "are")
        )
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
    """The stored lists, compiled; a broken list never stops clicks (it is logged)."""
    try:
        return compile_bot_rules(load_bot_rules())
    except Exception:
        logger.exception("could not compile the bot rules; using none")
        return NO_LISTS
