"""``GET|POST /postback`` (DESIGN §4.2): recorded exactly once, every refusal explained and logged."""

import datetime
from decimal import Decimal

import pytest

from tracker.conversions.claims import SenderRules, make_inbound
from tracker.conversions.record import record_conversion
from tracker.db import db, is_postgres
from tracker.models import CLICK_COPIED, Click, Conversion, Delivery, utcnow

from conftest import Api
from conversion_helpers import click_on, conversions, history, inbound_log, last_log, old_click
from postback_helpers import at_receiver, catch_all, received, sweep


@pytest.fixture
def flow(make_flow):
    return make_flow(offer_url="https://offer.example/lp?cid={clickid}", payout="3.00")


@pytest.fixture
def click_id(client, flow):
    return click_on(client, flow)


def get(client, query):
    response = client.get("/postback?" + query)
    return response.status_code, response.get_json()


# The MomentScience examples (seed 003), verbatim but for our host and a real click id.


def test_momentscience_three_events_on_one_click_are_three_conversions(client, click_id):
    examples = [
        "https://track.momentscience.com/postback?click_id=abc123xyz456&event=purchase&payout=49.99",
        "https://track.momentscience.com/postback?click_id=abc123xyz456&event=signup&payout=5.00",
        "https://track.momentscience.com/postback?click_id=abc123xyz456&event=lead&payout=2.50",
    ]
    for example in examples:
        query = example.split("?", 1)[1].replace("abc123xyz456", click_id)
        status, body = get(client, query)
        assert status == 200 and body["status"] == "ok" and body["error"] is None
    rows = conversions()
    assert [(c.click_id, c.event, c.payout, c.status, c.currency) for c in rows] == [
        (click_id, "purchase", Decimal("49.99"), "approved", "USD"),
        (click_id, "signup", Decimal("5.00"), "approved", "USD"),
        (click_id, "lead", Decimal("2.50"), "approved", "USD"),
    ]
    assert [log.result for log in inbound_log()] == ["ok", "ok", "ok"]


def test_momentscience_advanced_form_needs_event_and_payout(client, click_id):
    status, body = get(client, "measurement=1&click_id=%s&event=purchase" % click_id)
    assert (status, body) == (
        400,
        {"status": "error", "conversion_id": None, "error": "measurement=1 requires both event and payout"},
    )
    assert get(client, "measurement=1&click_id=%s&payout=5" % click_id)[0] == 400
    status, body = get(client, "measurement=1&click_id=%s&event=purchase&payout=49.99" % click_id)
    assert (status, body["status"]) == (200, "ok")
    assert len(conversions()) == 1


def test_momentscience_simple_form_with_the_macro_unreplaced(client):
    status, body = get(client, "click_id={click_id}")
    assert status == 400
    assert body["error"] == (
        "click_id is '{click_id}', an unreplaced macro: the sender did not replace "
        "{click_id} with the real value; fix the postback URL on the sender's side"
    )
    log = last_log()
    assert (log.http_status, log.accepted, log.reason, log.params) == (
        400,
        False,
        body["error"],
        {"click_id": "{click_id}"},
    )


@pytest.mark.parametrize(
    "query, macro",
    [
        ("clickid={clickid}", "{clickid}"),
        ("clickid=%7Bclickid%7D", "{clickid}"),
        ("clickid=<clickid>", "<clickid>"),
        ("subid=[clickid]", "[clickid]"),
        ("click=$clickid", "$clickid"),
        ("click_id={{clickid}}", "{{clickid}}"),
        ("click_id=%257Bclickid%257D", "{clickid}"),
    ],
)
def test_unreplaced_macros_are_the_senders_error(client, query, macro):
    status, body = get(client, query)
    assert status == 400
    assert "an unreplaced macro: the sender did not replace %s with the real value" % macro in body["error"]
    assert last_log().reason == body["error"]


def test_simple_form_records_with_the_flows_payout(client, click_id):
    status, body = get(client, "click_id=" + click_id)
    assert (status, body["status"]) == (200, "ok")
    (conversion,) = conversions()
    assert body["conversion_id"] == conversion.id
    assert (conversion.event, conversion.payout, conversion.status) == (
        "conversion",
        Decimal("3.00"),
        "approved",
    )


def test_retry_with_the_same_txid_is_one_conversion(client, click_id):
    query = "click_id=%s&event=purchase&payout=49.99&txid=ORD-1" % click_id
    first = get(client, query)
    second = get(client, query)
    assert first == (200, {"status": "ok", "conversion_id": first[1]["conversion_id"], "error": None})
    assert second == (200, {"status": "duplicate", "conversion_id": first[1]["conversion_id"], "error": None})
    assert len(conversions()) == 1
    assert [(log.http_status, log.accepted, log.result, log.conversion_id) for log in inbound_log()] == [
        (200, True, "ok", first[1]["conversion_id"]),
        (200, True, "duplicate", first[1]["conversion_id"]),
    ]
    assert inbound_log()[1].reason == "duplicate: already recorded, nothing new counted"


def test_one_conversion_per_event_without_txid_and_one_per_txid_with_it(client, click_id):
    assert get(client, "click_id=%s&event=sale" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=sale" % click_id)[1]["status"] == "duplicate"
    assert get(client, "click_id=%s&event=sale&txid=A" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=sale&txid=B" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=sale&txid=B" % click_id)[1]["status"] == "duplicate"
    assert sorted(c.txid for c in conversions()) == ["", "A", "B"]


def test_without_txid_a_new_status_or_payout_updates_the_clicks_conversion(client, click_id):
    # Networks send status=rejected by click alone (DESIGN §4.2, as Keitaro and Binom update).
    status, body = get(client, "click_id=%s&event=sale&payout=5" % click_id)
    assert (status, body["status"]) == (200, "ok")
    assert get(client, "click_id=%s&event=sale&payout=9" % click_id)[1] == {
        "status": "updated",
        "conversion_id": body["conversion_id"],
        "error": None,
    }
    assert get(client, "click_id=%s&event=sale&status=rejected" % click_id)[1]["status"] == "updated"
    assert get(client, "click_id=%s&event=sale&status=rejected" % click_id)[1]["status"] == "duplicate"
    [conversion] = conversions()
    assert (conversion.status, conversion.payout, conversion.txid) == ("declined", Decimal(9), "")
    assert history(conversion.id) == [("approved", "5.00"), ("approved", "9.00"), ("declined", "9.00")]
    assert [row.reason for row in inbound_log()][1:] == [
        "status or payout updated",
        "status or payout updated",
        "duplicate: already recorded, nothing new counted",
    ]


def test_without_txid_the_conversion_stored_under_a_txid_is_updated(client, click_id):
    assert get(client, "click_id=%s&event=sale&txid=T-1&payout=20" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=sale&status=declined" % click_id)[1]["status"] == "updated"
    [conversion] = conversions()
    assert (conversion.txid, conversion.status, conversion.payout) == ("T-1", "declined", Decimal(20))


def test_event_that_allows_duplicates_counts_every_postback(client, make_flow):
    flow = make_flow(events=[{"name": "rebill", "allow_duplicates": True}, {"name": "sale"}])
    click_id = click_on(client, flow)
    for _ in range(3):
        assert get(client, "click_id=%s&event=rebill&payout=1" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=rebill&payout=1&txid=R1" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=rebill&payout=1&txid=R1" % click_id)[1]["status"] == "duplicate"
    assert get(client, "click_id=%s&event=sale" % click_id)[1]["status"] == "ok"
    assert get(client, "click_id=%s&event=sale" % click_id)[1]["status"] == "duplicate"
    assert [c.event for c in conversions()] == ["rebill"] * 4 + ["sale"]


def test_a_conversion_keeps_a_copy_of_what_reports_need_of_its_click(client, flow):
    """Each ``click_<name>`` of a recorded conversion (``models.CLICK_COPIED``) is its click's
    ``<name>``, and so the same for a status update of it: reports read them, not the click."""
    response = client.get(
        "/r/%s?sub1=zone-7&sub5=s5&utm_source=fb&utm_content=blue&external_id=ext-1" % flow["key"],
        headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"},
    )
    click_id = response.headers["Location"].split("cid=")[1]
    assert get(client, "click_id=%s&txid=T1&status=pending" % click_id)[0] == 200
    assert get(client, "click_id=%s&txid=T1&status=approved" % click_id)[0] == 200
    with db.connection_context():
        click = Click.get_by_id(click_id)
        [conversion] = Conversion.select()
        assert {name: getattr(conversion, "click_" + name) for name in CLICK_COPIED} == {
            name: getattr(click, name) for name in CLICK_COPIED
        }
        assert (conversion.click_sub1, conversion.click_utm_content, conversion.click_os) == (
            "zone-7",
            "blue",
            "iOS",
        )
        assert conversion.click_created_at == click.created_at and conversion.status == "approved"


def test_negative_payout_is_a_debit_and_currency_is_kept(client, click_id):
    status, body = get(client, "click_id=%s&event=refund&payout=-12.30&currency=eur" % click_id)
    assert (status, body["status"]) == (200, "ok")
    (conversion,) = conversions()
    assert (conversion.payout, conversion.currency) == (Decimal("-12.30"), "EUR")


def test_lead_data_is_kept_on_the_conversion(client, click_id):
    get(
        client,
        "click_id=%s&email=ann%%40example.com&phone=%%2B1+555&first_name=Ann&secret=x&amount=2" % click_id,
    )
    (conversion,) = conversions()
    assert conversion.data == {"email": "ann@example.com", "phone": "+1 555", "first_name": "Ann"}
    assert conversion.payout == Decimal(2)


def test_post_form_and_json_bodies(client, click_id):
    response = client.post("/postback", data={"click_id": click_id, "event": "a", "payout": "1.25"})
    assert (response.status_code, response.get_json()["status"]) == (200, "ok")
    response = client.post(
        "/postback?click_id=" + click_id, json={"event": "b", "payout": 0.1, "lead": {"email": "x@y.example"}}
    )
    assert (response.status_code, response.get_json()["status"]) == (200, "ok")
    rows = conversions()
    assert [(c.event, c.payout) for c in rows] == [("a", Decimal("1.25")), ("b", Decimal("0.1"))]
    assert rows[1].data == {"lead.email": "x@y.example"}
    assert [log.method for log in inbound_log()] == ["POST", "POST"]


# Every refusal of §4.2: the documented code, a JSON reason, and a log row with that reason.

REFUSALS = [
    ("event=sale", 400, "click_id is required (or clickid, click, subid): the click id we gave you"),
    ("click_id=ABC", 400, "click_id 'ABC' is malformed: a click id is at most 64 characters of 0-9 and a-z"),
    (
        "click_id=" + "a" * 65,
        400,
        "click_id '%s' is malformed: a click id is at most 64 characters of 0-9 and a-z" % ("a" * 65),
    ),
    ("click_id=%(click)s&payout=abc", 400, "payout 'abc' is not a number"),
    ("click_id=%(click)s&payout=nan", 400, "payout 'nan' is not a finite number"),
    ("click_id=%(click)s&payout=inf", 400, "payout 'inf' is not a finite number"),
    (
        "click_id=%(click)s&payout=1e400",
        400,
        "payout '1e400' is out of range: payout must be a finite number below 10^12",
    ),
    (
        "click_id=%(click)s&payout=" + "9" * 40,
        400,
        "payout '%s' is out of range: payout must be a finite number below 10^12" % ("9" * 40),
    ),
    (
        "click_id=%(click)s&payout=1,5",
        400,
        "payout '1,5' is ambiguous: a comma may be a decimal or a thousands separator; "
        "send a plain number with a dot, such as 1.5",
    ),
    ("click_id=%(click)s&measurement=1&payout=2", 400, "measurement=1 requires both event and payout"),
    (
        "click_id=%(click)s&status=maybe",
        400,
        "status 'maybe' is not one of approved, pending, declined (aliases: approve, approved, cancel, "
        "decline, declined, hold, lead, new, pending, reject, rejected, sale, trash)",
    ),
    ("click_id=%(click)s&currency=euro", 400, "currency 'euro' is not an ISO 4217 code such as USD"),
    ("click_id=0123456789abcdefghij", 404, "click_id '0123456789abcdefghij' is not a click of ours"),
]


@pytest.mark.parametrize("query, code, reason", REFUSALS)
def test_each_refusal_is_answered_and_logged(client, click_id, query, code, reason):
    status, body = get(client, query % {"click": click_id})
    assert (status, body) == (code, {"status": "error", "conversion_id": None, "error": reason})
    assert conversions() == []
    (log,) = inbound_log()
    assert (log.endpoint, log.http_status, log.accepted, log.reason, log.result) == (
        "postback",
        code,
        False,
        reason,
        "error",
    )
    assert log.ip == "127.0.0.1" and log.method == "GET"


def test_unknown_event_when_the_flow_defines_events(client, make_flow):
    flow = make_flow(events=[{"name": "lead"}, {"name": "sale"}])
    click_id = click_on(client, flow)
    status, body = get(client, "click_id=%s&event=purchase" % click_id)
    assert (status, body["error"]) == (
        400,
        "event 'purchase' is not defined on this flow (defined: lead, sale)",
    )
    status, body = get(client, "click_id=" + click_id)
    assert (status, body["error"]) == (400, "event is required: this flow defines lead, sale")
    assert get(client, "click_id=%s&goal=sale" % click_id)[0] == 200
    assert [(log.http_status, log.flow_id) for log in inbound_log()] == [
        (400, flow["id"]),
        (400, flow["id"]),
        (200, flow["id"]),
    ]


# The attribution window, with the clock passed in.


def test_attribution_window_counts_from_the_click(app, flow, click_id):
    rules = SenderRules(attribution_days=30)
    with db.connection_context():
        created = Click.get_by_id(click_id).created_at
        late = record_conversion(
            make_inbound("postback", "GET", "192.0.2.1", [("click_id", click_id)]),
            rules,
            now=created + datetime.timedelta(days=31),
        )
        in_time = record_conversion(
            make_inbound("postback", "GET", "192.0.2.1", [("click_id", click_id)]),
            rules,
            now=created + datetime.timedelta(days=29),
        )
    assert (late.http_status, late.error) == (
        410,
        "the click is 31 days old, outside the 30-day attribution window",
    )
    assert (in_time.http_status, in_time.status) == (200, "ok")
    assert [(log.http_status, log.reason) for log in inbound_log()] == [(410, late.error), (200, "recorded")]


def test_default_window_over_http_with_old_clicks(client, flow):
    assert get(client, "click_id=" + old_click(flow, 29))[0] == 200
    status, body = get(client, "click_id=" + old_click(flow, 31))
    assert (status, body["error"]) == (410, "the click is 31 days old, outside the 30-day attribution window")
    assert last_log().http_status == 410


def test_window_from_config_and_from_the_flow(make_app):
    client = make_app(TRACKER_ATTRIBUTION_DAYS=3).test_client()
    api = Api(client)
    default = api.post("/api/v1/flows", json={"name": "d", "offer_url": "https://o.example/"})[1]
    weekly = api.post(
        "/api/v1/flows", json={"name": "w", "offer_url": "https://o.example/", "attribution_days": 7}
    )[1]
    assert get(client, "click_id=" + old_click(default, 2))[0] == 200
    assert get(client, "click_id=" + old_click(default, 4))[0] == 410
    assert get(client, "click_id=" + old_click(weekly, 6))[0] == 200
    status, body = get(client, "click_id=" + old_click(weekly, 8))
    assert (status, body["error"]) == (410, "the click is 8 days old, outside the 7-day attribution window")


# Status and payout changes under the same txid.


def test_status_changes_by_txid_are_updates_with_history(client, api, click_id):
    base = "click_id=%s&event=purchase&payout=20&txid=ORD-7" % click_id
    first = get(client, base + "&status=new")[1]
    assert first["status"] == "ok"
    assert get(client, base + "&status=approved")[1] == {
        "status": "updated",
        "conversion_id": first["conversion_id"],
        "error": None,
    }
    assert get(client, "click_id=%s&txid=ORD-7&status=trash" % click_id)[1]["status"] == "updated"
    assert get(client, "click_id=%s&txid=ORD-7&status=declined" % click_id)[1]["status"] == "duplicate"
    assert get(client, "click_id=%s&txid=ORD-7&payout=15.5" % click_id)[1]["status"] == "updated"
    (conversion,) = conversions()
    assert (conversion.event, conversion.status, conversion.payout) == (
        "purchase",
        "declined",
        Decimal("15.5"),
    )
    assert history(conversion.id) == [
        ("pending", "20.00"),
        ("approved", "20.00"),
        ("declined", "20.00"),
        ("declined", "15.50"),
    ]
    status, shown = api.get("/api/v1/conversions/%d" % conversion.id)
    assert status == 200
    assert [(h["status"], h["payout"]) for h in shown["history"]] == history(conversion.id)
    assert [h["inbound_id"] for h in shown["history"]] == [
        log.id for log in inbound_log() if log.result in ("ok", "updated")
    ]


def test_status_update_without_the_event_finds_its_conversion_by_txid(client, make_flow):
    flow = make_flow(events=[{"name": "lead"}, {"name": "sale"}])
    click_id = click_on(client, flow)
    first = get(client, "click_id=%s&event=sale&payout=30&txid=T-1&status=hold" % click_id)[1]
    assert get(client, "clickid=%s&tid=T-1&status=reject" % click_id)[1] == {
        "status": "updated",
        "conversion_id": first["conversion_id"],
        "error": None,
    }
    assert get(client, "clickid=%s&tid=T-2&status=reject" % click_id)[1]["error"] == (
        "event is required: this flow defines lead, sale"
    )
    (conversion,) = conversions()
    assert (conversion.event, conversion.status, conversion.payout) == ("sale", "declined", Decimal(30))


def test_the_same_status_without_txid_is_a_duplicate_and_another_an_update(client, click_id):
    get(client, "click_id=%s&status=pending" % click_id)
    assert get(client, "click_id=%s&status=pending" % click_id)[1]["status"] == "duplicate"
    assert conversions()[0].status == "pending"
    assert get(client, "click_id=%s&status=approved" % click_id)[1]["status"] == "updated"
    assert conversions()[0].status == "approved"


# Who may send: the secret and the allowed IPs.


def test_secret_is_required_when_configured(make_app, make_flow):
    client = make_app(TRACKER_POSTBACK_SECRET="s3cr3t").test_client()
    flow = Api(client).post(
        "/api/v1/flows", json={"name": "f", "offer_url": "https://o.example/?cid={clickid}"}
    )[1]
    click_id = click_on(client, flow)
    assert get(client, "click_id=" + click_id) == (
        403,
        {"status": "error", "conversion_id": None, "error": "the secret parameter is missing"},
    )
    assert get(client, "click_id=%s&secret=s3cr3" % click_id)[1]["error"] == "the secret is wrong"
    assert get(client, "click_id=%s&secret=s3cr3t" % click_id)[0] == 200
    logs = inbound_log()
    assert [(log.http_status, log.reason) for log in logs] == [
        (403, "the secret parameter is missing"),
        (403, "the secret is wrong"),
        (200, "recorded"),
    ]
    assert logs[1].params["secret"] == "***" and logs[2].params["secret"] == "***"
    assert conversions()[0].raw == {"click_id": click_id, "secret": "***"}


def test_allowed_ips_refuse_others(make_app):
    client = make_app(
        TRACKER_POSTBACK_ALLOWED_IPS="198.51.100.0/24, 203.0.113.9", TRACKER_TRUSTED_PROXIES=1
    ).test_client()
    flow = Api(client).post(
        "/api/v1/flows", json={"name": "f", "offer_url": "https://o.example/?cid={clickid}"}
    )[1]
    click_id = click_on(client, flow)
    refused = client.get("/postback?click_id=" + click_id)
    assert (refused.status_code, refused.get_json()["error"]) == (
        403,
        "IP address 127.0.0.1 is not allowed to send conversions (TRACKER_POSTBACK_ALLOWED_IPS)",
    )
    spoofed = client.get(
        "/postback?click_id=" + click_id, headers={"X-Forwarded-For": "198.51.100.4, 192.0.2.1"}
    )
    assert spoofed.status_code == 403
    allowed = client.get(
        "/postback?click_id=" + click_id, headers={"X-Forwarded-For": "10.0.0.1, 198.51.100.77"}
    )
    assert allowed.status_code == 200
    assert [(log.ip, log.http_status, log.accepted) for log in inbound_log()] == [
        ("127.0.0.1", 403, False),
        ("192.0.2.1", 403, False),
        ("198.51.100.77", 200, True),
    ]


def test_a_bad_allowed_ips_setting_stops_the_app(make_app):
    with pytest.raises(ValueError, match="'10.0.0.0/33' is no address or CIDR"):
        make_app(TRACKER_POSTBACK_ALLOWED_IPS="10.0.0.0/33")


# Hostile input: never a 500, always a log row.


def test_hostile_input_gets_clean_answers(client, click_id):
    cases = [
        ("click_id=%s&payout=%%00%%ff" % click_id, 400),
        ("click_id=%%00%%ff%%fe", 400),
        ("click_id=%s%%00" % click_id, 200),
        ("click_id=%s&event=%%ff%%fe&e%%00mail=%%00x" % click_id, 200),
        ("click_id=%s&big=%s" % (click_id, "b" * 200_000), 200),
        ("&".join("p%d=%d" % (i, i) for i in range(3000)) + "&event=many&click_id=" + click_id, 200),
        ("click_id=" + "z" * 100_000, 400),
        ("click_id=%s&txid=%%ff%%00" % click_id, 200),
    ]
    for query, code in cases:
        response = client.get("/postback?" + query)
        assert response.status_code == code, (query[:60], response.get_json())
    logs = inbound_log()
    assert [log.http_status for log in logs] == [code for _, code in cases]
    assert all(len(log.click_id) <= 64 for log in logs)
    assert {c.event for c in conversions()} == {"conversion", "%FF%FE", "many"}  # werkzeug keeps bad escapes


def test_oversized_and_broken_bodies_are_refused_and_logged(client, click_id):
    response = client.post(
        "/postback?click_id=" + click_id, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.get_json()["error"]) == (400, "the body is not valid JSON")
    response = client.post("/postback?click_id=" + click_id, json=[1, 2])
    assert (response.status_code, response.get_json()["error"]) == (400, "the body must be a JSON object")
    response = client.post("/postback?click_id=" + click_id, data={"big": "x" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    response = client.post(
        "/postback?click_id=" + click_id, data=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert [(log.http_status, log.click_id) for log in inbound_log()] == [
        (400, click_id),
        (400, click_id),
        (413, click_id),
        (400, click_id),
    ]
    assert conversions() == []


def test_a_failed_write_is_answered_500_logged_and_rolled_back(client, click_id):
    """A real failure inside the transaction (a trigger refuses the history row): nothing of
    the conversion is kept, the sender is told to retry, and the request is still logged."""
    with db.connection_context():
        if is_postgres():
            db.execute_sql(
                "CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk is full'; END $$ LANGUAGE plpgsql"
            )
            db.execute_sql(
                "CREATE TRIGGER refuse_change BEFORE INSERT ON conversion_change "
                "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
            )
        else:
            db.execute_sql(
                "CREATE TRIGGER refuse_change BEFORE INSERT ON conversion_change "
                "BEGIN SELECT RAISE(FAIL, 'disk is full'); END"
            )
    try:
        status, body = get(client, "click_id=%s&event=sale&payout=5" % click_id)
    finally:
        with db.connection_context():
            db.execute_sql("DROP TRIGGER refuse_change" + (" ON conversion_change" if is_postgres() else ""))
    assert (status, body["error"]) == (500, "internal error: the conversion was not recorded; retry later")
    assert conversions() == []
    (log,) = inbound_log()
    assert (log.http_status, log.accepted, log.click_id, log.conversion_id) == (500, False, click_id, None)
    assert get(client, "click_id=%s&event=sale&payout=5" % click_id)[1]["status"] == "ok"


def test_head_request_records_nothing_and_is_logged(client, click_id):
    response = client.head("/postback?click_id=%s&event=purchase&payout=1" % click_id)
    assert response.status_code == 405
    assert conversions() == []
    assert (last_log().http_status, last_log().accepted, last_log().reason) == (
        405,
        False,
        "HEAD records nothing: send the postback with GET or POST",
    )


def test_an_event_the_flow_does_not_mark_a_conversion_is_stored_as_an_event(client, make_flow):
    flow = make_flow(events=[{"name": "lead", "conversion": False}, {"name": "sale", "conversion": True}])
    click_id = click_on(client, flow)
    assert get(client, "click_id=%s&event=lead" % click_id)[0] == 200
    assert get(client, "click_id=%s&event=sale&payout=40" % click_id)[0] == 200
    with db.connection_context():
        stored = {c.event: c.is_conversion for c in Conversion.select()}
    assert stored == {"lead": False, "sale": True}


def test_every_event_counts_as_a_conversion_on_a_flow_without_events(client, click_id):
    assert get(client, "click_id=%s&event=anything" % click_id)[0] == 200
    with db.connection_context():
        assert [c.is_conversion for c in Conversion.select()] == [True]


def test_approved_declined_approved_sends_three_status_postbacks(client, make_flow, receiver, delivery_app):
    """Issue 9, point 6: the re-approval was saved as "skipped as identical", leaving the
    receiver at "declined"."""
    catch_all(receiver)
    url = at_receiver(receiver, "https://pb.example/status?c={clickid}&s={status}&p={payout}")
    flow = make_flow(postbacks=[{"trigger": "status", "url": url}])
    click_id = click_on(client, flow)
    for status in ("approved", "declined", "approved"):
        assert get(client, "click_id=%s&txid=ORD-9&payout=20&status=%s" % (click_id, status))[0] == 200
        sweep(delivery_app, now=utcnow())
    assert [r.args["s"] for r in received(receiver)] == ["approved", "declined", "approved"]
    assert [d.status for d in Delivery.select().order_by(Delivery.id)] == ["delivered"] * 3
    assert (
        get(client, "click_id=%s&txid=ORD-9&payout=20&status=approved" % click_id)[1]["status"] == "duplicate"
    )


# Issue 10: every request that reaches the app leaves a row, whatever its method.
@pytest.mark.parametrize(
    "path, method, allow",
    [
        ("/postback", "PUT", "GET, POST"),
        ("/postback", "DELETE", "GET, POST"),
        ("/postback", "PATCH", "GET, POST"),
        ("/postback", "OPTIONS", "GET, POST"),
        ("/postback", "TRACE", "GET, POST"),
        ("/postback", "HEAD", "GET, POST"),
        ("/api/v1/events", "GET", "POST"),
        ("/api/v1/events", "HEAD", "POST"),
        ("/api/v1/events", "PUT", "POST"),
        ("/api/v1/events", "DELETE", "POST"),
        ("/api/v1/events", "PATCH", "POST"),
        ("/api/v1/events", "OPTIONS", "POST"),
    ],
)
def test_any_other_method_is_405_with_a_reason_and_logged(client, click_id, path, method, allow):
    response = client.open("%s?click_id=%s&payout=1" % (path, click_id), method=method, data={"revenue": "2"})
    what = "postback" if path == "/postback" else "event"
    reason = "%s records nothing: send the %s with %s" % (method, what, allow.replace(", ", " or "))
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    if method != "HEAD":
        assert response.get_json()["error"] == reason
    assert conversions() == []
    log = last_log()
    assert (log.endpoint, log.method, log.http_status, log.accepted, log.reason) == (
        "postback" if path == "/postback" else "events",
        method,
        405,
        False,
        reason,
    )
    assert log.params["click_id"] == click_id
