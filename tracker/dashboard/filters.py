"""Jinja filters of the dashboard: money, times, ratios, and secrets masked on screen."""

import json

from ..masking import mask_headers, mask_mapping, mask_secrets
from ..money import money_text
from . import bp
from .forms import headers_text

bp.add_app_template_filter(mask_secrets, "mask_secrets")
bp.add_app_template_filter(mask_mapping, "mask_mapping")
bp.add_app_template_filter(mask_headers, "mask_headers")
bp.add_app_template_filter(headers_text, "headers_text")


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


@bp.app_template_filter("fixed")
def fixed(value, places=2):
    """A number with exactly ``places`` decimals (one format per column), '–' for none."""
    if value is None:
        return "–"
    from decimal import ROUND_HALF_EVEN, Decimal

    return format(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")


@bp.app_template_filter("change")
def change(now, before):
    """The change from ``before`` to ``now`` in percent (``+12.5 %``), '' when before is 0."""
    from decimal import Decimal

    if before in (None, 0) or now is None:
        return ""
    percent = (Decimal(now) - Decimal(before)) * 100 / abs(Decimal(before))
    return "%+.1f %%" % percent


FIELD_WORDS = {
    "offer_url": "The offer URL",
    "fallback_url": "The fallback URL",
    "attribution_days": "The attribution window",
    "traffic_source_id": "The traffic source",
    "unique_window_hours": "The unique window",
    "click_id_param": "The click id parameter",
    "postback_url": "The postback URL",
    "timezone": "The time zone",
    "url": "The URL",
    "name": "The name",
    "currency": "The currency",
    "payout": "The payout",
    "flow payout": "The payout",
}


@bp.app_template_filter("in_words")
def in_words(message):
    """A refusal as a person reads it: ``offer_url must be …`` → ``The offer URL must be …``."""
    text = str(message or "")
    for name in sorted(FIELD_WORDS, key=len, reverse=True):
        if text.startswith(name + " "):
            return FIELD_WORDS[name] + text[len(name) :]
    return text
