"""Money as decimals, never floats: parsed, rounded to six places, stored as integer
millionths (exact on every engine, and exact when summed in SQL), shown as text."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from peewee import BigIntegerField

from .errors import ValidationError

MONEY_SCALE = Decimal("0.000001")
MONEY_FACTOR = 10**6


def to_money(value):
    """Round a Decimal (or str/int) to the stored precision of six places."""
    return Decimal(value).quantize(MONEY_SCALE, rounding=ROUND_HALF_EVEN)


def money_from_db(value):
    """An integer of millionths (as stored or summed) → Decimal."""
    if value is None:
        return None
    return (Decimal(int(value)) / MONEY_FACTOR).quantize(MONEY_SCALE)


def money_text(value):
    """A money amount as the API shows it: ``"12.50"``, ``"0.125"``, ``"-3.00"``."""
    amount = Decimal(value).normalize()
    if amount.as_tuple().exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def parse_money(value, name="payout"):
    """A finite decimal from a JSON number or string, at most 12 integer digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValidationError("%s must be a number" % name)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError("%s must be a number" % name) from None
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 12:
        raise ValidationError("%s must be a finite number below 10^12" % name)
    return to_money(amount)


class MoneyField(BigIntegerField):
    """A decimal amount stored as an integer count of millionths. Read an aggregate back
    with ``money_from_db``."""

    def db_value(self, value):
        if value is None:
            return None
        return int(to_money(value) * MONEY_FACTOR)

    def python_value(self, value):
        return money_from_db(value)
