"""User-agent parsing for clicks.

Keeps the device classification of the ``user_agents`` package
(is_mobile, is_tablet, is_pc, is_bot) but feeds it results from the new
``ua_parser`` API, which uses the fast ua-parser-rs backend when installed,
instead of ``user_agents``' slow legacy pure-Python parser.
"""

from __future__ import annotations

import functools
import logging
from types import MappingProxyType
from typing import Mapping

import ua_parser
from user_agents import parsers as ua_parsers

logger = logging.getLogger(__name__)

MAX_UA_LENGTH = 1000

_EMPTY = MappingProxyType(
    {
        "device_type": "other",
        "brand": "",
        "model": "",
        "os": "",
        "os_version": "",
        "browser": "",
        "browser_version": "",
        "is_bot": False,
    }
)


@functools.cache
def _get_parser() -> ua_parser.Parser:
    """Return a parser that uses the regex (ua-parser-rs) resolver if available.

    Built on first use: compiling the regexes takes a few hundred ms.
    """
    try:
        from ua_parser.regex import Resolver as RegexResolver

        # No ua_parser-level cache: parse_user_agent has its own lru_cache.
        return ua_parser.Parser(RegexResolver(ua_parser.load_lazy_builtins()))
    except Exception:  # ua-parser-rs missing or broken
        logger.info("ua-parser-rs not available, using ua_parser's default parser")
        return ua_parser.parser


class FastUserAgent(ua_parsers.UserAgent):
    """``user_agents.UserAgent`` whose parsing is done by the new ``ua_parser`` API."""

    def __init__(self, user_agent_string: str):
        # The rs backend rejects lone surrogates, which can come from bad headers.
        safe = user_agent_string.encode("utf-8", "replace").decode("utf-8")
        result = _get_parser().parse(safe).with_defaults()
        ua, os_, device = result.user_agent, result.os, result.device
        ua_dict = {
            "user_agent": {
                "family": ua.family,
                "major": ua.major,
                "minor": ua.minor,
                "patch": ua.patch,
                "patch_minor": ua.patch_minor,
            },
            "os": {
                "family": os_.family,
                "major": os_.major,
                "minor": os_.minor,
                "patch": os_.patch,
                "patch_minor": os_.patch_minor,
            },
            "device": {"family": device.family, "brand": device.brand, "model": device.model},
        }
        self.ua_string = user_agent_string
        self.os = ua_parsers.parse_operating_system(**ua_dict["os"])
        self.browser = ua_parsers.parse_browser(**ua_dict["user_agent"])
        self.device = ua_parsers.parse_device(**ua_dict["device"])


def _device_type(agent: FastUserAgent) -> str:
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


def _family(value: str | None) -> str:
    """ua-parser reports unknown families as "Other"; we store those as ''."""
    return "" if not value or value == "Other" else value


@functools.lru_cache(maxsize=10000)
def _parse(ua: str) -> Mapping[str, object]:
    if not ua.strip():
        return _EMPTY
    agent = FastUserAgent(ua)
    return MappingProxyType(
        {
            "device_type": _device_type(agent),
            "brand": agent.device.brand or "",
            "model": agent.device.model or "",
            "os": _family(agent.os.family),
            "os_version": agent.os.version_string,
            "browser": _family(agent.browser.family),
            "browser_version": agent.browser.version_string,
            "is_bot": bool(agent.is_bot),
        }
    )


def parse_user_agent(ua: str) -> dict:
    """Parse a User-Agent header into the click's device/OS/browser fields.

    Returns a new dict with keys device_type (desktop|mobile|tablet|bot|other),
    brand, model, os, os_version, browser, browser_version and is_bot.
    Never raises; unparseable input gives device_type 'other' and empty fields.
    """
    if not isinstance(ua, str):
        ua = "" if ua is None else str(ua)
    ua = ua[:MAX_UA_LENGTH]
    try:
        return dict(_parse(ua))
    except Exception:
        global _warned
        if not _warned:  # once per process: this runs on every click
            _warned = True
            logger.warning("user-agent parsing failed for %r", ua[:200], exc_info=True)
        return dict(_EMPTY)


_warned = False
parse_user_agent.cache_info = _parse.cache_info  # type: ignore[attr-defined]
parse_user_agent.cache_clear = _parse.cache_clear  # type: ignore[attr-defined]
