"""Jinja filters of the dashboard: money, times, ratios, and secrets masked on screen."""
import json
import re

from ..models import money_text
from . import bp

MASK = "*****"
SECRET_NAMES = {"access_token", "token", "key", "api_key", "apikey", "secret", "password", "passwd",
                "pwd", "client_secret", "auth", "authorization", "signature", "sig", "private_key",
                "x-api-key", "cookie", "pass", "license_key"}
SECRET_SUFFIXES = ("_token", "-token", "_key", "-key", "_secret", "-secret", "_password", "apikey")

# name=value in a query string or form body (the value runs to the next & or #)
PAIR_RE = re.compile(r"(?P<head>(?:^|[?&;])(?P<name>[^=&?#;\s]+)=)(?P<value>[^&#;\s]*)")
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


@bp.app_template_filter("mask_secrets")
def mask_secrets(text):
    """A URL, form body or JSON body with the values of secret-named parameters masked."""
    if not text:
        return text
    return JSON_PAIR_RE.sub(_mask_match, PAIR_RE.sub(_mask_match, str(text)))


@bp.app_template_filter("mask_mapping")
def mask_mapping(mapping):
    """A dict (query parameters, headers) with the values of secret-named keys masked."""
    return {name: (MASK if is_secret(name) and value else value) for name, value in (mapping or {}).items()}


@bp.app_template_filter("money")
def money(value):
    return "" if value is None else money_text(value)


@bp.app_template_filter("ratio")
def ratio(value, suffix=""):
    """A CR or ROI (a Decimal, or None where it divides by zero) as text."""
    return "–" if value is None else "%s%s" % (format(value, "f"), suffix)


@bp.app_template_filter("when")
def when(value):
    """A naive UTC datetime as ``2024-05-01 10:15:03``."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


@bp.app_template_filter("pretty_json")
def pretty_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@bp.app_template_filter("indent_json")
def indent_json(text):
    """A JSON body indented for reading, or '' when it is no JSON object or array."""
    if not text or text.lstrip()[:1] not in ("{", "["):
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return ""
