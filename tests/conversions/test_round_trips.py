"""What a conversion costs the database, and the flow's rules it reads from a cache.

Issue 14: ``/postback`` on PostgreSQL sent 14 statements, each a round trip (the click, the
flow's events, the txid's conversions, BEGIN, the conversion, its log, its history, the lead
profile read and write, the flow's postbacks, the traffic source, two deliveries, COMMIT). Now
the click comes with its flow, traffic source and txid's event; the flow's events and postbacks
come from a cache kept per version of the flow; BEGIN goes with the first write, and the writes
whose answer nobody reads go with the next statement or the COMMIT.

The cache must never serve a flow's old postbacks to a conversion once the change is saved,
whichever process saved it: the other process here is a real one."""

import re
import subprocess
import sys
import textwrap

import pytest

from tracker.db import db
from tracker.models import Conversion, ConversionChange, Delivery, InboundRequest, LeadProfile

from conftest import ROOT
from conversion_helpers import click_on

POSTBACK_URL = "https://pb.example/c?cid={clickid}&p={payout}&e={email}"
SOURCE_URL = "https://source.example/pb?ext={external_id}"


@pytest.fixture
def flow(api, make_flow):
    status, source = api.post("/api/v1/traffic-sources", json={"name": "Src", "postback_url": SOURCE_URL})
    assert status == 201
    postbacks = [{"trigger": "conversion", "url": POSTBACK_URL}]
    return make_flow(traffic_source_id=source["id"], postbacks=postbacks)


@pytest.mark.postgres_only  # SQLite runs in the process: a statement there is no round trip
def test_a_new_conversion_costs_five_round_trips_on_postgresql(client, flow, counted):
    clicks = [click_on(client, flow) for _ in range(2)]
    for click_id in clicks:  # the second time, every statement is prepared on the connection
        counted.clear()
        url = "/postback?click_id=%s&payout=12.5&txid=T1&status=approved&email=ann@example.com" % click_id
        answer = client.get(url)
        assert answer.status_code == 200, answer.get_json()
    assert len(counted) == 5, counted
    assert counted[1].startswith("BEGIN; SET LOCAL enable_seqscan TO off; EXECUTE ")  # db.INDEXED
    assert counted[-1].endswith("; COMMIT")
    conversion = Conversion.get(Conversion.click == click_id)
    assert (conversion.event, conversion.txid, conversion.status) == ("conversion", "T1", "approved")
    assert [c.status for c in ConversionChange.select().where(ConversionChange.conversion == conversion)] == [
        "approved"
    ]
    assert LeadProfile.get_by_id(click_id).data == {"email": "ann@example.com"}
    urls = sorted(d.url for d in Delivery.select().where(Delivery.conversion_id == conversion.id))
    assert urls == [
        "https://pb.example/c?cid=%s&p=12.50&e=ann%%40example.com" % click_id,
        "https://source.example/pb?ext=",
    ]
    log = InboundRequest.get(InboundRequest.conversion == conversion.id)
    assert (log.http_status, log.result) == (200, "ok")


def test_a_status_update_without_its_event_finds_it_by_txid_in_the_same_read(client, make_flow):
    flow = make_flow(events=[{"name": "lead"}, {"name": "sale", "conversion": True}])
    click_id, other = click_on(client, flow), click_on(client, flow)
    assert client.get("/postback?click_id=%s&event=sale&txid=S1&payout=3" % click_id).status_code == 200
    assert (
        client.get("/postback?click_id=%s&event=lead&txid=S1" % other).status_code == 200
    )  # another click's
    answer = client.get("/postback?click_id=%s&txid=S1&status=rejected" % click_id)
    assert answer.get_json()["status"] == "updated"
    assert [(c.event, c.status) for c in Conversion.select().order_by(Conversion.id)] == [
        ("sale", "declined"),
        ("lead", "approved"),
    ]
    # two conversions under one txid: the event is ambiguous, and this flow has no "conversion"
    assert client.get("/postback?click_id=%s&event=lead&txid=S1" % click_id).status_code == 200
    answer = client.get("/postback?click_id=%s&txid=S1&status=approved" % click_id)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "event is required: this flow defines lead, sale"


def in_another_process(database_url, code):
    """Run ``code`` in a new Python process on the test's database (``flow_id`` is bound)."""
    script = "from tracker.db import init_db, db\ninit_db(%r)\nwith db.connection_context():\n%s" % (
        database_url,
        textwrap.indent(textwrap.dedent(code), "    "),
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def deliveries_of(click_id):
    return sorted(d.url.split("?")[0] for d in Delivery.select().where(Delivery.click_id == click_id))


def test_a_postback_another_process_adds_or_removes_counts_from_the_next_conversion(client, flow, app_config):
    first = click_on(client, flow)
    assert client.get("/postback?click_id=%s&payout=1" % first).status_code == 200  # rules now cached
    assert deliveries_of(first) == ["https://pb.example/c", "https://source.example/pb"]
    in_another_process(
        app_config["TRACKER_DATABASE_URL"],
        """
        from tracker.flows import clean_postback, save_postback
        from tracker.models import Flow
        flow = Flow.get_by_id(%d)
        fields = {"trigger": "conversion", "url": "https://added.example/x?c={clickid}"}
        save_postback(clean_postback(fields), flow)
        """
        % flow["id"],
    )
    second = click_on(client, flow)
    assert client.get("/postback?click_id=%s&payout=1" % second).status_code == 200
    assert deliveries_of(second) == [
        "https://added.example/x",
        "https://pb.example/c",
        "https://source.example/pb",
    ]
    in_another_process(
        app_config["TRACKER_DATABASE_URL"],
        """
        from tracker.flows import delete_postback
        from tracker.models import Postback
        delete_postback(Postback.get(Postback.url.startswith("https://pb.example/")))
        """,
    )
    third = click_on(client, flow)
    answer = client.get("/postback?click_id=%s&payout=1" % third)
    assert answer.status_code == 200, answer.get_json()  # not the deleted postback's delivery: 500
    assert deliveries_of(third) == ["https://added.example/x", "https://source.example/pb"]


def test_events_another_process_defines_count_from_the_next_conversion(client, make_flow, app_config):
    flow = make_flow()
    first = click_on(client, flow)
    assert client.get("/postback?click_id=%s&event=sale" % first).status_code == 200  # any event, no rules
    in_another_process(
        app_config["TRACKER_DATABASE_URL"],
        """
        from tracker.flows import save_flow
        from tracker.models import Flow
        sale = {"name": "sale", "conversion": True, "allow_duplicates": False}
        save_flow({"events": [sale]}, Flow.get_by_id(%d))
        """
        % flow["id"],
    )
    second = click_on(client, flow)
    answer = client.get("/postback?click_id=%s&event=lead" % second)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "event 'lead' is not defined on this flow (defined: sale)"


def statement_kinds(texts):
    """Each SQL statement as its verb and table: ``SELECT click``, ``INSERT delivery RETURNING``."""
    kinds = []
    for text in texts:
        verb = text.split(None, 1)[0].upper()
        tables = dict.fromkeys(re.findall(r'(?:FROM|INTO|UPDATE|JOIN)\s+"(\w+)"', text))
        returning = ["RETURNING"] if " RETURNING " in text else []
        kinds.append(" ".join([verb, *tables, *returning]))
    return kinds


def run_traced(client, url):
    """The SQL statements SQLite runs for ``GET url`` (it must answer 200)."""
    texts = []
    db.connection().set_trace_callback(texts.append)
    try:
        answer = client.get(url)
    finally:
        db.connection().set_trace_callback(None)
    assert answer.status_code == 200, answer.get_json()
    return texts


@pytest.mark.sqlite_only  # PostgreSQL: the round trips above
def test_a_conversion_on_a_flow_read_a_moment_ago_runs_only_its_own_statements(client, flow, api):
    status_postback = {"trigger": "status", "url": "https://pb.example/s?cid={clickid}&s={status}"}
    assert (
        api.patch("/api/v1/flows/%d" % flow["id"], json={"postbacks": [*flow["postbacks"], status_postback]})[
            0
        ]
        == 200
    )
    clicks = [click_on(client, flow) for _ in range(2)]
    url = "/postback?click_id=%s&payout=12.5&txid=T1&status=approved&email=ann@example.com"
    assert client.get(url % clicks[0]).status_code == 200  # reads the flow's events and postbacks
    assert statement_kinds(run_traced(client, url % clicks[1])) == [
        "SELECT conversion click flow traffic_source",  # the click, its flow and source, the txid's event
        "BEGIN",
        "INSERT conversion click RETURNING",
        "INSERT inbound_request RETURNING",  # its id goes into the history row
        "INSERT conversion_change",
        "INSERT lead_profile RETURNING",  # stores the profile, or returns the stored one
        "INSERT delivery",  # the flow's conversion postback
        "INSERT delivery",  # its status postback (a new conversion's status is news too)
        "INSERT delivery",  # the traffic source's
        "COMMIT",
    ]
    update = "/postback?click_id=%s&txid=T1&status=declined" % clicks[1]
    assert statement_kinds(run_traced(client, update)) == [
        "SELECT conversion click flow traffic_source",
        "BEGIN",
        "INSERT conversion click RETURNING",  # it conflicts: the conversion exists
        "SELECT conversion",
        "UPDATE conversion",
        "INSERT inbound_request RETURNING",
        "INSERT conversion_change",
        "INSERT lead_profile RETURNING",
        "SELECT delivery",  # the last delivery of the status postback, if identical: skipped
        "INSERT delivery",
        "COMMIT",
    ]
