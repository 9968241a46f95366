"""Reading what an advertiser sends: aliases, payouts, statuses, macros, senders (plain calls)."""

import ipaddress
from decimal import Decimal

import pytest

from tracker.config import parse_networks
from tracker.conversions.claims import (
    Inbound,
    Refused,
    SenderRules,
    check_sender,
    ip_allowed,
    make_inbound,
    parse_event_request,
    parse_payout,
    parse_postback,
    parse_status,
)

CLICK = "0mk1w2x3a9f0c1d2e3f4g5h6i"


def refusal(function, *args):
    with pytest.raises(Refused) as info:
        function(*args)
    return info.value.status, info.value.reason


@pytest.mark.parametrize(
    "text, amount",
    [
        ("49.99", Decimal("49.99")),
        ("5.00", Decimal("5")),
        ("-2.50", Decimal("-2.5")),
        ("+3", Decimal("3")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal("1000")),
        ("0.0000004", Decimal("0")),
        ("999999999999.99", Decimal("999999999999.99")),
    ],
)
def test_plain_numbers_are_payouts(text, amount):
    assert parse_payout(text) == amount


@pytest.mark.parametrize(
    "text, reason",
    [
        ("abc", "payout 'abc' is not a number"),
        ("12abc", "payout '12abc' is not a number"),
        ("$5", "payout '$5' is not a number"),
        ("0x10", "payout '0x10' is not a number"),
        ("１２", "payout '１２' is not a number"),
        ("nan", "payout 'nan' is not a finite number"),
        ("NaN", "payout 'NaN' is not a finite number"),
        ("inf", "payout 'inf' is not a finite number"),
        ("-Infinity", "payout '-Infinity' is not a finite number"),
        ("1e400", "payout '1e400' is out of range: payout must be a finite number below 10^12"),
        ("1" * 40, "payout '%s' is out of range: payout must be a finite number below 10^12" % ("1" * 40)),
        (
            "1,5",
            "payout '1,5' is ambiguous: a comma may be a decimal or a thousands separator; "
            "send a plain number with a dot, such as 1.5",
        ),
        (
            "1,500.00",
            "payout '1,500.00' is ambiguous: a comma may be a decimal or a thousands separator; "
            "send a plain number with a dot, such as 1.5",
        ),
        (
            "{payout}",
            "payout is '{payout}', an unreplaced macro: the sender did not replace {payout} "
            "with the real value; fix the postback URL on the sender's side",
        ),
    ],
)
def test_bad_payouts_are_refused_with_their_reason(text, reason):
    assert refusal(parse_payout, text) == (400, reason)


@pytest.mark.parametrize(
    "value, macro",
    [
        ("{clickid}", "{clickid}"),
        ("{click_id}", "{click_id}"),
        ("%7Bclickid%7D", "{clickid}"),
        ("%257Bclickid%257D", "{clickid}"),
        ("<clickid>", "<clickid>"),
        ("[clickid]", "[clickid]"),
        ("$clickid", "$clickid"),
        ("${clickid}", "${clickid}"),
        ("{{clickid}}", "{{clickid}}"),
        ("%clickid%", "%clickid%"),
        ("#clickid#", "#clickid#"),
        ("{ clickid }", "{ clickid }"),
        ("[[subid]]", "[[subid]]"),
    ],
)
def test_unreplaced_click_id_macros_name_the_macro(value, macro):
    status, reason = refusal(parse_postback, {"click_id": value})
    assert status == 400
    assert reason == (
        "click_id is %r, an unreplaced macro: the sender did not replace %s with the "
        "real value; fix the postback URL on the sender's side" % (value, macro)
    )


@pytest.mark.parametrize("value", ["A" * 10, "abc-def", "a" * 65, "abc def", "é1", "0mk1\x01"])
def test_malformed_click_ids(value):
    status, reason = refusal(parse_postback, {"click_id": value})
    assert status == 400
    assert reason == ("click_id %r is malformed: a click id is at most 64 characters of 0-9 and a-z" % value)


def test_missing_click_id():
    assert refusal(parse_postback, {"event": "sale"}) == (
        400,
        "click_id is required (or clickid, click, subid): the click id we gave you",
    )


@pytest.mark.parametrize("name", ["click_id", "clickid", "click", "subid"])
def test_click_id_aliases(name):
    assert parse_postback({name: CLICK}).click_id == CLICK


def test_every_alias_of_the_postback_contract():
    claim = parse_postback(
        {
            "clickid": CLICK,
            "goal": "sale",
            "revenue": "7.5",
            "tid": "T-9",
            "stage": "hold",
            "currency": "eur",
            "email": "a@b.example",
            "secret": "s",
            "measurement": "1",
        }
    )
    assert (claim.click_id, claim.event, claim.payout, claim.txid, claim.status, claim.currency) == (
        CLICK,
        "sale",
        Decimal("7.5"),
        "T-9",
        "pending",
        "EUR",
    )
    assert claim.data == {"email": "a@b.example"}
    for name in ("price", "amount", "sum"):
        assert parse_postback({"click": CLICK, name: "2"}).payout == Decimal(2)
    for name in ("transaction_id", "uid"):
        assert parse_postback({"subid": CLICK, name: "X"}).txid == "X"


def test_defaults_are_left_to_the_flow():
    claim = parse_postback({"click_id": CLICK})
    assert (claim.event, claim.payout, claim.currency, claim.status, claim.txid) == (
        None,
        None,
        None,
        None,
        "",
    )


@pytest.mark.parametrize(
    "given, status",
    [
        ("approved", "approved"),
        ("approve", "approved"),
        ("sale", "approved"),
        ("SALE", "approved"),
        ("pending", "pending"),
        ("new", "pending"),
        ("hold", "pending"),
        ("lead", "pending"),
        ("declined", "declined"),
        ("cancel", "declined"),
        ("reject", "declined"),
        ("rejected", "declined"),
        ("trash", "declined"),
        (None, None),
    ],
)
def test_statuses_and_their_aliases(given, status):
    assert parse_status(given) == status


def test_unknown_status_is_refused():
    status, reason = refusal(parse_status, "maybe")
    assert status == 400 and reason.startswith("status 'maybe' is not one of approved, pending, declined")


def test_measurement_requires_event_and_payout():
    expected = (400, "measurement=1 requires both event and payout")
    assert refusal(parse_postback, {"click_id": CLICK, "measurement": "1", "event": "sale"}) == expected
    assert refusal(parse_postback, {"click_id": CLICK, "measurement": "1", "payout": "2"}) == expected
    assert parse_postback({"click_id": CLICK, "measurement": "1", "event": "e", "payout": "2"}).event == "e"


def test_bad_currency_and_overlong_fields():
    assert refusal(parse_postback, {"click_id": CLICK, "currency": "dollars"}) == (
        400,
        "currency 'dollars' is not an ISO 4217 code such as USD",
    )
    assert refusal(parse_postback, {"click_id": CLICK, "event": "e" * 101}) == (
        400,
        "event is longer than 100 characters",
    )
    assert refusal(parse_postback, {"click_id": CLICK, "txid": "t" * 256}) == (
        400,
        "txid is longer than 255 characters",
    )


def test_event_api_fields():
    claim = parse_event_request(
        {
            "cid": "Key1",
            "event_id": "sale",
            "transaction_id": CLICK,
            "pid": "4",
            "revenue": "12.5",
            "cost": "0.40",
            "cost_operation": "substract",
            "sub1": "s",
            "utm_source": "fb",
            "first_name": "Ann",
        }
    )
    assert (claim.flow_key, claim.event, claim.click_id, claim.source, claim.payout) == (
        "Key1",
        "sale",
        CLICK,
        "4",
        Decimal("12.5"),
    )
    assert (claim.cost, claim.cost_operation) == (Decimal("0.4"), "subtract")
    assert claim.data == {"sub1": "s", "utm_source": "fb", "first_name": "Ann"}


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"event_id": "e", "transaction_id": CLICK}, "cid is required: the campaign (flow) key"),
        ({"cid": "k", "transaction_id": CLICK}, "event_id is required: an event defined on the flow"),
        ({"cid": "k", "event_id": "e"}, "transaction_id is required: the click id of the lead"),
        (
            {"cid": "k", "event_id": "e", "transaction_id": CLICK, "pid": "x" * 201},
            "pid is longer than 200 characters: it is a traffic source's id or name",
        ),
        (
            {"cid": "k", "event_id": "e", "transaction_id": CLICK, "revenue": "ten"},
            "revenue 'ten' is not a number",
        ),
        (
            {"cid": "k", "event_id": "e", "transaction_id": CLICK, "cost": "1", "cost_operation": "double"},
            "cost_operation 'double' is not one of add, subtract, override",
        ),
        (
            {"cid": "k", "event_id": "e", "transaction_id": CLICK, "cost": "-1"},
            "cost '-1' is negative: use cost_operation=subtract",
        ),
        (
            {"cid": "k", "event_id": "e", "transaction_id": CLICK, "cost_operation": "add"},
            "cost_operation is given without cost",
        ),
    ],
)
def test_event_api_refusals(params, reason):
    assert refusal(parse_event_request, params) == (400, reason)


def test_networks_and_allowed_ips():
    networks = parse_networks(" 203.0.113.7, 10.0.0.0/8 ,2001:db8::/32", "TRACKER_POSTBACK_ALLOWED_IPS")
    assert networks == (
        ipaddress.ip_network("203.0.113.7/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert ip_allowed("10.20.30.40", networks) and ip_allowed("::ffff:203.0.113.7", networks)
    assert ip_allowed("2001:db8::1", networks)
    assert not ip_allowed("203.0.113.8", networks)
    assert not ip_allowed("not an ip", networks)
    assert parse_networks("", "TRACKER_POSTBACK_ALLOWED_IPS") == () and parse_networks(
        ["192.0.2.0/24"], "TRACKER_POSTBACK_ALLOWED_IPS"
    ) == (ipaddress.ip_network("192.0.2.0/24"),)
    with pytest.raises(ValueError, match="'10.0.0.300' is no address or CIDR"):
        parse_networks("10.0.0.300", "TRACKER_POSTBACK_ALLOWED_IPS")


def test_sender_checks():
    rules = SenderRules(
        secret="s3cret", allowed_networks=parse_networks("192.0.2.0/24", "TRACKER_POSTBACK_ALLOWED_IPS")
    )
    assert check_sender(Inbound("postback", ip="192.0.2.9", params={"secret": "s3cret"}), rules) is None
    assert refusal(
        check_sender, Inbound("postback", ip="198.51.100.1", params={"secret": "s3cret"}), rules
    ) == (403, "IP address 198.51.100.1 is not allowed to send conversions (TRACKER_POSTBACK_ALLOWED_IPS)")
    assert refusal(check_sender, Inbound("postback", ip="192.0.2.9", params={}), rules) == (
        403,
        "the secret parameter is missing",
    )
    assert refusal(check_sender, Inbound("postback", ip="192.0.2.9", params={"secret": "s3cre"}), rules) == (
        403,
        "the secret is wrong",
    )


def test_contract_fields_survive_a_flood_of_parameters():
    pairs = [("p%d" % i, "v") for i in range(3000)] + [("click_id", CLICK), ("payout", "\x00 1.5")]
    inbound = make_inbound("postback", "GET", "203.0.113.1", pairs)
    assert inbound.params["click_id"] == CLICK
    assert inbound.params["payout"] == " 1.5"
    assert len(inbound.params) == 200
    assert parse_postback(inbound.params).payout == Decimal("1.5")
