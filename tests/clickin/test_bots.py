"""Bot detection (DESIGN §4.7): user-agents' verdict, an empty user agent, the user's lists of
addresses and user-agent substrings; checked as plain functions."""

import ipaddress
import random

import pytest

from tracker.enrichment.bots import NetworkSet, compile_bot_rules, ip_number
from tracker.errors import ValidationError
from tracker.flows import clean_bot_rules

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
LISTS = compile_bot_rules(
    {"ips": ["66.249.64.0/19", "203.0.113.7", "2001:db8::/32"], "user_agents": ["HeadlessChrome"]}
)


@pytest.mark.parametrize(
    "ip, user_agent, detected, expected",
    [
        ("198.51.100.1", CHROME, False, False),
        ("198.51.100.1", CHROME, True, True),  # user-agents said so
        ("198.51.100.1", "", False, True),  # no user agent at all
        ("198.51.100.1", "   ", False, True),
        ("66.249.70.1", CHROME, False, True),  # in a listed block
        ("66.249.96.1", CHROME, False, False),  # just past it
        ("203.0.113.7", CHROME, False, True),
        ("203.0.113.8", CHROME, False, False),
        ("::ffff:203.0.113.7", CHROME, False, True),  # IPv4-mapped IPv6 is the IPv4 address
        ("2001:db8:1::5", CHROME, False, True),
        ("198.51.100.1", CHROME.replace("Chrome/", "headlesschrome/"), False, True),  # ignoring case
        ("not an address", CHROME, False, False),
    ],
)
def test_is_bot(ip, user_agent, detected, expected):
    assert LISTS.is_bot(ip, user_agent, detected) is expected


def test_network_set_agrees_with_ipaddress():
    blocks = ["10.0.0.0/8", "172.16.0.0/12", "192.0.2.0/24", "198.51.100.7", "2001:db8::/48", "::1"]
    networks = NetworkSet(blocks)
    parsed = [ipaddress.ip_network(b) for b in blocks]
    rng = random.Random(7)
    samples = [
        "10.1.2.3",
        "172.31.255.255",
        "172.32.0.0",
        "192.0.2.255",
        "198.51.100.7",
        "198.51.100.8",
        "::1",
        "::2",
    ]
    samples += ["%d.%d.%d.%d" % tuple(rng.randrange(256) for _ in range(4)) for _ in range(500)]
    samples += ["2001:db8:0:%x::1" % rng.randrange(4) for _ in range(20)]
    for ip in samples:
        address = ipaddress.ip_address(ip)
        assert (ip in networks) == any(address in net for net in parsed if net.version == address.version), ip


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.2.3.4", (4, 0x01020304)),
        ("::ffff:1.2.3.4", (4, 0x01020304)),
        ("2001:db8::1", (6, 0x20010DB8000000000000000000000001)),
        ("01.2.3.4", (None, None)),
        ("1.2.3", (None, None)),
        ("1.2.3.256", (None, None)),
        ("", (None, None)),
        ("1.2.3.4\x00", (None, None)),
    ],
)
def test_ip_number(text, expected):
    assert ip_number(text) == expected


def test_bot_rules_are_cleaned_and_deduplicated():
    assert clean_bot_rules(
        {"ips": [" 10.0.0.1/8 ", "10.0.0.0/8", "203.0.113.7/32"], "user_agents": ["curl", " curl "]}
    ) == {
        "ips": ["10.0.0.0/8", "203.0.113.7"],
        "user_agents": ["curl"],
    }
    assert clean_bot_rules({}) == {"ips": [], "user_agents": []}


@pytest.mark.parametrize(
    "body, fields",
    [
        (
            {"ips": ["10.0.0.0/8", "nope", "1.2.3.4/40"]},
            {"ips": "ips: 'nope', '1.2.3.4/40' are not IP addresses or CIDR blocks"},
        ),
        ({"ips": "10.0.0.0/8"}, {"ips": "ips must be a list of texts"}),
        (
            {"user_agents": [""]},
            {"user_agents": "user_agents: '' must be a non-empty text of at most 500 characters"},
        ),
        (
            {"ips": [1], "user_agents": [None], "extra": []},
            {
                "extra": "unknown field 'extra' (bot rules have ips and user_agents)",
                "ips": "ips must be a list of texts",
                "user_agents": "user_agents must be a list of texts",
            },
        ),
    ],
)
def test_bad_bot_rules_name_every_field(body, fields):
    with pytest.raises(ValidationError) as refused:
        clean_bot_rules(body)
    assert (refused.value.status, refused.value.fields) == (422, fields)
