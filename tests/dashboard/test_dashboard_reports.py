"""The reports page's drill-down, presets, time zone, comparison, paging and its CSV of what is
shown; the cost form; the flows list's sorting; the click log's search; the "Postbacks in"
flow filter; deleted flows labelled; the favicon."""

import datetime
import re
from decimal import Decimal

import pytest

from tracker.models import Click, Flow, InboundRequest, utcnow

from dashboard_helpers import sign_in
from factories import add_click, add_conversion, add_flow


@pytest.fixture
def user(client):
    sign_in(client)
    return client


def table(html, table_id="report"):
    start = html.index('id="%s"' % table_id)
    body = html[html.index("<tbody>", start) : html.index("</tbody>", start)]
    return [
        [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def traffic(app):
    flow = add_flow("Push")
    for n in range(3):
        add_click(flow, "2024-05-01 10:0%d" % n, country="US", os="Android", sub1="z%d" % n)
    add_click(flow, "2024-05-01 23:30", country="US", os="iOS", sub1="z9")
    add_click(flow, "2024-05-01 11:00", country="DE", os="Android", sub1="z1")
    add_click(flow, "2024-04-30 11:00", country="DE", os="Android", sub1="z1")
    click = Click.get(Click.sub1 == "z0")
    add_conversion(click, "3.00")
    return flow


DAY = {"preset": "custom", "from": "2024-05-01", "to": "2024-05-01"}


def test_drill_down_three_levels_with_breadcrumbs(user, traffic):
    html = user.get("/reports", query_string=dict(DAY, g1="country", g2="os", g3="sub1")).get_data(
        as_text=True
    )
    assert [row[:2] for row in table(html)] == [["US", "4"], ["DE", "1"], ["Total", "5"]]
    link = re.search(r'<a class="drill" href="([^"]+)"[^>]*>US</a>', html).group(1).replace("&amp;", "&")
    assert "f.country=US" in link
    html = user.get(link).get_data(as_text=True)
    assert [row[:2] for row in table(html)] == [["Android", "3"], ["iOS", "1"], ["Total", "4"]]
    assert "country: US" in html  # the breadcrumb
    link = re.search(r'<a class="drill" href="([^"]+)"[^>]*>Android</a>', html).group(1).replace("&amp;", "&")
    html = user.get(link).get_data(as_text=True)
    assert [row[:4] for row in table(html)] == [
        ["z0", "1", "1", "1"],
        ["z1", "1", "1", "0"],
        ["z2", "1", "1", "0"],
        ["Total", "3", "3", "1"],
    ]
    assert 'class="drill"' not in html  # the last level
    csv = user.get(link.replace("/reports?", "/reports.csv?")).get_data(as_text=True).splitlines()
    assert [line.split(",")[:2] for line in csv] == [
        ["key", "clicks"],
        ["z0", "1"],
        ["z1", "1"],
        ["z2", "1"],
        ["total", "3"],
    ]


def test_time_zone_is_shown_and_changes_the_days(user, traffic):
    html = user.get("/reports", query_string=dict(DAY, g1="day")).get_data(as_text=True)
    assert '<strong id="zone">UTC</strong>' in html
    assert [row[:2] for row in table(html)] == [["2024-05-01", "5"], ["Total", "5"]]
    html = user.get("/reports", query_string=dict(DAY, g1="day", tz="Asia/Tokyo")).get_data(as_text=True)
    assert '<strong id="zone">Asia/Tokyo</strong>' in html
    # Tokyo's May 1 is 15:00 UTC on April 30 to 15:00 UTC on May 1: the 23:30 click is May 2 there
    assert [row[:2] for row in table(html)] == [["2024-05-01", "4"], ["Total", "4"]]
    html = user.get("/reports", query_string=dict(DAY, g1="hour", tz="Asia/Tokyo")).get_data(as_text=True)
    assert [row[:2] for row in table(html)] == [
        ["2024-05-01 19:00", "3"],
        ["2024-05-01 20:00", "1"],
        ["Total", "4"],
    ]


def test_comparison_shows_the_previous_period_and_the_change(user, traffic):
    html = user.get("/reports", query_string=dict(DAY, g1="country", compare="previous")).get_data(
        as_text=True
    )
    rows = table(html)
    assert rows[1][:2] == ["DE", "1 1 +0.0 %"]  # one click on May 1, one on April 30
    assert rows[0][1] == "4 0"  # US: 4, none the day before
    csv = user.get("/reports.csv", query_string=dict(DAY, g1="country", compare="previous")).get_data(
        as_text=True
    )
    assert csv.splitlines()[0].startswith("key,clicks,previous clicks,unique_clicks,previous unique_clicks")
    assert csv.splitlines()[2].startswith("DE,1,1,1,1,0,0")


def test_rows_per_page_and_totals_of_every_row(user, traffic):
    html = user.get("/reports", query_string=dict(DAY, g1="sub1", limit="25")).get_data(as_text=True)
    assert len(table(html)) == 5  # four sub1 values and the total
    flow = Flow.get()
    for n in range(30):
        add_click(flow, "2024-05-01 12:%02d" % n, sub1="many%02d" % n)
    html = user.get("/reports", query_string=dict(DAY, g1="sub1", limit="25")).get_data(as_text=True)
    rows = table(html)
    assert len(rows) == 26 and rows[-1][0].startswith("Total") and rows[-1][1] == "35"
    assert 'id="next-page"' in html


def test_presets_pick_the_dates(user, traffic):
    html = user.get("/reports", query_string={"preset": "yesterday"}).get_data(as_text=True)
    yesterday = (utcnow().date() - datetime.timedelta(days=1)).isoformat()
    assert 'name="from" value="%s"' % yesterday in html and 'name="to" value="%s"' % yesterday in html
    html = user.get("/reports", query_string={"preset": "last_month"}).get_data(as_text=True)
    first = (utcnow().date().replace(day=1) - datetime.timedelta(days=1)).replace(day=1).isoformat()
    assert 'name="from" value="%s"' % first in html


def test_the_cost_form_spreads_the_cost_and_says_so(user, traffic):
    response = user.post(
        "/reports/costs",
        data={
            "flow_id": traffic.id,
            "from": "2024-05-01",
            "to": "2024-05-01",
            "amount": "10",
            "back": "/reports?x=1",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/reports?x=1")
    html = user.get("/reports", query_string=dict(DAY, g1="flow")).get_data(as_text=True)
    assert "Cost updated: 10.00 USD spread over 5 clicks." in html
    assert table(html)[0][5] == "10.00"
    response = user.post(
        "/reports/costs",
        data={"flow_id": traffic.id, "from": "2020-01-01", "to": "2020-01-01", "amount": "1"},
    )
    html = user.get(response.headers["Location"]).get_data(as_text=True)
    assert "Cost not updated: no click of flow %d matches in that period" % traffic.id in html


def test_flows_list_sorts_by_any_figure(user, app):
    today = utcnow().strftime("%Y-%m-%d 00:01")
    small, big = add_flow("Small"), add_flow("Big")
    add_click(small, today, cost=Decimal("5"))
    for _ in range(3):
        add_click(big, today)
    order = lambda html: re.findall(r'<a href="/flows/\d+">([^<]+)</a>', html)  # noqa: E731
    assert order(user.get("/flows?sort=today.clicks").get_data(as_text=True)) == ["Big", "Small"]
    assert order(user.get("/flows?sort=today.clicks&dir=asc").get_data(as_text=True)) == ["Small", "Big"]
    assert order(user.get("/flows?sort=period.cost").get_data(as_text=True)) == ["Small", "Big"]
    assert order(user.get("/flows?sort=name&dir=asc").get_data(as_text=True)) == ["Big", "Small"]


def test_click_log_search(user, app):
    flow = add_flow()
    add_click(flow, "2024-05-01 10:00", click_id="aaa1", sub2="zone9", ip="203.0.113.5", country="US")
    add_click(flow, "2024-05-01 10:01", click_id="bbb2", sub1="zone1", ip="198.51.100.7", country="DE")

    def found(**q):
        return re.findall(
            r"/logs/clicks/(\w+)\"", user.get("/logs/clicks", query_string=q).get_data(as_text=True)
        )  # noqa: E731

    assert found(click_id="AAA1") == ["aaa1"]
    assert found(sub="zone9") == ["aaa1"] and found(sub="zone1") == ["bbb2"]
    assert found(ip="198.51.100.7") == ["bbb2"]
    assert found(country="de") == ["bbb2"]
    assert found(country="DE", sub="zone9") == []
    assert "country must be a two-letter ISO code" in user.get("/logs/clicks?country=Germany").get_data(
        as_text=True
    )


def test_postbacks_in_by_flow_shows_refusals_of_its_clicks(user, app):
    mine, other = add_flow("Mine"), add_flow("Other")
    add_click(mine, "2024-05-01 10:00", click_id="myclick")
    InboundRequest.create(
        endpoint="postback", http_status=400, reason="payout is not a number", click_id="myclick"
    )
    InboundRequest.create(endpoint="postback", http_status=404, reason="unknown click", click_id="nosuch")
    InboundRequest.create(
        endpoint="postback", http_status=200, accepted=True, flow_id=other.id, reason="other's"
    )
    html = user.get("/logs/postbacks?flow_id=%d" % mine.id).get_data(as_text=True)
    assert "payout is not a number" in html
    assert "unknown click" not in html and "other&#39;s" not in html


def test_deleted_flows_are_labelled_in_the_flow_filters(user, app):
    add_flow("Same name")
    Flow.update(deleted=True).where(Flow.id == add_flow("Same name").id).execute()
    html = user.get("/logs/clicks").get_data(as_text=True)
    labels = re.findall(r"<option value=\"\d+\" >([^<]+)</option>", html)
    assert sorted(labels) == ["Same name", "Same name (deleted, #2)"]
    assert "Same name (deleted, #2)" in user.get("/reports").get_data(as_text=True)


def test_favicon_is_served_to_anyone(client):
    response = client.get("/favicon.ico")
    assert (response.status_code, response.mimetype) == (200, "image/svg+xml")
    assert response.get_data().startswith(b"<svg")
