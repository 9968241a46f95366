"""Outgoing requests go only where they should (DESIGN §4.8): a postback to a private, loopback,
link-local, multicast or reserved address fails with that reason, unless
TRACKER_DELIVERY_ALLOWED_NETWORKS allows it; the check is on the address connected to, so a
name that resolves elsewhere at send time (DNS rebinding) is caught too. The receivers are real
loopback servers; the rest of the suite allows loopback in tests/conftest.py."""

import socket

import pytest

from tracker.config import parse_networks
from tracker.delivery import destinations
from tracker.delivery.destinations import DestinationRefused, Policy, guarded_session, host_kind, special_kind
from tracker.delivery.queue import deliver_due
from tracker.delivery.sender import send_http
from tracker.models import Delivery, DeliveryAttempt
from tracker.postbacks.templates import Request

from conftest import Api
from postback_helpers import NOW, sweep

REFUSAL = (
    "refused: %s is a %s address; postbacks go only to public addresses unless "
    "TRACKER_DELIVERY_ALLOWED_NETWORKS allows it"
)


@pytest.mark.parametrize(
    "ip, kind",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),  # carrier-grade NAT: not global
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_special_addresses_are_named(ip, kind):
    assert special_kind(ip) == kind


def test_hosts_that_are_literals_or_localhost_are_classified_and_names_are_left_to_send_time():
    assert host_kind("localhost") == "loopback"
    assert host_kind("app.localhost.") == "loopback"
    assert host_kind("[::1]") == "loopback"
    assert host_kind("10.0.0.7") == "private"
    assert host_kind("pb.example") is None


def test_the_allow_list_lets_its_networks_through():
    policy = Policy(parse_networks("10.0.0.0/8, 127.0.0.1", destinations.SETTING))
    assert policy.refusal("10.9.9.9") is None
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("127.0.0.2") == REFUSAL % ("127.0.0.2", "loopback")
    assert policy.refusal("8.8.8.8") is None
    with pytest.raises(ValueError, match="TRACKER_DELIVERY_ALLOWED_NETWORKS: 'nope' is no address or CIDR"):
        parse_networks("10.0.0.0/8,nope", destinations.SETTING)


def test_the_app_refuses_to_start_with_a_bad_allow_list(make_app):
    with pytest.raises(ValueError, match="TRACKER_DELIVERY_ALLOWED_NETWORKS: '300.1.1.1' is no address"):
        make_app(TRACKER_DELIVERY_ALLOWED_NETWORKS="300.1.1.1")


def get(url):
    return Request("GET", url, {}, "")


def test_send_http_refuses_loopback_without_the_allow_list_and_never_dials_it(receiver):
    receiver.expect_request("/pb").respond_with_data("ok")
    with pytest.raises(DestinationRefused) as refused:
        send_http(get(receiver.url_for("/pb")), 2)
    assert str(refused.value) == REFUSAL % ("127.0.0.1", "loopback")
    assert len(receiver.log) == 0
    allowed = Policy(parse_networks("127.0.0.1/32", destinations.SETTING))
    assert send_http(get(receiver.url_for("/pb")), 2, policy=allowed).status_code == 200
    assert len(receiver.log) == 1


def test_a_name_is_checked_on_the_address_it_resolves_to_when_connecting(receiver):
    """DNS rebinding: ``localhost`` is a name; what counts is 127.0.0.1, where it connects."""
    receiver.expect_request("/pb").respond_with_data("ok")
    url = "http://localhost:%d/pb" % receiver.port
    with pytest.raises(DestinationRefused) as refused:
        send_http(get(url), 2)
    assert "localhost (127.0.0.1) is a loopback address" in str(refused.value)
    assert len(receiver.log) == 0


def test_a_rebinding_name_is_refused_when_it_turns_private(receiver, monkeypatch):
    """A name that resolved to a public address earlier (when the editor looked) and resolves
    to loopback when the worker connects: the connection's own lookup is the one checked. The
    resolver is the one thing replaced here: no test DNS server answers on this machine."""
    answers = iter(["93.184.216.34", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    assert socket.getaddrinfo("rebind.example", 80)[0][4][0] == "93.184.216.34"  # the early look
    with pytest.raises(DestinationRefused) as refused:
        guarded_session(Policy()).get("http://rebind.example:%d/pb" % receiver.port, timeout=2)
    assert str(refused.value) == REFUSAL % ("rebind.example (127.0.0.1)", "loopback")
    assert len(receiver.log) == 0


def test_a_delivery_to_loopback_fails_at_once_with_the_reason(make_app, receiver):
    app = make_app(TRACKER_DELIVERY_ALLOWED_NETWORKS="", TRACKER_RETRY_DELAYS="0.1,0.1")
    receiver.expect_request("/pb").respond_with_data("ok")
    with app.app_context():
        delivery = Delivery.create(trigger="click", url=receiver.url_for("/pb?c=1"), next_attempt_at=NOW)
        assert deliver_due(app.config, now=NOW) == 1
        delivery = Delivery.get_by_id(delivery.id)
        (attempt,) = DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery.id)
    assert (delivery.status, delivery.attempts_count) == ("failed", 1)
    assert attempt.status_code is None
    assert attempt.error == REFUSAL % ("127.0.0.1", "loopback")
    assert delivery.last_error == attempt.error
    assert len(receiver.log) == 0


def test_the_allow_list_lets_the_same_delivery_through(make_app, receiver):
    app = make_app(TRACKER_DELIVERY_ALLOWED_NETWORKS="127.0.0.0/8")
    receiver.expect_request("/pb").respond_with_data("ok")
    with app.app_context():
        delivery = Delivery.create(trigger="click", url=receiver.url_for("/pb?c=1"), next_attempt_at=NOW)
        assert sweep(app) == 1
        assert Delivery.get_by_id(delivery.id).status == "delivered"
    assert len(receiver.log) == 1


def test_send_test_to_loopback_fails_with_the_reason_and_reads_nothing(make_app, receiver):
    """The SSRF of the issue: "send test" showed an internal service's answer."""
    app = make_app(TRACKER_DELIVERY_ALLOWED_NETWORKS="")
    api = Api(app.test_client())
    receiver.expect_request("/internal").respond_with_data("internal secrets")
    status, flow = api.post("/api/v1/flows", json={"name": "F", "offer_url": "https://o.example/"})
    assert status == 201
    status, body = api.post(
        "/api/v1/postbacks/test", json={"flow_id": flow["id"], "url": receiver.url_for("/internal")}
    )
    assert status == 201, body
    with app.app_context():
        deliver_due(app.config)
        (delivery,) = Delivery.select()
    status, shown = api.get("/api/v1/deliveries/%d" % delivery.id)
    assert shown["status"] == "failed"
    assert shown["attempts"][-1]["error"] == REFUSAL % ("127.0.0.1", "loopback")
    assert shown["attempts"][-1]["response"] in ("", None)
    assert len(receiver.log) == 0
