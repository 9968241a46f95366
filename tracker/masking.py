"""Secrets in URLs and bodies (access tokens, keys) masked for screens and logs."""

import re

MASK = "***"
SECRET_NAMES = {
    "access_token",
    "token",
    "key",
    "api_key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "pwd",
    "client_secret",
    "auth",
    "authorization",
    "signature",
    "sig",
    "private_key",
    "x-api-key",
    "cookie",
    "pass",
    "license_key",
}
SECRET_SUFFIXES = ("_token", "-token", "_key", "-key", "_secret", "-secret", "_password", "apikey")
# A header is secret when its name holds one of these (Access-Token, X-Api-Key, Authorization…).
SECRET_HEADER_WORDS = ("token", "key", "secret", "authorization", "password", "cookie", "signature")

# name=value in a query string or form body (the value runs to the next & or #, or to the
# |POST| or |JSON| that starts a template's body)
PAIR_RE = re.compile(
    r"(?P<head>(?:^|[?&;]|\|(?:POST|JSON)\|)(?P<name>[^=&?#;\s|]+)=)(?P<value>(?:(?!\|(?:POST|JSON)\|)[^&#;\s])*)"
)
# "name": "value" in a JSON body
JSON_PAIR_RE = re.compile(r'(?P<head>"(?P<name>[^"\\]{1,100})"\s*:\s*")(?P<value>(?:[^"\\]|\\.)*)"')


def is_secret(name):
    """True for parameter or header names that carry credentials (access_token, api_key…)."""
    lowered = str(name).strip().lower()
    return lowered in SECRET_NAMES or lowered.endswith(SECRET_SUFFIXES)


def _mask_match(match):
    if not is_secret(match.group("name")) or not match.group("value"):
        return match.group(0)
    return match.group("head") + MASK + ('"' if match.re is JSON_PAIR_RE else "")


def mask_secrets(text):
    """A URL, form body or JSON body with the values of secret-named parameters masked."""
    if not text:
        return text
    return JSON_PAIR_RE.sub(_mask_match, PAIR_RE.sub(_mask_match, str(text)))


def mask_mapping(mapping):
    """A dict (query parameters, lead data) with the values of secret-named keys masked."""
    return {name: (MASK if is_secret(name) and value else value) for name, value in (mapping or {}).items()}


def is_secret_header(name):
    """True for header names that look secret: ``*token*``, ``*key*``, ``*secret*``,
    ``authorization`` and the like (DESIGN §4.4)."""
    lowered = str(name).lower()
    return is_secret(name) or any(word in lowered for word in SECRET_HEADER_WORDS)


def mask_headers(headers):
    """Request headers with the values of secret-looking names masked."""
    return {
        name: (MASK if is_secret_header(name) and value else value) for name, value in (headers or {}).items()
    }


def keep_masked(text, stored_texts):
    """``text`` (a URL or body template) with each secret value the API showed masked (``***``)
    replaced by the value of the same name in ``stored_texts`` (what the row held), so an object
    read from the API and sent back keeps its secrets. Raises ValueError naming a masked value
    nothing stored matches (saving it would replace the secret with ``***``)."""
    if not text or MASK not in text:
        return text
    stored = {}
    for old in stored_texts:
        for regex in (PAIR_RE, JSON_PAIR_RE):
            for match in regex.finditer(old or ""):
                if is_secret(match.group("name")) and match.group("value") not in ("", MASK):
                    stored.setdefault(match.group("name").lower(), match.group("value"))

    def restore(match):
        if not is_secret(match.group("name")) or match.group("value") != MASK:
            return match.group(0)
        value = stored.get(match.group("name").lower())
        if value is None:
            raise ValueError("%s is %s (masked): send its real value" % (match.group("name"), MASK))
        return match.group("head") + value + ('"' if match.re is JSON_PAIR_RE else "")

    return JSON_PAIR_RE.sub(restore, PAIR_RE.sub(restore, text))
