"""``tracker reports rebuild`` and ``tracker rates update`` run as a user runs them; the ECB's
daily XML is served by a loopback server."""

import datetime
from decimal import Decimal

from test_cli import run

from tracker.db import db
from tracker.models import CurrencyRate, RollupClick
from tracker.reports import rollups

from factories import add_click, add_flow

ECB = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
 <gesmes:subject>Reference rates</gesmes:subject>
 <Cube><Cube time="2026-11-27">
  <Cube currency="USD" rate="1.0500"/><Cube currency="JPY" rate="160.00"/>
  <Cube currency="GBP" rate="0.8400"/>
 </Cube></Cube>
</gesmes:Envelope>"""


def test_rates_update_reads_the_ecb_rates_into_the_report_currency(server_env, httpserver, app):
    httpserver.expect_request("/daily.xml").respond_with_data(ECB, content_type="text/xml")
    result = run(["rates", "update", "--url", httpserver.url_for("/daily.xml")], server_env)
    assert result.stdout.strip() == "stored 3 rates in USD from the ECB (2026-11-27)"
    with db.connection_context():
        rates = {row.code: Decimal(row.rate) for row in CurrencyRate.select()}
    assert rates == {
        "EUR": Decimal("1.05"),
        "GBP": Decimal("1.25"),
        "JPY": Decimal("0.0065625"),
    }


def test_rates_update_says_why_it_failed(server_env, httpserver, app):
    httpserver.expect_request("/daily.xml").respond_with_data("nope", status=503)
    result = run(["rates", "update", "--url", httpserver.url_for("/daily.xml")], server_env, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "could not read the ECB rates: 503 Server Error: SERVICE UNAVAILABLE for url: %s"
        % httpserver.url_for("/daily.xml")
    )


def test_reports_rebuild_recomputes_a_period(server_env, app):
    with db.connection_context():
        flow = add_flow()
        add_click(flow, "2024-05-01 10:00", country="US")
        rollups.advance(now=datetime.datetime(2024, 5, 3))
        add_click(flow, "2024-05-01 11:00", country="US")  # late, unmarked
        assert sum(r.clicks for r in RollupClick.select().where(RollupClick.dimension == "country")) == 1
    result = run(["reports", "rebuild", "--from", "2024-05-01", "--to", "2024-05-01"], server_env)
    assert result.stdout.strip().endswith(
        "rebuilt 24 hour(s) of rollups from 2024-05-01 00:00:00 to 2024-05-02 00:00:00 UTC"
    )
    with db.connection_context():
        assert sum(r.clicks for r in RollupClick.select().where(RollupClick.dimension == "country")) == 2
    bad = run(["reports", "rebuild", "--from", "May", "--to", "2024-05-01"], server_env, check=False)
    assert bad.returncode == 1 and "--from must be a date like 2024-05-31" in bad.stderr
