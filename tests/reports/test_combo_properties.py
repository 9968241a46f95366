"""Property: a report the combination rollup holds, read a page at a time (the page picked from the
combination rows of the whole UTC days and the raw clicks around them) or whole, is the report
read from the raw rows alone, row for row and in its order, whatever the clicks, the rolled-up
point, the clicks changed after it (marked dirty), the time zone, the order and the page size."""

import datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.models import Click, Conversion, Flow, RollupClick, RollupCombo, RollupDirty, Setting
from tracker.reports import rollups
from tracker.reports.queries import CLICK_ORDERS, ReportQuery, run_report

from conftest import examples
from factories import add_click, add_conversion, add_flow
from test_combo_rollup import pages
from test_rollups import figures

START = datetime.datetime(2024, 5, 1)
DAYS = 5

CLICKS = st.lists(
    st.fixed_dictionaries(
        {
            "flow": st.integers(0, 1),
            "minute": st.integers(0, DAYS * 24 * 60 - 1),
            "country": st.sampled_from(["US", "DE", ""]),
            "device_type": st.sampled_from(["mobile", "desktop"]),
            "os": st.sampled_from(["iOS", "Android"]),
            "sub1": st.sampled_from(["a", "b", "c", ""]),
            "is_bot": st.booleans(),
            "is_unique": st.booleans(),
            "cost": st.sampled_from(["0", "0.05", "0.333333"]),
            "landed": st.sampled_from([None, "view", "click"]),
            "converted": st.booleans(),
            "changed": st.booleans(),  # after the roll-up: its cost, and a lander click
        }
    ),
    max_size=30,
)
QUERIES = st.fixed_dictionaries(
    {
        "group_by": st.sampled_from(
            ["country,os,sub1", "sub1,country", "os,sub1", "flow,sub1", "device_type,sub1"]
        ),
        "filters": st.sampled_from(
            [(), (("country", "US"),), (("os", "iOS"), ("os", "Android")), (("sub1", "a"),)]
        ),
        "tz": st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
        "order": st.sampled_from(CLICK_ORDERS),
        "include_bots": st.booleans(),
        "first": st.integers(0, DAYS - 1),
        "days": st.integers(1, DAYS),
        "one_flow": st.booleans(),
    }
)


def flows():
    return list(Flow.select().order_by(Flow.id)) or [add_flow("P0"), add_flow("P1")]


def rows(report):
    return [(row.keys, figures([row])[row.key]) for row in report]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(clicks=CLICKS, hours=st.integers(0, (DAYS + 1) * 24), wanted=QUERIES, size=st.integers(1, 4))
def test_pages_of_combination_reports_are_the_raw_report(app, clicks, hours, wanted, size):
    for model in (Conversion, Click, RollupClick, RollupCombo, RollupDirty):
        model.delete().execute()
    Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()
    both = flows()
    made = []
    for number, spec in enumerate(clicks):
        when = START + datetime.timedelta(minutes=spec["minute"])
        click = add_click(
            both[spec["flow"]],
            when.strftime("%Y-%m-%d %H:%M"),
            click_id="p%07d" % number,
            country=spec["country"],
            device_type=spec["device_type"],
            os=spec["os"],
            sub1=spec["sub1"],
            is_bot=spec["is_bot"],
            is_unique=spec["is_unique"],
            cost=Decimal(spec["cost"]),
            lander_id=1 if spec["landed"] else None,
            lp_clicked_at=when + datetime.timedelta(minutes=1) if spec["landed"] == "click" else None,
        )
        if spec["converted"]:
            add_conversion(click, "2.50")
        made.append((click, spec))
    now = START + datetime.timedelta(hours=hours, minutes=30)
    rollups.advance(now=now)
    for click, spec in made:
        if spec["changed"]:
            Click.update(cost=Decimal("1.25"), lander_id=2, lp_clicked_at=click.created_at).where(
                Click.click_id == click.click_id
            ).execute()
            rollups.mark([(click.created_at, click.flow_id)], now=now)
    first = (START + datetime.timedelta(days=wanted["first"])).date()
    query = ReportQuery(
        wanted["group_by"],
        first,
        first + datetime.timedelta(days=wanted["days"] - 1),
        tz=wanted["tz"],
        filters=wanted["filters"],
        order=wanted["order"],
        include_bots=wanted["include_bots"],
        flow_id=both[0].id if wanted["one_flow"] else None,
    )
    seen, _ = pages(query, size)
    whole = rows(run_report(query))
    Setting.delete().where(Setting.key == rollups.UNTIL_KEY).execute()  # the raw rows alone
    raw = rows(run_report(query))
    assert seen == raw
    assert sorted(whole, key=repr) == sorted(raw, key=repr)
