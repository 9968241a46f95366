"""``POST /api/v1/costs`` (spend spread over a period's clicks) and ``/api/v1/currency-rates``
(DESIGN §4.5)."""

from flask import current_app, jsonify

from ..currency import parse_rates, replace_rates, stored_rates
from ..money import money_text
from ..reports.costs import clean_cost, spread_cost
from ..web import json_body
from . import bp


def _base():
    return current_app.config.get("TRACKER_CURRENCY") or "USD"


@bp.post("/costs")
def post_costs():
    """Spread ``amount`` over the matching clicks of ``flow_id`` in ``from``…``to``."""
    cleaned = clean_cost(json_body(), _base(), current_app.config.get("TRACKER_TIMEZONE") or "UTC")
    clicks, amount = spread_cost(cleaned, _base())
    return jsonify(clicks=clicks, amount=money_text(amount), currency=_base())


def rates_json():
    """The stored rates in the shape PUT takes: ``{"EUR": "1.08", …}``."""
    return {code: format(rate, "f") for code, rate in sorted(stored_rates().items())}


@bp.get("/currency-rates")
def get_currency_rates():
    """The stored rates: the value of one unit of each currency in TRACKER_CURRENCY."""
    return jsonify(rates_json())


@bp.put("/currency-rates")
def put_currency_rates():
    """Replace the whole set of rates: ``{"EUR": "1.08", …}``; answers the set stored."""
    replace_rates(parse_rates(json_body(), _base()))
    return jsonify(rates_json())
