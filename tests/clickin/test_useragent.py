"""User-agent parsing: exact fields for real UAs, and agreement with user_agents."""

import pytest
import user_agents

from tracker.enrichment.useragent import FastUserAgent, parse_user_agent

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

EMPTY = {
    "device_type": "other",
    "brand": "",
    "model": "",
    "os": "",
    "os_version": "",
    "browser": "",
    "browser_version": "",
    "is_bot": False,
}

EXPECTED = {
    IPHONE: {
        "device_type": "mobile",
        "brand": "Apple",
        "model": "iPhone",
        "os": "iOS",
        "os_version": "17.5",
        "browser": "Mobile Safari",
        "browser_version": "17.5",
        "is_bot": False,
    },
    SAMSUNG: {
        "device_type": "mobile",
        "brand": "Samsung",
        "model": "SM-S918B",
        "os": "Android",
        "os_version": "14",
        "browser": "Chrome Mobile",
        "browser_version": "126.0.6478",
        "is_bot": False,
    },
    WINDOWS_CHROME: {
        "device_type": "desktop",
        "brand": "",
        "model": "",
        "os": "Windows",
        "os_version": "10",
        "browser": "Chrome",
        "browser_version": "126.0.0",
        "is_bot": False,
    },
    IPAD: {
        "device_type": "tablet",
        "brand": "Apple",
        "model": "iPad",
        "os": "iOS",
        "os_version": "17.5",
        "browser": "Mobile Safari",
        "browser_version": "17.5",
        "is_bot": False,
    },
    GOOGLEBOT: {
        "device_type": "bot",
        "brand": "Spider",
        "model": "Desktop",
        "os": "",
        "os_version": "",
        "browser": "Googlebot",
        "browser_version": "2.1",
        "is_bot": True,
    },
}


@pytest.mark.parametrize("ua", list(EXPECTED), ids=["iphone", "samsung", "windows", "ipad", "bot"])
def test_known_user_agents(ua):
    assert parse_user_agent(ua) == EXPECTED[ua]


@pytest.mark.parametrize("ua", list(EXPECTED), ids=["iphone", "samsung", "windows", "ipad", "bot"])
def test_adapter_agrees_with_user_agents(ua):
    ours, legacy = FastUserAgent(ua), user_agents.parse(ua)
    assert (ours.os, ours.browser, ours.device) == (legacy.os, legacy.browser, legacy.device)
    flags = ("is_mobile", "is_tablet", "is_pc", "is_bot", "is_touch_capable")
    assert [getattr(ours, f) for f in flags] == [getattr(legacy, f) for f in flags]
    assert str(ours) == str(legacy)


@pytest.mark.parametrize(
    "ua",
    [
        "",
        "   ",
        None,
        "".join(chr(c) for c in range(32)) * 20 + "\x7f\x85\u2028",
        "\ud800 broken surrogate",
        "Mozilla/5.0 " + "x" * 200_000,
        "(" * 200_000,
    ],
    ids=["empty", "blank", "none", "control-chars", "surrogate", "200kb", "200kb-parens"],
)
def test_never_raises(ua):
    result = parse_user_agent(ua)
    assert set(result) == set(EMPTY)
    assert result["device_type"] in {"desktop", "mobile", "tablet", "bot", "other"}


def test_empty_is_other_with_empty_fields():
    assert parse_user_agent("") == EMPTY


def test_long_input_is_truncated_before_parsing():
    # Chrome's version sits past the 1000-char cut, so it must not be seen.
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) " + " " * 2000 + "Chrome/126.0.0.0"
    result = parse_user_agent(ua)
    assert result["os"] == "Windows"
    assert result["browser"] != "Chrome"


def test_cached_result_cannot_be_corrupted():
    parse_user_agent(IPHONE)["device_type"] = "tampered"
    assert parse_user_agent(IPHONE)["device_type"] == "mobile"
