"""Flow and traffic source pages through the test client (CSRF off: see test_dashboard_access)."""

import datetime
import re

import pytest

from tracker.api.shapes import flow_to_dict
from tracker.dashboard.filters import in_words
from tracker.models import Delivery, Flow, FlowEvent, Postback, TrafficSource, utcnow

from dashboard_helpers import sign_in
from factories import add_click, add_conversion, add_flow


@pytest.fixture
def user(client):
    sign_in(client)
    return client


def endpoint_urls(app, methods):
    """Every dashboard URL (with made-up ids) answering one of ``methods``."""
    urls = []
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint.startswith("dashboard.")
            and rule.endpoint not in ("dashboard.login", "dashboard.setup")
            and rule.methods & set(methods)
        ):
            urls.append(re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule))
    return urls


def test_every_page_and_form_is_behind_the_login(app, client):
    gets, posts = endpoint_urls(app, ["GET"]), endpoint_urls(app, ["POST"])
    assert len(gets) >= 18 and len(posts) >= 9
    for url in gets:
        if url == "/favicon.ico":  # the tab icon, shown on the login page too
            continue
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), url
    for url in posts:
        response = client.post(url, data={"name": "x"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    assert Flow.select().count() == 0


def test_root_goes_to_flows(user):
    assert user.get("/").headers["Location"] == "/flows"


def test_no_flows_says_create_your_first_flow(user):
    page = user.get("/flows").get_data(as_text=True)
    assert "No flows yet" in page and "Create your first flow" in page


def test_flow_list_shows_todays_and_the_weeks_numbers(user):
    flow = add_flow("Push US")
    today = utcnow().replace(hour=0, minute=5, second=0, microsecond=0)
    three_days_ago = today - datetime.timedelta(days=3)
    click = add_click(flow, today.isoformat(" "), cost=0)
    add_click(flow, today.isoformat(" "))
    add_click(flow, three_days_ago.isoformat(" "))
    add_click(flow, (today - datetime.timedelta(days=7)).isoformat(" "))  # outside the week
    add_conversion(click, "1.50")
    html = user.get("/flows").get_data(as_text=True)
    row = html[html.index("Push US") : html.index("</tr>", html.index("Push US"))]
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row)
    # clicks, conversions, revenue, cost, profit, ROI (no cost: –), EPC with four decimals in
    # every row: today, yesterday (nothing), the last 7 days
    today_cells = ["2", "1", "1.50", "0.00", "1.50", "–", "0.7500"]
    yesterday_cells = ["0", "0", "0.00", "0.00", "0.00", "–", "–"]
    week_cells = ["3", "1", "1.50", "0.00", "1.50", "–", "0.5000"]
    assert cells == today_cells + yesterday_cells + week_cells


def test_create_flow_from_the_form_is_the_same_flow_as_the_api_makes(user, api):
    response = user.post(
        "/flows/new",
        data={
            "name": "Form flow",
            "offer_url": "https://offer.example/?cid={clickid}",
            "payout": "2.5",
            "currency": "eur",
            "attribution_days": "7",
            "fallback_url": "",
            "traffic_source_id": "",
        },
    )
    assert response.status_code == 302
    flow = Flow.get(Flow.name == "Form flow")
    assert response.headers["Location"] == "/flows/%d" % flow.id
    status, made = api.post(
        "/api/v1/flows",
        json={
            "name": "Form flow",
            "offer_url": "https://offer.example/?cid={clickid}",
            "payout": "2.5",
            "currency": "EUR",
            "attribution_days": 7,
            "fallback_url": "",
            "traffic_source_id": None,
        },
    )
    ours, theirs = flow_to_dict(flow, "http://x"), flow_to_dict(Flow.get_by_id(made["id"]), "http://x")
    for name in ("id", "key", "link", "created_at", "updated_at"):
        ours.pop(name), theirs.pop(name)
    assert ours == theirs
    page = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    assert "http://localhost/r/%s</code>" % flow.key in page


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": "", "offer_url": "https://offer.example/"}, "name is required"),
        ({"name": "X", "offer_url": "ftp://offer.example/"}, "offer_url must be an http:// or https:// URL"),
        (
            {"name": "X", "offer_url": "https://offer.example/", "payout": "lots"},
            "flow payout must be a number",
        ),
        (
            {"name": "X", "offer_url": "https://offer.example/", "attribution_days": "-3"},
            "attribution_days must be a whole number of days from 1 to 3650",
        ),
        (
            {"name": "X", "offer_url": "https://offer.example/", "traffic_source_id": "999"},
            "traffic source 999 does not exist",
        ),
    ],
)
def test_bad_flow_form_shows_the_reason_and_keeps_the_input(user, fields, message):
    response = user.post("/flows/new", data=fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert in_words(message) in html  # in words: "The offer URL must …", not "offer_url must …"
    assert 'value="%s"' % fields["offer_url"] in html
    assert Flow.select().count() == 0


def test_edit_pause_resume_and_delete(user, client):
    flow = add_flow("Old name")
    response = user.post(
        "/flows/%d/edit" % flow.id,
        data={"name": "New name", "offer_url": "https://new.example/", "payout": "1", "currency": "USD"},
    )
    assert response.status_code == 302
    assert (Flow.get_by_id(flow.id).name, Flow.get_by_id(flow.id).offer_url) == (
        "New name",
        "https://new.example/",
    )
    assert user.get("/r/" + flow.key).status_code == 302
    user.post("/flows/%d/pause" % flow.id, data={"paused": "1"})
    assert Flow.get_by_id(flow.id).paused is True
    assert user.get("/r/" + flow.key).status_code == 404  # the flow cache was cleared
    assert "paused" in user.get("/flows").get_data(as_text=True)
    user.post("/flows/%d/pause" % flow.id, data={"paused": "0"})
    assert Flow.get_by_id(flow.id).paused is False
    response = user.post("/flows/%d/delete" % flow.id)
    assert response.headers["Location"] == "/flows"
    assert Flow.get_by_id(flow.id).deleted is True
    assert user.get("/flows/%d" % flow.id).status_code == 404
    assert user.get("/r/" + flow.key).status_code == 404


def test_events_are_edited_as_a_table(user):
    flow = add_flow()
    user.post(
        "/flows/%d/events" % flow.id,
        data={
            "events-0-name": "lead",
            "events-0-conversion": "1",
            "events-1-name": "deposit",
            "events-1-conversion": "1",
            "events-1-allow_duplicates": "1",
            "events-2-name": "",
            "events-2-conversion": "1",
        },
    )
    events = [(e.name, e.conversion, e.allow_duplicates) for e in FlowEvent.select().order_by(FlowEvent.id)]
    assert events == [("lead", True, False), ("deposit", True, True)]
    page = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    assert 'name="events-1-name" value="deposit"' in page
    response = user.post(
        "/flows/%d/events" % flow.id,
        data={"events-0-name": "lead", "events-1-name": "lead"},
        follow_redirects=True,
    )
    assert "Events not saved: event &#39;lead&#39; is listed twice" in response.get_data(as_text=True)
    assert FlowEvent.select().count() == 2
    user.post("/flows/%d/events" % flow.id, data={"events-0-name": "", "events-1-name": "sale"})
    assert [(e.name, e.conversion) for e in FlowEvent.select()] == [("sale", False)]


def test_postbacks_are_added_edited_in_place_and_deleted(user):
    flow = add_flow()
    response = user.post(
        "/flows/%d/postbacks/new" % flow.id,
        data={
            "trigger": "status",
            "name": "to source",
            "url": "https://source.example/pb?cid={externalid}&s={status}",
            "statuses": ["approved", "declined"],
            "payout_type": "all",
            "enabled": "1",
            "events": "",
        },
    )
    assert response.status_code == 302
    postback = Postback.get()
    assert (postback.trigger, postback.statuses, postback.enabled) == (
        "status",
        ["approved", "declined"],
        True,
    )
    delivery = Delivery.create(flow_id=flow.id, postback=postback, trigger="status", url="https://x.example/")
    response = user.post(
        "/flows/%d/postbacks/%d/edit" % (flow.id, postback.id),
        data={
            "trigger": "conversion",
            "url": "https://source.example/pb?cid={externalid}",
            "events": "lead, sale",
            "payout_type": "all",
        },
    )
    assert response.status_code == 302
    edited = Postback.get()
    assert (edited.id, edited.trigger, edited.events, edited.statuses, edited.enabled) == (
        postback.id,
        "conversion",
        ["lead", "sale"],
        [],
        False,
    )
    assert Delivery.get_by_id(delivery.id).postback_id == postback.id  # same row, deliveries keep their link
    page = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    assert "lead, sale" in page and "https://source.example/pb?cid={externalid}" in page
    form = user.get("/flows/%d/postbacks/%d/edit" % (flow.id, postback.id)).get_data(as_text=True)
    assert 'id="postback-url"' in form and "{click_id}" in form  # the token reference
    user.post("/flows/%d/postbacks/%d/delete" % (flow.id, postback.id))
    assert Postback.select().count() == 0


def test_bad_postback_is_refused_with_the_reason(user):
    flow = add_flow()
    response = user.post(
        "/flows/%d/postbacks/new" % flow.id,
        data={"trigger": "status", "url": "https://x.example/", "statuses": ["maybe"], "payout_type": "all"},
    )
    assert response.status_code == 422
    assert "statuses: &#39;maybe&#39; is not one of approved, pending, declined" in response.get_data(
        as_text=True
    )
    response = user.post(
        "/flows/%d/postbacks/new" % flow.id, data={"trigger": "often", "url": "https://x.example/"}
    )
    assert "trigger must be one of click, conversion, status, payout" in response.get_data(as_text=True)
    assert Postback.select().count() == 0
    other = add_flow("Other")
    postback = Postback.create(flow=other, trigger="click", url="https://x.example/")
    assert user.get("/flows/%d/postbacks/%d/edit" % (flow.id, postback.id)).status_code == 404


def test_traffic_source_form_and_the_tracking_link_it_gives(user):
    assert "No traffic sources yet" in user.get("/sources").get_data(as_text=True)
    response = user.post(
        "/sources/new",
        data={
            "name": "Propeller",
            "click_id_param": "clickid",
            "var1": "zoneid",
            "var3": "campaignid",
            "postback_url": "https://propeller.example/pb?aid=1&tid={externalid}",
            "postback_events": "lead, sale",
            "active": "1",
        },
    )
    assert response.status_code == 302
    source = TrafficSource.get()
    assert (source.vars, source.postback_events, source.active) == (
        {"var1": "zoneid", "var3": "campaignid"},
        ["lead", "sale"],
        True,
    )
    flow = add_flow(traffic_source=source)
    page = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    assert (
        "http://localhost/r/%s?clickid={clickid}&amp;zoneid={zoneid}&amp;campaignid={campaignid}" % flow.key
        in page
    )
    user.post("/sources/%d/edit" % source.id, data={"name": "Propeller 2", "click_id_param": "subid"})
    source = TrafficSource.get()
    assert (source.name, source.click_id_param, source.vars, source.active) == (
        "Propeller 2",
        "subid",
        {},
        False,
    )
    listing = user.get("/sources").get_data(as_text=True)
    assert "Propeller 2" in listing and "inactive" in listing
    response = user.post("/sources/new", data={"name": "Bad", "postback_url": "javascript:alert(1)"})
    assert response.status_code == 422
    assert "must be an http:// or https:// URL" in response.get_data(as_text=True)


def test_unknown_ids_answer_an_html_404(user):
    response = user.get("/flows/999")
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "flow 999 not found" in response.get_data(as_text=True)
    assert user.get("/sources/999/edit").status_code == 404
