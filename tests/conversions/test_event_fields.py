"""What the event API and the sender rules must never get wrong, each a loss a user would see:
a shared secret kept as lead data, a currency dropped, a zero cost refused, a bad currency
summed, an allowed network that stops the app."""

import ipaddress
from decimal import Decimal

import pytest

from tracker.config import parse_networks
from tracker.conversions.claims import Refused, parse_event_request, parse_postback

CLICK = "0mk1w2x3a9f0c1d2e3f4g5h6i"
EVENT = {"cid": "Key1", "event_id": "sale", "transaction_id": CLICK}


def test_the_shared_secret_is_never_kept_as_lead_data():
    claim = parse_event_request(dict(EVENT, secret="s3cret", email="a@b.example"))
    assert claim.data == {"email": "a@b.example"}
    assert parse_postback({"click_id": CLICK, "secret": "s3cret", "email": "a@b.example"}).data == {
        "email": "a@b.example"
    }


def test_the_event_api_takes_the_currency_it_is_sent():
    assert parse_event_request(dict(EVENT, revenue="9.5", currency="eur")).currency == "EUR"
    assert parse_event_request(dict(EVENT, revenue="9.5")).currency is None  # the flow's


def test_a_cost_of_zero_is_a_cost():
    claim = parse_event_request(dict(EVENT, cost="0", cost_operation="override"))
    assert (claim.cost, claim.cost_operation) == (Decimal("0"), "override")


@pytest.mark.parametrize("currency", ["US1", "U$D", "USDX", "US", "€UR"])
def test_a_currency_that_is_no_iso_code_is_refused(currency):
    for parse, params in ((parse_postback, {"click_id": CLICK}), (parse_event_request, dict(EVENT))):
        with pytest.raises(Refused) as info:
            parse(dict(params, currency=currency))
        assert info.value.status == 400 and "is not an ISO 4217 code" in info.value.reason


def test_an_allowed_network_written_with_host_bits_is_its_network():
    assert parse_networks("10.1.2.3/8, 2001:db8::1/32", "TRACKER_POSTBACK_ALLOWED_IPS") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
