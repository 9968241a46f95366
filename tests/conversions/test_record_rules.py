"""Rules of the conversion record, in process: an update changes its own conversion and no
other; a cost changes its own click; the event API's claim on a transaction_id + event_id pair
is given back for that pair alone and never taken from a request that took it over; a
conversion is never written for a click that retention removed meanwhile."""

import datetime
import logging
import time
from decimal import Decimal

import pytest

from tracker.clickin.record import new_click_id
from tracker.conversions.claims import Claim, Refused, SenderRules, make_inbound
from tracker.conversions.contracts import CONTRACTS
from tracker.conversions.record import Trace, claim_pair, record_conversion, release_claim, write
from tracker.currency import replace_rates
from tracker.db import db, is_postgres
from tracker.models import (
    Click,
    Conversion,
    ConversionChange,
    Delivery,
    FlowEvent,
    InboundRequest,
    Offer,
    RequestLock,
    TrafficSource,
)

from postback_helpers import NOW, make_click

SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def flow_id(app, make_flow):
    return make_flow(payout="3.00")["id"]


def postback(at=NOW, rules=None, **fields):
    """Record a ``/postback`` with ``fields`` at ``at``; its ``Outcome``."""
    inbound = make_inbound("postback", "GET", "127.0.0.1", list(fields.items()))
    return record_conversion(inbound, rules or SenderRules(), at)


def status_payout(conversion_id):
    row = Conversion.get_by_id(conversion_id)
    return row.status, row.payout


def test_a_status_update_changes_the_conversion_it_names_and_no_other(flow_id):
    with db.connection_context():
        first, second = make_click(flow_id), make_click(flow_id)
        ids = {
            "first": postback(click_id=first.click_id, event="lead", payout="5").conversion_id,
            "lead": postback(click_id=second.click_id, event="lead", payout="1").conversion_id,
            "tx1": postback(click_id=second.click_id, event="sale", payout="7", txid="TX-1").conversion_id,
            "tx2": postback(click_id=second.click_id, event="sale", payout="9", txid="TX-2").conversion_id,
        }
        assert (
            postback(click_id=second.click_id, event="sale", txid="TX-2", status="rejected").status
            == "updated"
        )
        assert postback(click_id=second.click_id, event="lead", status="pending").status == "updated"
        assert {name: status_payout(i) for name, i in ids.items()} == {
            "first": ("approved", Decimal("5")),
            "lead": ("pending", Decimal("1")),
            "tx1": ("approved", Decimal("7")),
            "tx2": ("declined", Decimal("9")),
        }


def test_a_cost_sent_with_an_event_changes_its_own_click_only(app, make_flow):
    flow = make_flow()
    with db.connection_context():
        mine, other = make_click(flow["id"]), make_click(flow["id"])  # each cost 0.35
        fields = {"cid": flow["key"], "transaction_id": mine.click_id, "event_id": "conversion"}
        fields.update(revenue="5", cost="1.25", cost_operation="add")
        inbound = make_inbound("events", "POST", "127.0.0.1", list(fields.items()))
        assert record_conversion(inbound, SenderRules(), NOW).http_status == 200
        assert Click.get_by_id(mine.click_id).cost == Decimal("1.60")
        assert Click.get_by_id(other.click_id).cost == Decimal("0.35")


def test_giving_back_a_claim_frees_that_pair_only(app):
    with db.connection_context():
        mine = claim_pair("events:c1:sale", NOW, 2)
        claim_pair("events:c2:sale", NOW, 2)  # another pair, claimed in the same instant
        release_claim("events:c1:sale", mine)
        assert claim_pair("events:c1:sale", NOW, 2) == mine  # free again
        with pytest.raises(Refused) as held:
            claim_pair("events:c2:sale", NOW, 2)
        assert held.value.status == 403


def test_a_claim_taken_over_after_it_expired_is_not_given_back_by_its_first_holder(app):
    with db.connection_context():
        stale = claim_pair("events:c1:sale", NOW, 2)
        later = NOW + 3 * SECOND
        claim_pair("events:c1:sale", later, 2)  # the first holder's claim expired: taken over
        release_claim("events:c1:sale", stale)  # the first holder fails, and gives back its claim
        with pytest.raises(Refused) as held:
            claim_pair("events:c1:sale", later, 2)
        assert held.value.status == 403


def test_a_claim_that_cannot_be_given_back_is_logged_by_its_pair(app, caplog):
    with db.connection_context():
        expires = claim_pair("events:c1:sale", NOW, 2)
        # The table is dropped inside a transaction rolled back afterwards: on PostgreSQL the
        # tables outlive the test (emptied, not copied, for the next one).
        with db.atomic() as transaction:
            db.execute_sql('DROP TABLE "%s"' % RequestLock._meta.table_name)
            release_claim("events:c1:sale", expires)  # never raises: the request's answer stands
            transaction.rollback()
        assert RequestLock.select().count() == 1
    records = [r for r in caplog.records if r.name == "tracker.conversions.record"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.ERROR, "could not release the claim 'events:c1:sale'")
    ]
    assert records[0].exc_info is not None


def test_no_conversion_is_written_for_a_click_removed_since_it_was_found(flow_id):
    with db.connection_context():
        click = make_click(flow_id)
        flow = click.flow
        Click.delete().where(Click.click_id == click.click_id).execute()  # retention, meanwhile
        inbound = make_inbound("postback", "GET", "127.0.0.1", [("click_id", click.click_id)])
        claim = Claim(click_id=click.click_id, event="conversion", currency="USD")
        with pytest.raises(Refused) as refused:
            write(CONTRACTS["postback"], inbound, claim, click, flow, None, NOW, NOW, Trace(notes=[]))
        assert (refused.value.status, refused.value.reason) == (
            404,
            "click_id %r is not a click of ours" % click.click_id,
        )
        assert Conversion.select().count() == 0


def test_an_update_keeps_the_rate_of_its_day_until_its_currency_changes(flow_id):
    replace_rates({"EUR": Decimal("1.10"), "GBP": Decimal("1.25")})
    with db.connection_context():
        click = make_click(flow_id)
        sale = {"click_id": click.click_id, "event": "sale", "txid": "TX-1"}
        conversion_id = postback(**sale, payout="10", currency="EUR").conversion_id
        replace_rates({"EUR": Decimal("1.20"), "GBP": Decimal("1.25")})  # the rates move on

        def shown():
            row = Conversion.get_by_id(conversion_id)
            return row.payout, row.currency, row.rate, row.report_payout

        assert shown() == (Decimal("10"), "EUR", "1.10", Decimal("11.00"))
        assert postback(**sale, payout="20", currency="EUR").status == "updated"
        assert shown() == (Decimal("20"), "EUR", "1.10", Decimal("22.00"))  # the rate of its day
        assert postback(**sale, status="pending").status == "updated"  # a status alone
        assert shown() == (Decimal("20"), "EUR", "1.10", Decimal("22.00"))
        assert postback(**sale, payout="30", currency="GBP").status == "updated"
        assert shown() == (Decimal("30"), "GBP", "1.25", Decimal("37.50"))  # today's rate of GBP


def test_an_update_into_the_report_currency_itself_is_at_rate_one(flow_id):
    replace_rates({"EUR": Decimal("1.10"), "GBP": Decimal("0.85")})
    in_euros = SenderRules(report_currency="EUR")
    with db.connection_context():
        click = make_click(flow_id)
        sale = {"click_id": click.click_id, "event": "sale", "txid": "TX-1"}
        conversion_id = postback(rules=in_euros, **sale, payout="10", currency="GBP").conversion_id
        assert postback(rules=in_euros, **sale, payout="12", currency="EUR").status == "updated"
        row = Conversion.get_by_id(conversion_id)
        assert (row.currency, row.rate, row.report_payout) == ("EUR", "1", Decimal("12.00"))
        lead = postback(rules=in_euros, click_id=click.click_id, event="lead", payout="2", currency="EUR")
        row = Conversion.get_by_id(lead.conversion_id)
        assert (row.currency, row.rate, row.report_payout) == ("EUR", "1", Decimal("2.00"))


def test_a_duplicate_and_an_update_are_logged_at_their_time_against_their_conversion(flow_id):
    later = NOW + datetime.timedelta(hours=1)
    with db.connection_context():
        click = make_click(flow_id)
        sale = {"click_id": click.click_id, "event": "sale", "payout": "5", "txid": "TX-1"}
        conversion_id = postback(**sale).conversion_id
        assert Conversion.get_by_id(conversion_id).updated_at == NOW
        assert postback(at=later, **sale).status == "duplicate"
        assert postback(at=later, **dict(sale, payout="6")).status == "updated"
        logs = list(InboundRequest.select().order_by(InboundRequest.id))
        assert [(log.result, log.at, log.conversion_id) for log in logs] == [
            ("ok", NOW, conversion_id),
            ("duplicate", later, conversion_id),
            ("updated", later, conversion_id),
        ]


def test_an_update_fires_the_status_postback_now_and_not_the_new_conversion_postback_again(app, make_flow):
    flow = make_flow(
        postbacks=[
            {"trigger": "conversion", "url": "https://pb.example/new?c={clickid}"},
            {"trigger": "status", "url": "https://pb.example/status?s={status}"},
        ]
    )
    later = NOW + datetime.timedelta(hours=1)
    with db.connection_context():
        click = make_click(flow["id"])
        sale = {"click_id": click.click_id, "event": "sale", "payout": "5", "txid": "TX-1"}
        postback(**sale)
        assert postback(at=later, **dict(sale, status="rejected")).status == "updated"
        rows = Delivery.select().order_by(Delivery.id)
        assert [(d.trigger, d.url, d.created_at) for d in rows] == [
            ("conversion", "https://pb.example/new?c=%s" % click.click_id, NOW),
            ("status", "https://pb.example/status?s=approved", NOW),
            ("status", "https://pb.example/status?s=declined", later),
        ]


def test_a_pair_still_claimed_is_refused_whatever_other_claims_have_expired(app):
    with db.connection_context():
        claim_pair("events:other:sale", NOW, 2)  # expires at NOW + 2 s
        claim_pair("events:mine:sale", NOW + SECOND, 2)  # expires at NOW + 3 s
        with pytest.raises(Refused) as held:
            claim_pair("events:mine:sale", NOW + 2.5 * SECOND, 2)  # only the other one expired
        assert held.value.status == 403


def test_an_event_without_revenue_is_worth_nothing_not_the_offers_payout(app, make_flow):
    flow = make_flow(payout="3.00", events=[{"name": "lead", "conversion": False}])
    with db.connection_context():
        click = make_click(flow["id"])
        fields = {"cid": flow["key"], "transaction_id": click.click_id, "event_id": "lead"}
        inbound = make_inbound("events", "POST", "127.0.0.1", list(fields.items()))
        outcome = record_conversion(inbound, SenderRules(), NOW)
        assert outcome.http_status == 200, outcome.error
        assert Conversion.get_by_id(outcome.conversion_id).payout == 0


def test_a_postback_without_txid_updates_the_one_conversion_of_its_click_and_event(flow_id):
    with db.connection_context():
        mine, other = make_click(flow_id), make_click(flow_id)
        postback(click_id=other.click_id, event="sale", payout="4", txid="TX-9")
        postback(click_id=mine.click_id, event="lead", payout="1", txid="TX-1")
        sale_id = postback(click_id=mine.click_id, event="sale", payout="5", txid="TX-2").conversion_id
        outcome = postback(click_id=mine.click_id, event="sale", status="rejected")
        assert (outcome.status, outcome.conversion_id) == ("updated", sale_id)
        assert Conversion.get_by_id(sale_id).status == "declined"
        assert Conversion.select().count() == 3


def test_a_tiny_rate_is_kept_as_plain_decimal_text_and_a_zero_payout_reports_zero(flow_id):
    replace_rates({"VND": Decimal("0.00000004"), "EUR": Decimal("1.10")})
    with db.connection_context():
        click = make_click(flow_id)
        dong = postback(click_id=click.click_id, event="sale", payout="1000000", currency="VND")
        free = postback(click_id=click.click_id, event="trial", payout="0", currency="EUR")
        shown = [Conversion.get_by_id(o.conversion_id) for o in (dong, free)]
        assert [(c.rate, c.report_payout) for c in shown] == [
            ("0.00000004", Decimal("0.04")),
            ("1.10", Decimal("0")),
        ]


def test_each_change_of_a_conversion_is_kept_at_its_time_and_the_log_says_what_happened(app, make_flow):
    flow = make_flow()
    later = NOW + datetime.timedelta(hours=1)
    with db.connection_context():
        click = make_click(flow["id"])
        sale = {"click_id": click.click_id, "event": "sale", "txid": "TX-1"}
        conversion_id = postback(**sale, payout="5").conversion_id
        postback(at=later, **sale, payout="6")
        changes = ConversionChange.select().where(ConversionChange.conversion == conversion_id)
        assert [(c.at, c.payout) for c in changes.order_by(ConversionChange.id)] == [
            (NOW, Decimal("5")),
            (later, Decimal("6")),
        ]
        fields = {"cid": flow["key"], "transaction_id": click.click_id, "event_id": "signup"}
        inbound = make_inbound("events", "POST", "127.0.0.1", list(fields.items()))
        assert record_conversion(inbound, SenderRules(), later).status == "fired"
        reasons = [log.reason for log in InboundRequest.select().order_by(InboundRequest.id)]
        assert reasons == ["recorded", "status or payout updated", "event fired"]


def test_a_conversion_defaults_to_the_payout_and_currency_of_the_offer_its_click_went_to(app, make_flow):
    flow = make_flow(payout="3.00")
    with db.connection_context():
        offer = Offer.create(
            name="Acme EU", url="https://acme.example/", payout=Decimal("7.50"), currency="EUR"
        )
        to_offer, direct = make_click(flow["id"], offer_id=offer.id), make_click(flow["id"])
        defaults = []
        for click in (to_offer, direct):
            outcome = postback(click_id=click.click_id, event="sale")
            row = Conversion.get_by_id(outcome.conversion_id)
            defaults.append((row.payout, row.currency))
        assert defaults == [(Decimal("7.50"), "EUR"), (Decimal("3.00"), "USD")]


def test_a_pid_of_more_digits_than_an_id_can_have_is_read_as_a_name(app, make_flow):
    flow = make_flow()
    with db.connection_context():
        TrafficSource.create(name="9" * 19)  # 19 digits: more than a 64-bit id holds
        click = make_click(flow["id"])
        answers = []
        for n, pid in enumerate(["9" * 19, "8" * 19]):
            fields = {"cid": flow["key"], "transaction_id": click.click_id, "event_id": "e%d" % n}
            inbound = make_inbound("events", "POST", "127.0.0.1", list(dict(fields, pid=pid).items()))
            outcome = record_conversion(inbound, SenderRules(), NOW)
            answers.append((outcome.http_status, outcome.error))
        assert answers == [
            (200, None),
            (400, "pid %r is invalid: no traffic source has this id or name" % ("8" * 19)),
        ]


def test_a_pid_naming_several_sources_or_an_inactive_one_is_refused_and_quoted_cut_to_80(app, make_flow):
    flow = make_flow()
    long_name = "Network " + "n" * 100
    with db.connection_context():
        TrafficSource.create(name="Facebook")
        TrafficSource.create(name="facebook")
        TrafficSource.create(name=long_name)
        TrafficSource.create(name=long_name.upper())
        TrafficSource.create(name="Paused " + "p" * 100, active=False)
        click = make_click(flow["id"])
        answers = []
        for n, pid in enumerate(["FACEBOOK", long_name, "Paused " + "p" * 100, "Gone " + "g" * 100]):
            fields = {"cid": flow["key"], "transaction_id": click.click_id, "event_id": "e%d" % n, "pid": pid}
            outcome = record_conversion(
                make_inbound("events", "POST", "127.0.0.1", list(fields.items())), SenderRules(), NOW
            )
            answers.append((outcome.http_status, outcome.error))
        assert answers == [
            (400, "pid 'FACEBOOK' is ambiguous: several traffic sources have this name"),
            (400, "pid %r is ambiguous: several traffic sources have this name" % long_name[:80]),
            (403, "source %s is inactive" % ("Paused " + "p" * 100)[:80]),
            (400, "pid %r is invalid: no traffic source has this id or name" % ("Gone " + "g" * 100)[:80]),
        ]


def test_a_postback_without_event_is_the_conversion_event_when_the_flow_defines_one(app, make_flow):
    with_it = make_flow(
        events=[{"name": "lead", "conversion": False}, {"name": "conversion", "conversion": True}]
    )
    without = make_flow(events=[{"name": "lead", "conversion": False}, {"name": "sale", "conversion": True}])
    with db.connection_context():
        taken = postback(click_id=make_click(with_it["id"]).click_id, payout="5")
        refused = postback(click_id=make_click(without["id"]).click_id, payout="5")
        assert (taken.http_status, Conversion.get_by_id(taken.conversion_id).event) == (200, "conversion")
        assert (refused.http_status, refused.error) == (
            400,
            "event is required: this flow defines lead, sale",
        )


def test_an_unknown_click_made_minutes_ago_may_still_wait_in_a_spool_so_retry(app):
    with db.connection_context():
        recent = new_click_id()  # made now: it may wait in a click spool
        old = new_click_id(time.time() - 86400)
        answers = [(o.http_status, o.error) for o in (postback(click_id=recent), postback(click_id=old))]
    assert answers == [
        (503, "click_id %r is not written yet (it may wait in a click spool): retry" % recent),
        (404, "click_id %r is not a click of ours" % old),
    ]


def test_an_event_is_logged_against_the_flow_its_cid_names_even_when_refused(app, make_flow):
    flow, other = make_flow(), make_flow()
    with db.connection_context():
        stranger = make_click(other["id"])  # a click of another campaign
        fields = {"cid": flow["key"], "transaction_id": stranger.click_id, "event_id": "sale"}
        outcome = record_conversion(
            make_inbound("events", "POST", "127.0.0.1", list(fields.items())), SenderRules(), NOW
        )
        assert outcome.http_status == 400
        assert InboundRequest.get().flow_id == flow["id"]


def test_a_failure_while_recording_answers_500_and_logs_the_request(flow_id, caplog):
    with db.connection_context():
        click = make_click(flow_id)
        with db.atomic() as transaction:  # the table back afterwards, on either engine
            db.execute_sql('DROP TABLE "%s"' % FlowEvent._meta.table_name)
            outcome = postback(click_id=click.click_id, payout="5")
            transaction.rollback()
    assert outcome.to_json() == {
        "status": "error",
        "conversion_id": None,
        "error": "internal error: the conversion was not recorded; retry later",
    }
    assert outcome.http_status == 500
    first = next(r for r in caplog.records if r.name == "tracker.conversions.record")
    assert first.getMessage() == "could not record a conversion from postback %r" % {
        "click_id": click.click_id,
        "payout": "5",
    }
    assert first.exc_info is not None


def test_an_update_by_click_alone_changes_the_event_it_names_not_another_of_that_click(flow_id):
    with db.connection_context():
        click = make_click(flow_id)
        lead = postback(click_id=click.click_id, event="lead", payout="1").conversion_id
        signup = postback(click_id=click.click_id, event="signup", payout="2").conversion_id
        assert postback(click_id=click.click_id, event="signup", status="rejected").status == "updated"
        assert (status_payout(lead), status_payout(signup)) == (
            ("approved", Decimal("1")),
            ("declined", Decimal("2")),
        )


def test_an_event_is_worth_its_revenue_in_the_report_currency_at_the_stored_rate(app, make_flow):
    # TRACKER_CURRENCY is EUR: an event in GBP is reported at GBP's stored rate in euros, one in
    # euros at rate 1 (the event API's path, claims and all: /postback's is tested above)
    replace_rates({"GBP": Decimal("1.25"), "USD": Decimal("0.90")})
    flow = make_flow(events=[{"name": "sale"}, {"name": "upsell"}])
    in_euros = SenderRules(report_currency="EUR")
    with db.connection_context():
        click = make_click(flow["id"])
        shown = []
        for event, revenue, currency in (("sale", "10", "GBP"), ("upsell", "4", "EUR")):
            fields = {"cid": flow["key"], "transaction_id": click.click_id, "event_id": event}
            fields.update(revenue=revenue, currency=currency)
            inbound = make_inbound("events", "POST", "127.0.0.1", list(fields.items()))
            outcome = record_conversion(inbound, in_euros, NOW)
            assert outcome.http_status == 200, outcome.error
            row = Conversion.get_by_id(outcome.conversion_id)
            shown.append((row.currency, row.rate, row.report_payout))
        assert shown == [("GBP", "1.25", Decimal("12.50")), ("EUR", "1", Decimal("4.00"))]


def test_a_postback_without_a_click_id_is_logged_with_none(app):
    with db.connection_context():
        outcome = postback(event="sale", payout="5")
        assert outcome.http_status == 400
        (logged,) = InboundRequest.select()
        assert (logged.click_id, logged.http_status) == ("", 400)


def test_a_request_the_database_cannot_log_is_refused_with_a_500_and_named_in_the_log(flow_id, caplog):
    # a real refusal by the database: a trigger aborts every insert into the inbound log. The
    # log is written with the conversion, so nothing is recorded: the 500 asks the sender to
    # retry, and the process log keeps the request (the one place left to find it)
    table = InboundRequest._meta.table_name
    if is_postgres():
        create = [
            "CREATE FUNCTION refuse_log() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'log full'; END $$"
            " LANGUAGE plpgsql",
            'CREATE TRIGGER refuse_log BEFORE INSERT ON "%s" FOR EACH ROW EXECUTE FUNCTION refuse_log()'
            % table,
        ]
        drop = ['DROP TRIGGER refuse_log ON "%s"' % table, "DROP FUNCTION refuse_log()"]
    else:
        create = [
            "CREATE TRIGGER refuse_log BEFORE INSERT ON \"%s\" BEGIN SELECT RAISE(ABORT, 'log full'); END"
            % table
        ]
        drop = ["DROP TRIGGER refuse_log"]
    with db.connection_context():
        click = make_click(flow_id)
        for sql in create:
            db.execute_sql(sql)
        try:
            with caplog.at_level(logging.ERROR, logger="tracker.conversions.record"):
                outcome = postback(click_id=click.click_id, event="sale", payout="5")
        finally:
            for sql in drop:
                db.execute_sql(sql)
        assert (outcome.http_status, outcome.status) == (500, "error")
        assert Conversion.select().count() == 0 and InboundRequest.select().count() == 0
        (record,) = [r for r in caplog.records if "could not log" in r.getMessage()]
        assert record.getMessage() == "could not log an inbound postback request %.2000r" % (
            {"click_id": click.click_id, "event": "sale", "payout": "5"},
        )
        assert "log full" in caplog.text  # the database's reason, with the traceback
