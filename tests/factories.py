"""Rows made directly with the models, at fixed times, for the read-path tests."""

import datetime
import itertools
from decimal import Decimal

from tracker.flows import new_flow_key
from tracker.models import CLICK_COPIED, Click, Conversion, Flow

_ids = itertools.count(1)

HOSTILE = "<script>alert(1)</script>"


def at(text):
    """``"2024-05-01 10:15"`` → a naive UTC datetime."""
    return datetime.datetime.fromisoformat(text)


def add_flow(name="Flow", **fields):
    fields.setdefault("offer_url", "https://offer.example/?cid={clickid}")
    return Flow.create(name=name, key=new_flow_key(), **fields)


def add_click(flow, when, **fields):
    """A click on ``flow`` at ``when`` (a ``"YYYY-MM-DD HH:MM"`` string)."""
    n = next(_ids)
    fields.setdefault("click_id", "c%08d%s" % (n, "x" * 8))
    fields.setdefault("cost", Decimal(0))
    return Click.create(flow=flow, created_at=at(when), **fields)


def add_conversion(click, payout, status="approved", event="conversion", when=None, **fields):
    """A conversion of ``click``; ``when`` defaults to an hour after the click."""
    created = at(when) if when else click.created_at + datetime.timedelta(hours=1)
    fields = {**{"click_" + name: getattr(click, name) for name in CLICK_COPIED}, **fields}
    return Conversion.create(
        click=click,
        flow=click.flow_id,
        event=event,
        payout=Decimal(payout),
        status=status,
        dedup_key=fields.pop("dedup_key", ""),
        created_at=created,
        updated_at=created,
        **fields,
    )


def report_dataset():
    """Two flows, six clicks over four days, conversions of every status (even a debit).

    Expected numbers are worked out by hand in ``test_reports.py``.
    """
    a, b = add_flow("Flow A"), add_flow("Flow B")
    c1 = add_click(a, "2024-05-01 10:15", country="US", sub1="s1", cost=Decimal("0.10"))
    c2 = add_click(a, "2024-05-01 11:30", country="US", sub1="s1", cost=Decimal("0.10"), is_unique=False)
    c3 = add_click(a, "2024-05-02 09:00", country="DE", sub1="s2", cost=Decimal("0.20"))
    c4 = add_click(b, "2024-05-02 23:59:59", country="US", sub1="", cost=Decimal("0.30"))
    c5 = add_click(b, "2024-05-03 00:00", country="FR", sub1=HOSTILE, cost=Decimal("0.05"))
    c6 = add_click(a, "2024-04-30 23:00", country="US", sub1="s1", cost=Decimal("1.00"))
    add_conversion(c1, "2.50")
    add_conversion(c1, "1.00", event="upsell")
    add_conversion(c3, "5.00", status="pending")
    add_conversion(c4, "3.00", when="2024-05-05 08:00")  # late: still counts on its click's day
    add_conversion(c5, "4.00", status="declined")
    add_conversion(c2, "-0.50")  # a debit
    return {"a": a, "b": b, "clicks": [c1, c2, c3, c4, c5, c6]}
