"""What a postback adds to its template (DESIGN §4.4): ``headers`` (tokens filled as they are,
secret-looking values masked on screen, in the API and in logs), ``success_body`` (a 2xx whose
body does not match fails at once, the body as the reason) and ``retry_4xx``; sent to a real
receiver on loopback. Issue 9, point 1: templates could not set headers, and a 200 carrying an
error code was logged as delivered."""

import logging

from tracker.models import Delivery

from dashboard_helpers import sign_in
from postback_helpers import (
    at_receiver,
    catch_all,
    convert,
    make_click,
    received,
    statuses,
    sweep,
)


def postback(receiver, **fields):
    return dict(
        {"trigger": "conversion", "url": at_receiver(receiver, "https://pb.example/c?c={clickid}")}, **fields
    )


def test_headers_are_templates_filled_without_percent_encoding(delivery_app, receiver, make_flow):
    catch_all(receiver)
    headers = {"Authorization": "Bearer {var1}", "X-Click": "{clickid}", "X-Lead": "{email|trim}"}
    flow = make_flow(postbacks=[postback(receiver, headers=headers)])
    click = make_click(flow["id"])
    convert(click)
    assert sweep(delivery_app) == 1
    [request] = received(receiver)
    assert request.headers["Authorization"] == "Bearer zone 42"
    assert request.headers["X-Click"] == click.click_id
    assert request.headers["X-Lead"] == "John_Smith@gmail.com"
    assert Delivery.get().headers == {
        "Authorization": "Bearer zone 42",
        "X-Click": click.click_id,
        "X-Lead": "John_Smith@gmail.com",
    }


def test_a_header_value_cannot_smuggle_a_line_break(delivery_app, receiver, make_flow):
    catch_all(receiver)
    flow = make_flow(postbacks=[postback(receiver, headers={"X-Sub": "{req.qs.evil}"})])
    convert(make_click(flow["id"], params={"evil": "a\r\nX-Injected: 1"}))
    sweep(delivery_app)
    [request] = received(receiver)
    assert request.headers["X-Sub"] == "a X-Injected: 1"
    assert "X-Injected" not in request.headers


def test_bad_headers_and_success_bodies_are_refused_on_save(api):
    def save(**fields):
        body = {
            "name": "f",
            "offer_url": "https://o.example/",
            "postbacks": [dict(trigger="conversion", url="https://pb.example/", **fields)],
        }
        return api.post("/api/v1/flows", json=body)

    assert save(headers={"Bad Name": "x"}) == (
        422,
        {"error": "headers: 'Bad Name' is not a valid HTTP header name"},
    )
    assert save(headers={"X-A": "a\nb"}) == (
        422,
        {"error": "headers: the value of X-A must be one line of at most 4000 characters"},
    )
    assert save(headers=["X-A: b"])[0] == 422
    assert save(headers={"X-A": "{email|md5}"}) == (
        422,
        {
            "error": "postback url: {email|md5}: unknown filter 'md5' "
            "(known: sha256, digits, e164, lower, upper, trim, raw, required)"
        },
    )
    assert save(success_body="(unclosed")[1]["error"].startswith(
        "success_body is not a valid regular expression"
    )
    assert save(headers={"X-A": "***"}) == (
        422,
        {"error": "headers: X-A is *** (masked): send its real value"},
    )
    status, flow = save(headers={"Api-Key": "k-1", "X-Plain": "p"}, success_body="ok", retry_4xx=True)
    assert status == 201
    assert {
        k: flow["postbacks"][0][k] for k in ("headers", "success_body", "retry_4xx", "test_event_code")
    } == {
        "headers": {"Api-Key": "***", "X-Plain": "p"},
        "success_body": "ok",
        "retry_4xx": True,
        "test_event_code": "",
    }


def test_a_2xx_without_the_success_body_fails_at_once_with_the_body_as_reason(
    delivery_app, receiver, make_flow
):
    catch_all(receiver, body='{"status":"INVALID","reason":"Unhashed PII"}')
    flow = make_flow(postbacks=[postback(receiver, success_body='"status"\\s*:\\s*"VALID"')])
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    delivery = Delivery.get()
    assert (delivery.status, delivery.attempts_count) == ("failed", 1)
    assert delivery.last_error == (
        'HTTP 200, but the answer does not match success_body "status"\\s*:\\s*"VALID": '
        '{"status":"INVALID","reason":"Unhashed PII"}'
    )
    [attempt] = delivery.attempts
    assert (attempt.status_code, attempt.error) == (200, delivery.last_error)


def test_a_2xx_with_the_success_body_is_delivered(delivery_app, receiver, make_flow):
    catch_all(receiver, body='{"status":"VALID","reason":"Events have been processed successfully."}')
    flow = make_flow(postbacks=[postback(receiver, success_body='"status"\\s*:\\s*"VALID"')])
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 1
    assert statuses() == ["delivered"]


def test_retry_4xx_retries_what_would_fail_at_once(delivery_app, receiver, make_flow):
    catch_all(receiver, status=400)
    flow = make_flow(postbacks=[postback(receiver, retry_4xx=True), postback(receiver)])
    convert(make_click(flow["id"]))
    assert sweep(delivery_app) == 2
    assert statuses() == ["retrying", "failed"]


def test_secret_headers_are_masked_in_the_api_on_screen_and_in_the_log(
    delivery_app, receiver, make_flow, api, client, caplog
):
    catch_all(receiver, status=500)
    headers = {
        "Access-Token": "tt-secret-1",
        "X-Api-Key": "k-secret-2",
        "Authorization": "Bearer b-secret-3",
        "X-Plain": "p",
    }
    flow = make_flow(postbacks=[postback(receiver, headers=headers)])
    convert(make_click(flow["id"]))
    with caplog.at_level(logging.INFO, logger="tracker.delivery.queue"):
        sweep(delivery_app)
    masked = {"Access-Token": "***", "X-Api-Key": "***", "Authorization": "***", "X-Plain": "p"}
    assert "X-Plain': 'p'" in caplog.text and "'Access-Token': '***'" in caplog.text
    status, listing = api.get("/api/v1/deliveries")
    assert listing["items"][0]["headers"] == masked
    status, preview = api.post(
        "/api/v1/postbacks/preview", json={"url": "https://pb.example/", "headers": headers}
    )
    assert preview["headers"] == masked
    sign_in(client)
    page = client.get("/logs/deliveries/%d" % Delivery.get().id).get_data(as_text=True)
    assert "Access-Token: ***" in page and "X-Plain: p" in page
    for secret in ("tt-secret-1", "k-secret-2", "b-secret-3"):
        assert secret not in caplog.text and secret not in str(listing) and secret not in page
