"""Reports page, CSV and log pages through the test client: numbers, escaping, masking,
filters, pagination, empty states, and resending a delivery."""

import datetime
import re
from decimal import Decimal

import pytest

from tracker.delivery.queue import deliver_due
from tracker.masking import mask_mapping, mask_secrets
from tracker.models import ConversionChange, Delivery, DeliveryAttempt, InboundRequest, utcnow

from dashboard_helpers import sign_in
from factories import HOSTILE, add_click, add_conversion, add_flow, report_dataset
from postback_helpers import received

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def user(client):
    sign_in(client)
    return client


def table_rows(html):
    """The report table's rows as lists of cell texts."""
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def lp_and_bots(row):
    """The report table's last columns, as the page shows a stats row's figures."""
    return [
        str(row["pending"]),
        str(row["events"]),
        str(row["lp_views"]),
        str(row["lp_clicks"]),
        row["lp_ctr"] or "–",
        str(row["bot_clicks"]),
    ]


def four(value):
    """EPC as the page shows it: four decimals in every row."""
    return "–" if value is None else format(Decimal(value).quantize(Decimal("0.0001")), "f")


def test_report_page_shows_the_same_numbers_as_the_stats_api(user, api):
    report_dataset()
    args = {"group_by": "sub1", "from": "2024-05-01", "to": "2024-05-03"}
    html = user.get("/reports", query_string=args).get_data(as_text=True)
    _, body = api.get("/api/v1/stats", query_string=args)
    expected = [
        [
            row["key"] or "(empty)",
            str(row["clicks"]),
            str(row["unique_clicks"]),
            str(row["conversions"]),
            row["revenue"],
            row["cost"],
            row["profit"],
            row["cr"],
            four(row["epc"]),
            row["roi"],
            *lp_and_bots(row),
        ]
        for row in body["items"]
    ]
    totals = body["totals"]
    expected.append(
        [
            "Total",
            str(totals["clicks"]),
            str(totals["unique_clicks"]),
            str(totals["conversions"]),
            totals["revenue"],
            totals["cost"],
            totals["profit"],
            totals["cr"],
            four(totals["epc"]),
            totals["roi"],
            *lp_and_bots(totals),
        ]
    )
    rows = table_rows(html)
    rows[2][0] = rows[2][0].replace("&lt;", "<").replace("&gt;", ">")
    assert rows == expected
    assert HOSTILE not in html and ESCAPED in html  # the hostile sub id is shown as text
    assert "<svg" in html and html.count('class="bar"') == 3  # a bar per day in the chart
    flows = table_rows(
        user.get("/reports?group_by=flow&from=2024-04-01&to=2024-05-31").get_data(as_text=True)
    )
    assert [row[:4] for row in flows] == [
        ["Flow A", "4", "3", "3"],
        ["Flow B", "2", "2", "1"],
        ["Total", "6", "5", "4"],
    ]


def test_report_defaults_to_the_last_7_days_and_explains_an_empty_range(user):
    html = user.get("/reports").get_data(as_text=True)
    assert "Create your first flow" in html
    add_flow("F")
    html = user.get("/reports?group_by=country").get_data(as_text=True)
    assert "No clicks in this range" in html and "Open one of your flows" in html


def test_report_refuses_bad_filters_with_a_reason(user):
    response = user.get("/reports?group_by=colour")
    assert response.status_code == 400
    assert "group_by must be one of day, hour, flow" in response.get_data(as_text=True)
    response = user.get("/reports.csv?from=2024-02-30")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_csv_export_uses_flow_names(user):
    data = report_dataset()
    response = user.get("/reports.csv?group_by=flow&from=2024-05-01&to=2024-05-03")
    assert response.mimetype == "text/csv"
    assert 'filename="report-flow-2024-05-01-2024-05-03.csv"' in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True).splitlines() == [
        "key,clicks,unique_clicks,conversions,revenue,cost,profit,cr,epc,roi,events,pending,declined,"
        "lp_views,lp_clicks,lp_ctr,cpa,cpc,bot_clicks,currency",
        "Flow A,3,2,3,3.00,0.40,2.60,100.00,1.00,650.00,0,1,0,0,0,,0.1333,0.1333,0,USD",
        "Flow B,2,2,1,3.00,0.35,2.65,50.00,1.50,757.14,0,0,1,0,0,,0.35,0.175,0,USD",
        "total,5,4,4,6.00,0.75,5.25,80.00,1.20,700.00,0,1,1,0,0,,0.1875,0.15,0,USD",
    ]
    assert data["a"].name == "Flow A"


def test_click_log_escapes_hostile_values_and_links_the_detail(user):
    flow = add_flow("F")
    click = add_click(
        flow,
        "2024-05-01 10:00",
        sub1=HOSTILE,
        utm_source="<b>x</b>",
        country="US",
        params={"sub1": HOSTILE, "access_token": "tok-123"},
        user_agent="<img src=x onerror=alert(1)>",
    )
    html = user.get("/logs/clicks").get_data(as_text=True)
    assert HOSTILE not in html and ESCAPED in html and "<b>x</b>" not in html
    assert "/logs/clicks/%s" % click.click_id in html
    detail = user.get("/logs/clicks/" + click.click_id).get_data(as_text=True)
    assert HOSTILE not in detail and "<img src=x" not in detail and ESCAPED in detail
    assert "tok-123" not in detail and "***" in detail  # a secret in the query is masked


def test_click_log_is_paginated_newest_first_and_filtered_by_flow(user):
    a, b = add_flow("A"), add_flow("B")
    ids = [
        add_click(a if n % 2 else b, "2024-05-01 10:%02d" % n, click_id="k%03d" % n).click_id
        for n in range(7)
    ]
    first = user.get("/logs/clicks?limit=3").get_data(as_text=True)
    shown = re.findall(r'/logs/clicks/(k\d+)"', first)
    assert shown == ["k006", "k005", "k004"]
    next_url = re.search(r'class="button" href="([^"]+)">Older', first).group(1).replace("&amp;", "&")
    assert re.findall(r'/logs/clicks/(k\d+)"', user.get(next_url).get_data(as_text=True)) == [
        "k003",
        "k002",
        "k001",
    ]
    assert "Older" not in user.get("/logs/clicks?limit=7").get_data(as_text=True)
    only_a = user.get("/logs/clicks?flow_id=%d" % a.id).get_data(as_text=True)
    assert re.findall(r'/logs/clicks/(k\d+)"', only_a) == ["k005", "k003", "k001"]
    assert len(ids) == 7


def test_empty_click_log_says_to_open_the_tracking_link(user):
    assert "Create your first flow" in user.get("/logs/clicks").get_data(as_text=True)
    flow = add_flow("F")
    html = user.get("/logs/clicks").get_data(as_text=True)
    assert "Open your tracking link" in html and "http://localhost/r/%s" % flow.key in html


def test_conversion_log_and_its_history(user):
    flow = add_flow("F")
    click = add_click(flow, "2024-05-01 10:00")
    conversion = add_conversion(click, "4.00", status="approved", txid="T-1", data={"email": "a@b.example"})
    add_conversion(click, "1.00", status="pending", event="lead")
    inbound = InboundRequest.create(
        endpoint="postback",
        params={"click_id": click.click_id, "secret": "hush"},
        http_status=200,
        accepted=True,
        result="ok",
        conversion=conversion,
        flow_id=flow.id,
    )
    ConversionChange.create(conversion=conversion, status="pending", payout="4.00", inbound=inbound.id)
    ConversionChange.create(conversion=conversion, status="approved", payout="4.00")
    html = user.get("/logs/conversions?status=pending").get_data(as_text=True)
    assert "lead" in html and "T-1" not in html
    detail = user.get("/logs/conversions/%d" % conversion.id).get_data(as_text=True)
    assert "T-1" in detail and "a@b.example" in detail
    assert detail.index("badge pending") < detail.rindex("badge approved")
    assert "hush" not in detail and "***" in detail
    assert user.get("/logs/conversions?status=maybe").status_code == 400


def test_inbound_log_filters_accepted_and_rejected(user):
    flow = add_flow("F")
    InboundRequest.create(
        endpoint="postback",
        params={"click_id": "abc"},
        http_status=200,
        accepted=True,
        result="ok",
        flow_id=flow.id,
    )
    InboundRequest.create(
        endpoint="postback",
        params={"click_id": "{clickid}"},
        http_status=400,
        accepted=False,
        reason="click_id is an unreplaced macro: {clickid}",
    )
    everything = user.get("/logs/postbacks").get_data(as_text=True)
    assert "unreplaced macro" in everything and "200 ok" in everything
    rejected = user.get("/logs/postbacks?accepted=false").get_data(as_text=True)
    assert "unreplaced macro" in rejected and "200 ok" not in rejected
    accepted = user.get("/logs/postbacks?accepted=true&flow_id=%d" % flow.id).get_data(as_text=True)
    assert "unreplaced macro" not in accepted and "200 ok" in accepted
    assert user.get("/logs/postbacks?accepted=perhaps").status_code == 400


def make_delivery(flow, status="failed", **fields):
    fields.setdefault("url", "https://graph.example/v18/1/events?access_token=EAAB-secret&x=1")
    return Delivery.create(
        flow_id=flow.id,
        trigger="conversion",
        method="POST",
        status=status,
        headers={"Content-Type": "application/json", "Authorization": "Bearer abc.def"},
        body='{"data": [{"event_name": "Lead"}], "api_key": "k-9"}',
        **fields,
    )


def test_delivery_detail_shows_the_request_and_every_attempt_with_secrets_masked(user):
    flow = add_flow("F")
    delivery = make_delivery(flow, attempts_count=2, last_error="HTTP 503")
    DeliveryAttempt.create(delivery=delivery, status_code=None, duration_ms=5000, error="timeout after 5 s")
    DeliveryAttempt.create(
        delivery=delivery, status_code=503, duration_ms=41.7, error="HTTP 503", response="<h1>busy</h1>"
    )
    html = user.get("/logs/deliveries/%d" % delivery.id).get_data(as_text=True)
    assert "POST https://graph.example/v18/1/events?access_token=***&amp;x=1" in html
    assert "Authorization: ***" in html and "Content-Type: application/json" in html
    assert "&#34;api_key&#34;: &#34;***&#34;" in html and "event_name" in html
    for secret in ("EAAB-secret", "abc.def", "k-9"):
        assert secret not in html
    assert "timeout after 5 s" in html and "5000 ms" in html and "42 ms" in html
    assert "&lt;h1&gt;busy&lt;/h1&gt;" in html
    assert 'action="/logs/deliveries/%d/resend"' % delivery.id in html


def test_delivery_log_filters_by_status(user):
    flow = add_flow("F")
    make_delivery(flow, status="delivered", url="https://ok.example/")
    make_delivery(flow, status="failed", url="https://broken.example/")
    html = user.get("/logs/deliveries?status=failed").get_data(as_text=True)
    assert "broken.example" in html and "ok.example" not in html
    assert "No deliveries match" in user.get("/logs/deliveries?status=skipped").get_data(as_text=True)
    assert user.get("/logs/deliveries?status=lost").status_code == 400


def test_resend_queues_the_same_request_again_and_the_next_sweep_sends_it(app, user, receiver):
    receiver.expect_ordered_request("/pb", method="POST").respond_with_data("bad pixel", status=400)
    receiver.expect_ordered_request("/pb", method="POST").respond_with_data("ok")
    flow, start = add_flow("F"), utcnow()
    delivery = make_delivery(
        flow, status="queued", url=receiver.url_for("/pb") + "?access_token=t-1", next_attempt_at=start
    )
    assert deliver_due(now=start, config=app.config) == 1
    failed = Delivery.get_by_id(delivery.id)
    assert (failed.status, failed.attempts_count, failed.last_error) == ("failed", 1, "HTTP 400")

    response = user.post("/logs/deliveries/%d/resend" % delivery.id)
    assert response.headers["Location"] == "/logs/deliveries/%d" % delivery.id
    queued = Delivery.get_by_id(delivery.id)
    assert (queued.status, queued.attempts_count, queued.last_error) == ("queued", 0, "")
    assert (queued.method, queued.url, queued.headers, queued.body) == (
        delivery.method,
        delivery.url,
        delivery.headers,
        delivery.body,
    )
    page = user.get("/logs/deliveries/%d" % delivery.id).get_data(as_text=True)
    assert "Delivery %d is queued to be sent again." % delivery.id in page and "badge queued" in page

    assert deliver_due(now=queued.next_attempt_at + datetime.timedelta(seconds=1), config=app.config) == 1
    first, second = received(receiver)
    assert (second.full_path, second.data, second.headers["Content-Type"]) == (
        first.full_path,
        first.data,
        "application/json",
    )
    attempts = (
        DeliveryAttempt.select().where(DeliveryAttempt.delivery == delivery.id).order_by(DeliveryAttempt.id)
    )
    assert [(a.status_code, a.response) for a in attempts] == [(400, "bad pixel"), (200, "ok")]
    assert Delivery.get_by_id(delivery.id).status == "delivered"
    page = user.get("/logs/deliveries/%d" % delivery.id).get_data(as_text=True)
    assert page.count('<td class="nowrap">') == 2 and "bad pixel" in page


def test_resend_refuses_a_delivery_being_sent_and_an_unknown_one(user):
    flow = add_flow("F")
    delivery = make_delivery(flow, status="sending")
    page = user.post("/logs/deliveries/%d/resend" % delivery.id, follow_redirects=True).get_data(as_text=True)
    assert "Not resent: delivery %d is being sent right now." % delivery.id in page
    assert 'disabled title="It is being sent right now"' in page
    assert Delivery.get_by_id(delivery.id).status == "sending"
    assert user.post("/logs/deliveries/999/resend").status_code == 404


def test_geoip_banner_names_the_source_and_what_each_missing_database_adds(user):
    html = user.get("/flows").get_data(as_text=True)
    banner = html[html.index('<div class="banner warn" id="geoip-banner">') :]
    banner = " ".join(banner[: banner.index("</div>")].split())
    assert (
        "Geo source: <strong>built-in iptocc data (country only: where each address is registered)" in banner
    )
    assert "<code>tracker geoip update</code>" in banner
    assert (
        "<strong>City</strong>: a located country (not only where the address is registered), its name, "
        in (banner)
    )
    assert "region, city, zip; <strong>ASN</strong>: asn, isp." in banner


@pytest.mark.parametrize(
    "text, masked",
    [
        ("https://x.example/?access_token=abc&a=1", "https://x.example/?access_token=***&a=1"),
        ("https://x.example/?a=1&api_key=abc#top", "https://x.example/?a=1&api_key=***#top"),
        (
            "https://x.example/p?token=t&TOKEN=u&key=k&secret=s&password=p&client_secret=c&pixel_key=q",
            "https://x.example/p?token=***&TOKEN=***&key=***&secret=***&password=***"
            "&client_secret=***&pixel_key=***",
        ),
        ("email=a%40b.example&auth_token=zz", "email=a%40b.example&auth_token=***"),
        ('{"access_token": "abc\\"d", "event": "Lead"}', '{"access_token": "***", "event": "Lead"}'),
        (
            "https://x.example/?monkey=1&keyword=shoes&token=",
            "https://x.example/?monkey=1&keyword=shoes&token=",
        ),
    ],
)
def test_mask_secrets(text, masked):
    assert mask_secrets(text) == masked


def test_mask_mapping():
    assert mask_mapping({"Authorization": "Bearer x", "secret": "s", "click_id": "c", "token": ""}) == {
        "Authorization": "***",
        "secret": "***",
        "click_id": "c",
        "token": "",
    }
