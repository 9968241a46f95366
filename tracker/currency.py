"""Currencies: ISO 4217 codes, the stored rates into TRACKER_CURRENCY, the ECB's daily rates.

Codes are checked against pycountry's ISO 4217 table (the Debian iso-codes data, kept in step
with the ISO maintenance agency's lists), so ``XYZ`` is refused wherever a currency comes in:
``/postback``, the event API, flows and offers. A rate is the value of one unit of a currency
in TRACKER_CURRENCY (``"EUR": "1.08"`` with USD reports), stored as exact decimal text.
"""

import datetime
import xml.etree.ElementTree as ElementTree
from decimal import Decimal, InvalidOperation

import pycountry

from .db import db
from .errors import ValidationError
from .models import CurrencyRate, utcnow
from .money import to_money

ECB_DAILY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
MAX_RATE = Decimal(10) ** 12
_CODES = None


def iso_codes():
    """Every ISO 4217 alphabetic code, upper case."""
    global _CODES
    if _CODES is None:
        _CODES = frozenset(currency.alpha_3.upper() for currency in pycountry.currencies)
    return _CODES


def is_iso4217(code):
    return isinstance(code, str) and code.upper() in iso_codes()


def parse_rates(data, base):
    """``{"EUR": "1.08", …}`` checked: ISO codes, positive finite decimals; the base
    currency itself is not a rate. A 400 ValidationError names the first wrong entry."""
    if not isinstance(data, dict):
        raise ValidationError('the body must be an object like {"EUR": "1.08"}', 400)
    rates = {}
    for code, value in data.items():
        name = str(code).strip().upper()
        if not is_iso4217(name):
            raise ValidationError("%r is not an ISO 4217 currency code such as EUR" % str(code)[:20], 400)
        if name == base:
            raise ValidationError("%s is the report currency (TRACKER_CURRENCY): its rate is 1" % name, 400)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("the rate of %s must be a decimal number" % name, 400)
        try:
            rate = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("the rate of %s must be a decimal number" % name, 400) from None
        if not rate.is_finite() or rate <= 0 or rate >= MAX_RATE:
            raise ValidationError("the rate of %s must be a positive number below 10^12" % name, 400)
        rates[name] = rate
    return rates


def stored_rates():
    """``{code: Decimal}`` of every stored rate."""
    return {
        code: Decimal(rate)
        for code, rate in CurrencyRate.select(CurrencyRate.code, CurrencyRate.rate).tuples()
    }


def replace_rates(rates, now=None):
    """Store exactly ``rates`` (``PUT /api/v1/currency-rates``)."""
    now = now or utcnow()
    with db.atomic():
        CurrencyRate.delete().execute()
        for code, rate in sorted(rates.items()):
            CurrencyRate.create(code=code, rate=format(rate, "f"), updated_at=now)


def merge_rates(rates, now=None):
    """Store ``rates``, keeping the other codes' rates (``tracker rates update``)."""
    now = now or utcnow()
    with db.atomic():
        for code, rate in sorted(rates.items()):
            value = format(rate, "f")
            CurrencyRate.insert(code=code, rate=value, updated_at=now).on_conflict(
                conflict_target=[CurrencyRate.code],
                update={CurrencyRate.rate: value, CurrencyRate.updated_at: now},
            ).execute()


def rate_of(currency, base):
    """The stored rate of ``currency`` in ``base`` (1 for the base itself), or None."""
    if currency == base:
        return Decimal(1)
    row = CurrencyRate.get_or_none(CurrencyRate.code == currency)
    return Decimal(row.rate) if row else None


def convert(amount, rate):
    """``amount`` at ``rate``, rounded to the stored money precision."""
    return to_money(Decimal(amount) * rate)


def ecb_rates(xml_text, base):
    """The ECB daily reference rates (euro foreign exchange reference rates, in units of a
    currency per euro) as values of one unit in ``base``: ``(date, {code: Decimal})``.
    ValueError when the document holds no rates or not the base currency."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise ValueError("the ECB answer is not XML: %s" % exc) from None
    per_euro, day = {"EUR": Decimal(1)}, None
    for element in root.iter():
        if not element.tag.endswith("Cube"):
            continue
        if element.get("time"):
            day = datetime.date.fromisoformat(element.get("time"))
        code, rate = element.get("currency"), element.get("rate")
        if code and rate:
            try:
                value = Decimal(rate)
            except InvalidOperation:
                continue
            if value.is_finite() and value > 0 and is_iso4217(code):
                per_euro[code.upper()] = value
    if len(per_euro) == 1:
        raise ValueError("the ECB answer holds no rates")
    if base not in per_euro:
        raise ValueError("the ECB publishes no rate for %s" % base)
    base_per_euro = per_euro[base]
    rates = {
        code: (base_per_euro / value).quantize(Decimal("0.0000000001")).normalize()
        for code, value in per_euro.items()
        if code != base
    }
    return day, rates


def fetch_ecb_rates(base, url=ECB_DAILY_URL, timeout=10):
    """Download and read the ECB's daily rates (the CLI's ``tracker rates update``; the web
    process never sends outgoing HTTP)."""
    import requests

    response = requests.get(url, timeout=timeout, allow_redirects=False)
    response.raise_for_status()
    return ecb_rates(response.content, base)
