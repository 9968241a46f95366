"""Step 16 on a database of version 15: the sub1 combination rows of the days already rolled up
are summed over the flows per UTC day and per whole week from Monday, as the worker keeps them
from then on, and a report of every flow by country, OS and sub1 reads them and equals the raw
rows."""

import datetime

from test_click_copies_step import as_version_15

from tracker.migrations import LATEST, current_version, upgrade
from tracker.models import Click, RollupCombo
from tracker.reports import rollups
from tracker.reports.queries import ReportQuery, run_report

from factories import add_click, add_flow

NOW = datetime.datetime(2024, 4, 18, 6, 30)  # rolled up to 04-18 06:00: two whole weeks from 04-01
EVERY_FLOW = (rollups.EVERY_FLOW_DAY, rollups.EVERY_FLOW_WEEK)


def every_flow_rows():
    model = RollupCombo
    columns = [model.kind, model.day, model.flow_id, model.is_bot, model.country, model.device_type]
    columns += [model.os, model.browser, model.sub1, model.clicks, model.unique_clicks, model.lp_views]
    return sorted(model.select(*columns).where(model.kind.in_(EVERY_FLOW)).tuples())


def figures(query):
    return {row.keys: (row.clicks, row.bot_clicks, row.unique_clicks) for row in run_report(query)}


def test_a_version_15_database_gets_the_every_flow_rows_of_the_days_rolled_up(app):
    flows = [add_flow("A"), add_flow("B")]
    moment, number = datetime.datetime(2024, 4, 1, 2), 0
    while moment < NOW:
        add_click(
            flows[number % 2],
            moment.strftime("%Y-%m-%d %H:%M"),
            country=["US", "DE", ""][number % 3],
            os=["iOS", "Android"][number % 5 % 2],
            device_type=["mobile", "desktop"][number % 7 % 2],
            sub1=["z1", "z2", ""][number % 4 % 3],
            is_bot=number % 9 == 0,
            is_unique=number % 2 == 0,
        )
        moment += datetime.timedelta(hours=7, minutes=number % 40)
        number += 1
    rollups.advance(now=NOW)
    kept = every_flow_rows()
    weeks = {row[1] for row in kept if row[0] == rollups.EVERY_FLOW_WEEK}
    assert weeks == (
        {datetime.datetime(2024, 4, 1), datetime.datetime(2024, 4, 8)} if rollups.weeks_kept() else set()
    )
    query = ReportQuery("country,os,sub1", datetime.date(2024, 4, 1), datetime.date(2024, 4, 17))
    expected = figures(query)
    as_version_15()
    assert every_flow_rows() == []
    assert upgrade() == (15, LATEST)
    assert current_version() == LATEST
    assert every_flow_rows() == kept
    assert figures(query) == expected
    counted = Click.select().where(Click.created_at < datetime.datetime(2024, 4, 18)).count()
    assert sum(clicks + bots for clicks, bots, _ in expected.values()) == counted > 50
