"""Where a postback may point, checked on save (DESIGN §4.8): a token in the URL's host is
refused (a click could choose where the postback goes), and a host that is a private or
loopback address gets a warning (the worker refuses it unless TRACKER_DELIVERY_ALLOWED_NETWORKS
allows it); both through the API and the dashboard's editor."""

import pytest

from tracker.config import parse_networks
from tracker.models import Postback, TrafficSource
from tracker.postbacks.templates import check, host_problem

from conftest import Api
from dashboard_helpers import sign_in
from factories import add_flow

HOST_TOKEN = (
    "the host of the URL holds the token %s: a token may not choose where the postback goes "
    "(write the host and port out; tokens belong in the path, query or body)"
)


@pytest.mark.parametrize(
    "url, token",
    [
        ("http://{sub2}:8080/pb?c={clickid}", "{sub2}"),  # the issue's
        ("http://<sub2>/pb", "<sub2>"),
        ("https://pb.{sub1}.example/x", "{sub1}"),
        ("https://pb.example:{var1}/x", "{var1}"),
        ("https://user:pw@{ip}/x", "{ip}"),
        ("https://{req.qs.host}/x|POST|a=1", "{req.qs.host}"),
    ],
)
def test_a_token_in_the_host_is_refused(url, token):
    assert host_problem(url) == HOST_TOKEN % token
    assert check(url) == ([HOST_TOKEN % token], [])


def test_a_url_that_is_only_a_token_is_refused():
    assert check("{postback_url}")[0] == [
        "the URL must start with http:// or https:// and a host, not with the token {postback_url}: "
        "a token may not choose where the postback goes"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://pb.example/{sub2}?h={sub2}",
        "https://{clickid}@pb.example/x",  # user info is not the host
        'https://pb.example/x|JSON|{"host": "{sub2}"}',
    ],
)
def test_tokens_outside_the_host_are_fine(url):
    assert host_problem(url) is None
    assert check(url)[0] == []


@pytest.mark.parametrize(
    "url, warning",
    [
        ("http://127.0.0.1:9000/pb", "127.0.0.1 is a loopback address"),
        ("http://localhost/pb", "localhost is a loopback address"),
        ("http://[::1]:8080/pb", "[::1] is a loopback address"),
        ("http://10.0.0.7/pb", "10.0.0.7 is a private address"),
        ("http://user:pw@10.0.0.7:8080/pb", "10.0.0.7 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ],
)
def test_a_private_or_loopback_host_is_warned_about(url, warning):
    assert check(
        url,
        allowed=parse_networks(
            "10.0.0.0/8,127.0.0.0/8,::1,169.254.0.0/16", "TRACKER_DELIVERY_ALLOWED_NETWORKS"
        ),
    ) == ([], [])
    errors, warnings = check(url, allowed=())
    assert errors == []
    assert (
        warning + ": the worker refuses to send there unless TRACKER_DELIVERY_ALLOWED_NETWORKS allows it"
        in warnings
    )


def test_the_api_refuses_a_host_token_on_save_with_422(api):
    status, body = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/",
            "postbacks": [{"trigger": "conversion", "url": "http://{sub2}:8080/pb?c={clickid}"}],
        },
    )
    assert status == 422
    assert body["error"] == "postback url: " + HOST_TOKEN % "{sub2}"
    status, body = api.post("/api/v1/traffic-sources", json={"name": "S", "postback_url": "https://{sub1}/x"})
    assert status == 422
    assert body["error"] == "postback_url: " + HOST_TOKEN % "{sub1}"
    assert (Postback.select().count(), TrafficSource.select().count()) == (0, 0)


def test_the_api_warns_about_a_loopback_postback_on_save(make_app):
    api = Api(make_app(TRACKER_DELIVERY_ALLOWED_NETWORKS="").test_client())
    status, flow = api.post(
        "/api/v1/flows",
        json={
            "name": "F",
            "offer_url": "https://o.example/",
            "postbacks": [{"trigger": "conversion", "url": "http://127.0.0.1:6379/pb?c={clickid}"}],
        },
    )
    assert status == 201
    assert flow["postbacks"][0]["warnings"] == [
        "127.0.0.1 is a loopback address: the worker refuses to send there unless "
        "TRACKER_DELIVERY_ALLOWED_NETWORKS allows it"
    ]


def test_the_editor_refuses_a_host_token_next_to_the_field(client):
    sign_in(client)
    flow = add_flow()
    response = client.post(
        "/flows/%d/postbacks/new" % flow.id,
        data={"trigger": "conversion", "url": "http://{sub2}:8080/pb", "payout_type": "all"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert (
        "the host of the URL holds the token {sub2}: a token may not choose where the postback goes" in page
    )
    assert Postback.select().count() == 0
