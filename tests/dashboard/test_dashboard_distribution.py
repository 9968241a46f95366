"""Offers, landers, a flow's routes, the bot lists and cloning through the dashboard (test
client, CSRF off): every refused field is named next to it, at once (DESIGN §4.6)."""

import datetime
import re
from html import unescape

import pytest

from tracker.dashboard.filters import in_words
from tracker.enrichment.bots import load_bot_rules
from tracker.models import Flow, Lander, Offer, Route, utcnow

from dashboard_helpers import sign_in
from factories import add_click, add_conversion, add_flow


@pytest.fixture
def user(client):
    sign_in(client)
    return client


def in_words_of(errors):
    """The refusals as the form shows them: "The name is required", not "name is required"."""
    return {name: in_words(message) for name, message in errors.items()}


def field_errors(html):
    """``{field: message}`` of the errors shown next to the fields."""
    pattern = r'<small class="error" data-error-for="([^"]*)">([^<]*)</small>'
    return {name: unescape(message) for name, message in re.findall(pattern, html)}


def rows_of(html, table_id):
    """The cell texts of a table's body rows."""
    body = html[html.index('id="%s"' % table_id) :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    return [
        [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_an_offer_form_names_every_mistake_next_to_its_field(user):
    response = user.post(
        "/offers/new", data={"name": "", "url": "ftp://x", "payout": "lots", "currency": "dollars"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(html) == in_words_of(
        {
            "name": "name is required",
            "url": "url must be an http:// or https:// URL",
            "payout": "payout must be a number",
            "currency": "currency is longer than 3 characters",
        }
    )
    assert 'value="ftp://x"' in html and "4 things need fixing" in html
    assert Offer.select().count() == 0


def test_offers_and_landers_pages_show_their_weeks_figures(user):
    response = user.post(
        "/offers/new", data={"name": "Acme", "url": "https://acme.example/?c={clickid}", "payout": "5"}
    )
    assert response.headers["Location"] == "/offers"
    assert user.post("/landers/new", data={"name": "Quiz", "url": "https://quiz.example/"}).status_code == 302
    offer, lander = Offer.get(), Lander.get()
    flow = add_flow("F")
    today = utcnow().replace(hour=0, minute=5, second=0, microsecond=0).isoformat(" ")
    seen = add_click(flow, today, lander_id=lander.id, offer_id=offer.id, lp_clicked_at=utcnow())
    add_click(flow, today, lander_id=lander.id, offer_id=offer.id)
    add_click(flow, today, lander_id=lander.id, offer_id=offer.id, is_bot=True)
    add_conversion(seen, "5.00")
    offers = rows_of(user.get("/offers").get_data(as_text=True), "offers-table")
    assert offers == [
        [
            "Acme",
            "https://acme.example/?c={clickid}",
            "5.00 USD",
            "2",
            "2",
            "1",
            "50.00",
            "1",
            "5.00",
            "50.00",
            "2.5000",  # EPC: four decimals in every row
            "Delete",
        ]
    ]
    landers = rows_of(user.get("/landers").get_data(as_text=True), "landers-table")
    assert landers == [
        ["Quiz", "https://quiz.example/", "2", "2", "1", "50.00", "1", "5.00", "50.00", "2.5000", "Delete"]
    ]
    edit = user.post(
        "/offers/%d/edit" % offer.id,
        data={"name": "Acme 2", "url": offer.url, "payout": "6", "currency": "EUR"},
    )
    assert edit.status_code == 302 and (Offer.get().name, str(Offer.get().payout), Offer.get().currency) == (
        "Acme 2",
        "6.000000",
        "EUR",
    )


def test_an_offer_a_route_uses_is_not_deleted(user):
    offer = Offer.create(name="Used", url="https://o.example/")
    flow = add_flow("F")
    Route.create(flow=flow, name="R", offers=[{"offer_id": offer.id, "weight": 1}])
    response = user.post("/offers/%d/delete" % offer.id)
    assert response.headers["Location"] == "/offers"
    page = user.get("/offers").get_data(as_text=True)
    assert "Not deleted: offer %d is used by route &#39;R&#39; of flow &#39;F&#39;" % offer.id in page
    assert Offer.get_by_id(offer.id).deleted is False


def rule_rows(*rules, blanks=1):
    data = {}
    for i, (field, op, values) in enumerate(list(rules) + [("", "in", "")] * blanks):
        data.update({"rules-%d-field" % i: field, "rules-%d-op" % i: op, "rules-%d-values" % i: values})
    return data


def test_the_route_editor_names_each_mistake_next_to_its_row(user):
    flow = add_flow("F")
    data = {"name": "", "enabled": "1", "action": "redirect", "offers-0-id": "", "offers-0-weight": ""}
    data.update(rule_rows(("contry", "in", "US"), ("", "in", ""), ("hour", "in", "25"), blanks=0))
    response = user.post("/flows/%d/routes/new" % flow.id, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(html) == in_words_of(
        {
            "name": "route 1: name is required",
            "rules-0": "route 1, rule 1: unknown field 'contry' (a click field such as country, "
            "device_type, os, isp, ip, sub1, utm_source, param:NAME, hour)",
            "rules-2": "route 1, rule 2: hour takes hours 0 to 23 or ranges like \"9-17\", not '25'",
            "offers": "route 1: needs at least one offer with a weight above 0 (or the action not_found)",
        }
    )
    assert 'value="contry"' in html  # the rows as typed
    assert Route.select().count() == 0


def test_routes_are_added_ordered_enabled_and_deleted_with_their_share(user):
    flow = add_flow("F")
    offer = Offer.create(name="O", url="https://o.example/")
    lander = Lander.create(name="L", url="https://l.example/")
    us = {
        "name": "US",
        "enabled": "1",
        "action": "redirect",
        "landers-0-id": str(lander.id),
        "landers-0-weight": "2",
    }
    us.update({"offers-0-id": str(offer.id), "offers-0-weight": ""}, **rule_rows(("country", "in", "US, CA")))
    assert (
        user.post("/flows/%d/routes/new" % flow.id, data=us).headers["Location"]
        == "/flows/%d#routes" % flow.id
    )
    bots = {"name": "Bots", "enabled": "1", "action": "not_found", **rule_rows(("is_bot", "in", "true"))}
    assert user.post("/flows/%d/routes/new" % flow.id, data=bots).status_code == 302
    first, second = Route.select().order_by(Route.position)
    assert (first.name, first.rules, first.landers, first.offers) == (
        "US",
        [{"field": "country", "op": "in", "values": ["US", "CA"]}],
        [{"lander_id": lander.id, "weight": 2}],
        [{"offer_id": offer.id, "weight": 1}],
    )
    today = utcnow().replace(hour=0, minute=5, second=0, microsecond=0).isoformat(" ")
    for _ in range(3):
        add_click(flow, today, route_id=first.id)
    add_click(flow, today, route_id=second.id, is_bot=True)
    page = user.get("/flows/%d" % flow.id).get_data(as_text=True)
    routes = rows_of(page, "routes-table")
    assert [(r[0], r[1], r[5], r[6]) for r in routes] == [
        ("1", "US", "75.0%", "3"),
        ("2", "Bots 404", "25.0%", "0"),
    ]

    user.post("/flows/%d/routes/%d/move" % (flow.id, second.id), data={"direction": "up"})
    user.post("/flows/%d/routes/%d/enable" % (flow.id, first.id), data={"enabled": "0"})
    assert [(r.name, r.enabled) for r in Route.live().order_by(Route.position)] == [
        ("Bots", True),
        ("US", False),
    ]
    edit = user.get("/flows/%d/routes/%d/edit" % (flow.id, first.id)).get_data(as_text=True)
    assert 'value="US, CA"' in edit
    user.post("/flows/%d/routes/%d/delete" % (flow.id, second.id))
    assert [r.name for r in Route.live()] == ["US"]


def test_the_flow_form_takes_the_distribution_settings_and_names_every_mistake(user):
    bad = {"name": "", "offer_url": "", "timezone": "Mars/Base", "unique_window_hours": "0", "payout": "0"}
    html = user.post("/flows/new", data=bad).get_data(as_text=True)
    assert field_errors(html) == in_words_of(
        {
            "name": "name is required",
            "offer_url": "offer_url is required unless a route is the default",
            "timezone": "timezone 'Mars/Base' is not an IANA time zone such as Europe/Berlin",
            "unique_window_hours": "unique_window_hours must be a whole number of hours from 1 to 8760",
        }
    )
    good = {
        "name": "F",
        "offer_url": "https://o.example/",
        "timezone": "Asia/Tokyo",
        "unique_window_hours": "6",
    }
    response = user.post("/flows/new", data=dict(good, bind_visitors="1"))
    flow = Flow.get()
    assert response.status_code == 302
    assert (flow.timezone, flow.unique_window_hours, flow.bind_visitors) == ("Asia/Tokyo", 6, True)


def test_clone_opens_the_copy(user):
    flow = add_flow("Original")
    Route.create(
        flow=flow,
        name="R",
        offers=[{"offer_id": Offer.create(name="O", url="https://o.example/").id, "weight": 1}],
    )
    response = user.post("/flows/%d/clone" % flow.id)
    copy = Flow.select().order_by(Flow.id.desc()).first()
    assert response.headers["Location"] == "/flows/%d" % copy.id and copy.id != flow.id
    assert (copy.name, [r.name for r in Route.live().where(Route.flow == copy)]) == ("Original (copy)", ["R"])
    assert "Flow cloned" in user.get(response.headers["Location"]).get_data(as_text=True)


def test_the_bot_lists_are_edited_with_every_mistake_named(user):
    response = user.post("/bots", data={"ips": "10.0.0.0/8, bad\n1.2.3.999", "user_agents": "curl"})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True)) == {
        "ips": "ips: 'bad', '1.2.3.999' are not IP addresses or CIDR blocks"
    }
    assert (
        user.post(
            "/bots", data={"ips": "10.0.0.0/8\n203.0.113.7", "user_agents": "curl/, x\nHeadless"}
        ).status_code
        == 302
    )
    assert load_bot_rules() == {"ips": ["10.0.0.0/8", "203.0.113.7"], "user_agents": ["curl/, x", "Headless"]}
    assert "203.0.113.7" in user.get("/bots").get_data(as_text=True)


def test_reports_by_lander_name_them_and_show_lp_ctr(user):
    flow = add_flow("F")
    lander = Lander.create(name="Quiz <b>", url="https://quiz.example/")
    day = (utcnow() - datetime.timedelta(days=1)).replace(hour=12).isoformat(" ")
    add_click(flow, day, lander_id=lander.id, lp_clicked_at=utcnow())
    add_click(flow, day, lander_id=lander.id)
    html = user.get("/reports?group_by=lander").get_data(as_text=True)
    assert "Quiz &lt;b&gt;" in html
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
    assert cells[:2] == ["Quiz <b>".replace("<", "&lt;").replace(">", "&gt;"), "2"]
    assert cells[12:16] == ["2", "1", "50.00", "0"]  # LP views, LP clicks, LP CTR, bots
    csv = user.get("/reports.csv?group_by=lander").get_data(as_text=True).splitlines()
    assert csv[1] == "Quiz <b>,2,2,0,0.00,0.00,0.00,0.00,0.00,,0,0,0,2,1,50.00,,0.00,0,USD"
