"""The postback editor through the test client: the token reference, presets (a form post
and the script's JSON route), the live preview, and "send test" to a loopback receiver."""

import datetime
import hashlib
import html

import pytest

from tracker.delivery.queue import deliver_due
from tracker.models import Delivery, Postback, utcnow
from tracker.postbacks import presets
from tracker.postbacks import templates as postback_templates
from tracker.tokens import FAMILIES, FILTERS, TOKENS

from dashboard_helpers import csrf_token, log_in, sign_in
from factories import HOSTILE, add_click, add_conversion, add_flow
from postback_helpers import catch_all, received

FB_FIELDS = {"pixel_id": "123456789012345", "access_token": "EAAG-secret-1"}
GET_TEMPLATE = "https://pb.example/c?cid={clickid}&p={payout}&e={email|sha256}&s={sub1}"


@pytest.fixture
def user(client):
    sign_in(client)
    return client


def editor(client, flow, **form):
    """POST the new-postback editor form (without the script: what a button press sends)."""
    return client.post("/flows/%d/postbacks/new" % flow.id, data=form)


def textarea(page):
    """The URL template as the editor shows it, unescaped."""
    start = page.index('id="postback-url"')
    start = page.index(">", start) + 1
    return html.unescape(page[start : page.index("</textarea>", start)])


def selected_trigger(page):
    select = page[page.index('id="postback-trigger"') :]
    select = select[: select.index("</select>")]
    return [t for t in ("click", "conversion", "status", "payout") if 'value="%s" selected' % t in select]


def test_token_reference_lists_every_token_alias_trigger_family_and_filter(user):
    flow = add_flow()
    page = user.get("/flows/%d/postbacks/new" % flow.id).get_data(as_text=True)
    reference = page[page.index('id="token-reference"') :]
    for token in TOKENS:
        at = reference.index('data-token="{%s}"' % token.name)
        row = reference[reference.rindex("<tr", 0, at) : reference.index("</tr>", at)]
        assert 'data-triggers="%s"' % " ".join(token.triggers) in row, token.name
        for alias in token.aliases:
            assert 'data-token="{%s}">%s</code>' % (alias, alias) in row, alias
        expected = "all" if len(token.triggers) == 4 else ", ".join(token.triggers)
        assert '<td class="triggers">%s</td>' % expected in row, token.name
    assert '<td class="triggers">conversion, status, payout</td>' in reference  # {payout}, {email}…
    for prefix in FAMILIES:
        assert 'data-token="{%sNAME}"' % prefix in reference
    for name in FILTERS:
        assert 'data-token="|%s">|%s</code>' % (name, name) in reference
    assert "trim, lowercase, then hex SHA-256" in reference


def test_preset_button_without_script_fills_trigger_and_template_and_saves_nothing(user):
    flow = add_flow()
    response = editor(
        user,
        flow,
        action="preset",
        name="FB revenue",
        trigger="conversion",
        url="",
        preset="facebook_revenue",
        **{"preset-" + k: v for k, v in FB_FIELDS.items()},
    )
    page = response.get_data(as_text=True)
    expected = presets.build("facebook_revenue", **FB_FIELDS)
    assert response.status_code == 200
    assert textarea(page) == expected["url"] and expected["url"].startswith(
        "https://graph.facebook.com/v21.0/123456789012345/events?access_token=EAAG-secret-1|JSON|"
    )
    assert selected_trigger(page) == ["status"]  # revenue presets: approved, positive payouts only
    assert 'name="statuses" value="approved" checked' in page
    assert '<option value="payout" selected>' in page
    assert 'value="FB revenue"' in page and 'value="facebook_revenue" selected' in page
    assert "Preset filled in below" in page
    assert (
        "<b>POST</b> https://graph.facebook.com/v21.0/123456789012345/events?access_token=EAAG-secret-1"
        in page
    )
    assert Postback.select().count() == 0


def test_preset_button_with_a_missing_input_keeps_the_form_and_says_which(user):
    flow = add_flow()
    response = editor(
        user, flow, action="preset", trigger="click", url="https://mine.example/", preset="tiktok_conversion"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Preset not applied: Pixel code (pixel_code) is required" in page
    assert textarea(page) == "https://mine.example/" and selected_trigger(page) == ["click"]
    response = editor(user, flow, action="preset", url="", preset="")
    assert "Preset not applied: choose a preset" in response.get_data(as_text=True)
    response = editor(
        user,
        flow,
        action="preset",
        url="",
        preset="facebook_conversion",
        **{"preset-pixel_id": '1"><script>alert(1)</script>', "preset-access_token": "t"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "pixel_id may hold only letters, digits and . _ ~ -" in page
    assert HOSTILE not in page and 'value="1&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_preset_route_answers_the_presets_template_or_the_reason(user):
    flow = add_flow()
    path = "/flows/%d/postbacks/preset" % flow.id
    response = user.post(path, json={"preset": "snapchat_conversion", "fields": FB_FIELDS})
    assert (response.status_code, response.get_json()) == (
        200,
        dict(presets.build("snapchat_conversion", **FB_FIELDS), headers_text=""),
    )
    response = user.post(path, json={"preset": "generic_json", "fields": {"url": "ftp://x"}})
    assert (response.status_code, response.get_json()) == (
        422,
        {"error": "url must be an http:// or https:// URL without spaces or '|'"},
    )
    response = user.post(path, json={"preset": "myspace", "fields": {}})
    assert (response.status_code, response.get_json()) == (404, {"error": "preset 'myspace' not found"})
    response = user.post(path, json={"preset": "generic_get", "fields": ["url"]})
    assert (response.status_code, response.get_json()) == (400, {"error": "fields must be an object"})
    response = user.post(path, json=[1])
    assert (response.status_code, response.get_json()) == (400, {"error": "the body must be a JSON object"})
    assert user.post("/flows/999/postbacks/preset", json={}).status_code == 404


def preview(client, flow, url, trigger="conversion"):
    response = client.post("/flows/%d/postbacks/preview" % flow.id, json={"url": url, "trigger": trigger})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_preview_uses_sample_values_until_the_flow_has_a_click(user):
    flow = add_flow("Preview flow")
    body = preview(user, flow, GET_TEMPLATE)
    sample = postback_templates.sample_conversion(postback_templates.sample_click(flow))
    assert body["request"] == {
        "method": "GET",
        "headers": {},
        "body": "",
        "url": (
            "https://pb.example/c?cid=0lvn2p8q0a1b2c3d4e5f6g7h8&p=12.50&e=%s&s=sub1"
            % hashlib.sha256(sample.data["email"].encode()).hexdigest()
        ),
    }
    assert (body["error"], body["warnings"]) == (None, [])
    assert body["subject"] == "sample values (this flow has no clicks yet)"
    assert "<b>GET</b> https://pb.example/c?cid=0lvn2p8q0a1b2c3d4e5f6g7h8&amp;p=12.50" in body["html"]


def test_preview_uses_the_latest_click_then_the_latest_conversion(user):
    flow, other = add_flow(), add_flow("Other")
    add_click(flow, "2024-05-01 10:00", click_id="older0000000000", sub1="old")
    add_click(flow, "2024-05-02 10:00", click_id="latest000000000", sub1=HOSTILE)
    add_click(other, "2024-05-03 10:00", click_id="otherflow000000", sub1="no")
    body = preview(user, flow, GET_TEMPLATE)
    assert body["request"]["url"].startswith("https://pb.example/c?cid=latest000000000&p=12.50&e=")
    assert body["request"]["url"].endswith("&s=%3Cscript%3Ealert%281%29%3C%2Fscript%3E")
    assert body["subject"] == "this flow's latest click latest000000000, with sample conversion values"
    older = add_conversion(
        add_click(flow, "2024-04-30 10:00", click_id="converted000000"),
        "7.25",
        data={"email": " Lead@Example.com "},
        when="2024-05-01 11:00",
    )
    body = preview(user, flow, GET_TEMPLATE)
    assert body["request"]["url"] == "https://pb.example/c?cid=converted000000&p=7.25&e=%s&s=" % (
        hashlib.sha256(b"lead@example.com").hexdigest()
    )
    assert (
        body["subject"]
        == "this flow's latest conversion (%d, conversion) and its click converted000000" % older.id
    )


def test_preview_shows_a_json_post_with_its_body_and_escapes_it(user):
    flow = add_flow()
    add_click(flow, "2024-05-02 10:00", click_id="jsonclick000000", sub1=HOSTILE)
    body = preview(user, flow, 'https://pb.example/e|JSON|{"sub":"{sub1}","payout":{payout}}')
    assert body["request"] == {
        "method": "POST",
        "url": "https://pb.example/e",
        "headers": {"Content-Type": "application/json"},
        "body": '{"sub":"<script>alert(1)</script>","payout":12.50}',
    }
    assert HOSTILE not in body["html"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in body["html"]
    assert "&#34;payout&#34;: 12.5" in body["html"]  # the indented copy of the body


def test_preview_shows_errors_and_warnings_inline(user):
    flow = add_flow()
    body = preview(user, flow, "https://pb.example/?e={email|sha257}")
    assert (
        body["error"] == "{email|sha257}: unknown filter 'sha257' "
        "(known: sha256, digits, e164, lower, upper, trim, raw, required)"
    )
    assert body["request"] is None and 'id="preview-error"' in body["html"]
    body = preview(user, flow, 'https://pb.example/|JSON|{"a":{sub1}')
    assert body["error"].startswith("the JSON body is not valid JSON: ")
    assert body["request"] == {
        "method": "POST",
        "url": "https://pb.example/",
        "headers": {"Content-Type": "application/json"},
        "body": '{"a":"sub1"',
    }  # what was rendered, to see why
    body = preview(
        user, flow, "https://pb.example/?a={adid}&p={payout}&l={req.sessionData.x}", trigger="click"
    )
    assert body["error"] is None
    assert body["warnings"] == [
        "{adid} is not a built-in token: it is read from the click's query parameter or the lead data "
        "named 'adid' (empty when absent)",
        "{payout} is empty on the click trigger: only conversion, status and payout postbacks know it",
        "{req.sessionData.x} is empty on the click trigger: only conversion, status and payout "
        "postbacks know it",
    ]
    assert body["html"].count("<li>") == 3
    empty = preview(user, flow, "   ")
    assert (empty["request"], empty["error"], empty["warnings"]) == (None, None, [])
    assert "Type a URL template, or pick a preset" in empty["html"]
    assert preview(user, flow, "x" * 20001)["error"] == (
        "the template is longer than 20000 characters or holds a NUL character"
    )
    assert preview(user, flow, ["https://pb.example/"])["error"] == "the template (url) must be a string"
    response = user.post("/flows/%d/postbacks/preview" % flow.id, data={"url": "https://pb.example/"})
    assert (response.status_code, response.mimetype) == (400, "text/html")  # a form post is no JSON call


def test_the_editor_renders_the_preview_of_a_saved_postback(user):
    flow = add_flow()
    postback = Postback.create(
        flow=flow,
        trigger="conversion",
        name=HOSTILE,
        url="https://pb.example/?x=</textarea><img src=x onerror=alert(1)>",
    )
    page = user.get("/flows/%d/postbacks/%d/edit" % (flow.id, postback.id)).get_data(as_text=True)
    assert HOSTILE not in page and "<img src=x" not in page
    assert page.count("</textarea>") == 2  # the template and the headers
    assert textarea(page) == postback.url
    assert "<b>GET</b> https://pb.example/?x=%3C/textarea%3E%3Cimg%20src=x%20onerror=alert(1)%3E" in page


def test_send_test_queues_a_real_delivery_marked_test_and_the_worker_sends_it(app, user, receiver):
    catch_all(receiver, body="thanks")
    flow = add_flow()
    click = add_click(flow, "2024-05-02 10:00", click_id="testclick000000")
    template = receiver.url_for("/t") + '|JSON|{"cid":"{clickid}","payout":{payout}}'
    response = user.post("/flows/%d/postbacks/test" % flow.id, json={"url": template})
    assert response.status_code == 201
    answer = response.get_json()
    delivery = Delivery.get_by_id(answer["id"])
    assert answer["link"] == "/logs/deliveries/%d" % delivery.id and answer["status"] == "queued"
    assert 'href="/logs/deliveries/%d"' % delivery.id in answer["html"]
    assert (delivery.test, delivery.trigger, delivery.flow_id, delivery.click_id, delivery.conversion_id) == (
        True,
        "test",
        flow.id,
        click.click_id,
        None,
    )
    assert (delivery.method, delivery.body) == ("POST", '{"cid":"testclick000000","payout":12.50}')
    page = user.get(answer["link"]).get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="1">' in page  # queued: the page follows the worker

    assert deliver_due(now=utcnow() + datetime.timedelta(seconds=1), config=app.config) == 1
    [request] = received(receiver)
    assert (request.path, request.get_json()) == ("/t", {"cid": "testclick000000", "payout": 12.5})
    page = user.get(answer["link"]).get_data(as_text=True)
    assert "badge delivered" in page and "thanks" in page and 'http-equiv="refresh"' not in page
    assert Postback.select().count() == 0


def test_send_test_uses_the_latest_conversions_values_without_linking_it(user):
    flow = add_flow()
    conversion = add_conversion(
        add_click(flow, "2024-05-02 10:00", click_id="convclick000000"), "3.75", data={"email": "a@b.example"}
    )
    response = user.post(
        "/flows/%d/postbacks/test" % flow.id,
        json={"url": "https://x.example/?c={clickid}&p={payout}&e={email}&t={conversion.id}"},
    )
    delivery = Delivery.get_by_id(response.get_json()["id"])
    assert delivery.url == "https://x.example/?c=convclick000000&p=3.75&e=a%%40b.example&t=%d" % conversion.id
    assert (delivery.click_id, delivery.conversion_id, delivery.test) == ("convclick000000", None, True)


def test_send_test_refuses_a_broken_template_and_queues_nothing(user):
    flow = add_flow()
    response = user.post("/flows/%d/postbacks/test" % flow.id, json={"url": "mailto:me@example.com"})
    assert (response.status_code, response.get_json()) == (
        422,
        {"error": "the URL must start with http:// or https:// and name a host: 'mailto:me@example.com'"},
    )
    response = user.post("/flows/%d/postbacks/test" % flow.id, json={"url": ""})
    assert (response.status_code, response.get_json()) == (422, {"error": "the template is empty"})
    response = editor(
        user, flow, action="test", trigger="conversion", url="https://x.example/?e={email|nope}"
    )
    assert response.status_code == 422
    assert "Test not sent: {email|nope}: unknown filter" in response.get_data(as_text=True)
    assert Delivery.select().count() == 0


def test_send_test_button_without_script_links_the_delivery_and_keeps_the_form(user):
    flow = add_flow()
    response = editor(
        user, flow, action="test", trigger="click", name="kept", url="https://x.example/?c={clickid}"
    )
    page = response.get_data(as_text=True)
    delivery = Delivery.get()
    assert response.status_code == 200 and delivery.test is True
    assert 'Test delivery <a href="/logs/deliveries/%d">#%d</a>' % (delivery.id, delivery.id) in page
    assert textarea(page) == "https://x.example/?c={clickid}" and 'value="kept"' in page
    assert delivery.url == "https://x.example/?c=0lvn2p8q0a1b2c3d4e5f6g7h8"  # the sample click


def test_saving_still_validates_and_enter_saves(user):
    flow = add_flow()
    response = editor(
        user, flow, trigger="conversion", url='https://x.example/|JSON|{"a":{sub1}', payout_type="all"
    )
    assert response.status_code == 422
    assert "postback url: the JSON body is not valid JSON" in response.get_data(as_text=True)
    page = user.get("/flows/%d/postbacks/new" % flow.id).get_data(as_text=True)
    first_button = page[page.index('id="postback-form"') :]
    first_button = first_button[first_button.index("<button") : first_button.index("</button>")]
    assert 'value="save"' in first_button  # Enter in a field presses the first button: Save
    response = editor(
        user,
        flow,
        action="save",
        trigger="conversion",
        url="https://x.example/?c={clickid}",
        payout_type="all",
        enabled="1",
    )
    assert response.status_code == 302 and Postback.get().url == "https://x.example/?c={clickid}"


@pytest.fixture
def csrf_app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


def test_json_routes_need_the_login_and_the_csrf_header(csrf_app):
    client = csrf_app.test_client()
    flow = add_flow()
    path = "/flows/%d/postbacks/preview" % flow.id
    response = client.post(path, json={"url": "https://x.example/"})
    assert response.status_code == 400 and response.get_json()["error"].startswith(
        "This form's security token is missing or stale"
    )
    log_in(client)
    token = csrf_token(client.get("/flows/%d/postbacks/new" % flow.id).data)
    for route in ("preview", "preset", "test"):
        response = client.post(
            "/flows/%d/postbacks/%s" % (flow.id, route), json={"url": "https://x.example/"}
        )
        assert response.status_code == 400 and "security token" in response.get_json()["error"], route
    response = client.post(path, json={"url": "https://x.example/"}, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 400
    response = client.post(path, json={"url": "https://x.example/"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["request"]["url"] == "https://x.example/"
    assert Delivery.select().count() == 0


def test_anonymous_json_calls_get_a_json_401(client):
    flow = add_flow()
    response = client.post("/flows/%d/postbacks/preview" % flow.id, json={"url": "https://x.example/"})
    assert (response.status_code, response.get_json()) == (
        401,
        {"error": "You are logged out. Reload the page and log in again."},
    )
    response = client.post("/flows/%d/postbacks/preview" % flow.id, data={"url": "https://x.example/"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_tiktok_preset_saved_from_the_editor_keeps_its_header_answer_and_test_code(user, app, receiver):
    flow = add_flow()
    fields = {"pixel_code": "C4PIXEL77", "access_token": "tt-secret-7", "test_event_code": "TEST77"}
    response = user.post(
        "/flows/%d/postbacks/preset" % flow.id, json={"preset": "tiktok_conversion", "fields": fields}
    )
    built = response.get_json()
    assert built["headers_text"] == "Access-Token: tt-secret-7"
    page = editor(
        user,
        flow,
        action="preset",
        trigger="click",
        url="",
        preset="tiktok_conversion",
        **{"preset-" + k: v for k, v in fields.items()},
    ).get_data(as_text=True)
    assert ">Access-Token: tt-secret-7</textarea>" in page and 'value="TEST77"' in page
    assert "Access-Token: tt-secret-7" in page  # the preview shows what the user typed
    form = {
        "action": "save",
        "trigger": built["trigger"],
        "url": built["url"],
        "headers": built["headers_text"],
        "success_body": built["success_body"],
        "test_event_code": "TEST77",
        "enabled": "1",
    }
    assert editor(user, flow, **form).status_code == 302
    postback = Postback.get()
    assert (postback.headers, postback.success_body, postback.test_event_code) == (
        {"Access-Token": "tt-secret-7"},
        presets.TIKTOK_SUCCESS,
        "TEST77",
    )
    edit = user.get("/flows/%d/postbacks/%d/edit" % (flow.id, postback.id)).get_data(as_text=True)
    assert ">Access-Token: tt-secret-7</textarea>" in edit
    detail = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    assert "tt-secret-7" not in detail

    catch_all(receiver, body='{"code":0,"message":"OK"}')
    test = user.post(
        "/flows/%d/postbacks/test" % flow.id,
        json={
            "url": receiver.url_for("/tt") + "|JSON|{}",
            "headers": "Access-Token: tt-secret-7",
            "success_body": presets.TIKTOK_SUCCESS,
            "test_event_code": "TEST77",
        },
    )
    delivery = Delivery.get_by_id(test.get_json()["id"])
    assert (delivery.body, delivery.headers["Access-Token"], delivery.success_body) == (
        '{"test_event_code":"TEST77"}',
        "tt-secret-7",
        presets.TIKTOK_SUCCESS,
    )
    assert deliver_due(now=utcnow() + datetime.timedelta(seconds=1), config=app.config) == 1
    [request] = received(receiver)
    assert request.headers["Access-Token"] == "tt-secret-7"
    page = user.get("/logs/deliveries/%d" % delivery.id).get_data(as_text=True)
    assert "Access-Token: ***" in page and "tt-secret-7" not in page
