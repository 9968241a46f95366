"""The click as the request gave it, free of any HTTP framework: a ``Visitor`` with every
value cleaned (no NUL, no lone surrogate) and cut to fit, each cut noted. The conversion
side cleans its parameters with the same rules."""

import hashlib
from dataclasses import dataclass, field

MAX_PARAMS = 200
MAX_KEY = 100
MAX_VALUE = 2000
MAX_HEADER = 2000
AD_COOKIES = ("_fbc", "_fbp", "ttclid", "_ttp", "_scid")


@dataclass(frozen=True)
class Visitor:
    """What we know of a click before enrichment, free of any HTTP framework."""

    ip: str = ""
    user_agent: str = ""
    referrer: str = ""
    accept_language: str = ""
    params: dict = field(default_factory=dict)
    cookies: dict = field(default_factory=dict)
    cut: tuple = ()


def clean_text(value, limit):
    """Make ``value`` storable anywhere (no NUL, no lone surrogates) and at most ``limit`` chars.

    Returns ``(text, was_cut)``.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit and text.isascii() and "\x00" not in text:
        return text, False  # the common case, and ASCII holds no lone surrogate
    cleaned = text.replace("\x00", "")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    cut = cleaned != text
    if len(cleaned) > limit:
        cleaned, cut = cleaned[:limit], True
    return cleaned, cut


def is_text(value):
    """True unless ``value`` holds a lone surrogate (valid in JSON, storable nowhere)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_params(params):
    """Keep at most ``MAX_PARAMS`` names of ``(name, value)`` pairs, each cleaned and cut to fit.

    The first value of a name wins. Returns ``(params, cut)``, ``cut`` naming what was cut.
    """
    cut = []
    kept = {}
    for name, value in params:
        if name in kept:
            continue
        if len(kept) >= MAX_PARAMS:
            cut.append("params")
            break
        key, key_cut = clean_text(name, MAX_KEY)
        text, value_cut = clean_text(value, MAX_VALUE)
        if key_cut or value_cut:
            cut.append("params." + key)
        kept.setdefault(key, text)
    return kept, cut


def make_visitor(ip, user_agent, referrer, accept_language, params, cookies):
    """Build a ``Visitor`` from raw request parts, cutting what is too long and noting it.

    ``params`` is an iterable of ``(name, value)`` pairs; the first value of a name wins.
    """
    kept, cut = clean_params(params)
    headers = {}
    for name, value, limit in (
        ("ip", ip, 45),
        ("user_agent", user_agent, MAX_HEADER),
        ("referrer", referrer, MAX_HEADER),
        ("accept_language", accept_language, 200),
    ):
        headers[name], was_cut = clean_text(value or "", limit)
        if was_cut:
            cut.append(name)
    ad_cookies = {}
    for name in AD_COOKIES:
        if cookies.get(name):
            ad_cookies[name], was_cut = clean_text(cookies[name], 500)
            if was_cut:
                cut.append("cookies." + name)
    return Visitor(params=kept, cookies=ad_cookies, cut=tuple(cut), **headers)


def first_language(accept_language):
    """The first tag of an Accept-Language header: ``"en-US,en;q=0.9"`` → ``"en-US"``."""
    tag = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    return tag[:35]


def visitor_hash(ip, user_agent):
    """A short, stable hash of IP + user agent, for the is_unique check."""
    return hashlib.blake2b((ip + "\n" + user_agent).encode("utf-8"), digest_size=8).hexdigest()
