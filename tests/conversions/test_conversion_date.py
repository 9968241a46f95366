"""``conversion_date`` and ``conversion_timezone`` (DESIGN §4.2, Pingtree's seed 001): when the
conversion happened, used by reports and the attribution window; an hour's slack before the
click and five minutes' after now, noted in the inbound log; 400 beyond. Issue 9, point 9:
both were ignored."""

import datetime

import pytest

from tracker.conversions.claims import SenderRules, make_inbound
from tracker.conversions.record import record_conversion
from tracker.models import Conversion, InboundRequest

from postback_helpers import NOW, make_click

CLICK_AT = NOW  # 2024-05-01 12:00:00 UTC
LATER = NOW + datetime.timedelta(days=2)


@pytest.fixture
def click(app, make_flow):
    return make_click(make_flow(events=[{"name": "sale", "conversion": True}])["id"], now=CLICK_AT)


def postback(click, now=LATER, endpoint="postback", **fields):
    """Record a conversion of ``click`` at ``now``; ``(status, error, conversion time, log reason)``."""
    if endpoint == "postback":
        fields = dict({"click_id": click.click_id, "event": "sale", "payout": "5"}, **fields)
    else:
        fields = dict(
            {"cid": click.flow.key, "transaction_id": click.click_id, "event_id": "sale", "revenue": "5"},
            **fields,
        )
    outcome = record_conversion(
        make_inbound(endpoint, "GET", "127.0.0.1", list(fields.items())), SenderRules(), now
    )
    conversion = Conversion.get_or_none(Conversion.id == outcome.conversion_id)
    log = InboundRequest.select().order_by(InboundRequest.id.desc()).first()
    return outcome.http_status, outcome.error, conversion and conversion.created_at, log.reason


def at(text):
    return datetime.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "date, zone, utc",
    [
        ("2024-05-02 09:30:00", None, "2024-05-02 09:30:00"),
        ("2024-05-02 09:30:00", "UTC", "2024-05-02 09:30:00"),
        ("2024-05-02 09:30:00", "PST", "2024-05-02 17:30:00"),
        ("2024-05-02 09:30:00", "est", "2024-05-02 14:30:00"),
        ("2024-05-02 09:30:00", "CST", "2024-05-02 15:30:00"),
        ("2024-05-02 09:30:00", "MST", "2024-05-02 16:30:00"),
        ("2024-05-02 09:30:00", "AKST", "2024-05-02 18:30:00"),
        ("2024-05-02 09:30:00", "SST", "2024-05-02 20:30:00"),
        ("2024-05-02 09:30:00", "HST", "2024-05-02 19:30:00"),
        ("2024-05-02 09:30:00", "AST", "2024-05-02 13:30:00"),
        ("2024-05-02 09:30:00", "America/New_York", "2024-05-02 13:30:00"),  # EDT in May
        ("2024-05-02 09:30:00", "Europe/Berlin", "2024-05-02 07:30:00"),
        ("2024-05-02", "PST", "2024-05-02 08:00:00"),
    ],
)
def test_the_conversion_is_dated_as_the_sender_says(click, date, zone, utc):
    fields = (
        {"conversion_date": date} if zone is None else {"conversion_date": date, "conversion_timezone": zone}
    )
    status, error, when, reason = postback(click, **fields)
    assert (status, error, when, reason) == (200, None, at(utc), "recorded")


def test_the_event_api_takes_them_too(click):
    fields = {"conversion_date": "2024-05-02 09:30:00", "conversion_timezone": "PST"}
    assert postback(click, endpoint="events", **fields)[:3] == (200, None, at("2024-05-02 17:30:00"))


def test_up_to_an_hour_before_the_click_is_the_clicks_time_and_noted(click):
    status, error, when, reason = postback(click, conversion_date="2024-05-01 11:15:00")
    assert (status, error, when) == (200, None, CLICK_AT)
    assert reason == (
        "recorded; conversion_date '2024-05-01 11:15:00' (2024-05-01 11:15:00 UTC) is before the click: "
        "taken as the click's time"
    )


def test_a_date_without_time_on_the_clicks_own_day_is_the_clicks_time(click):
    status, _, when, reason = postback(click, conversion_date="2024-05-01")
    assert (status, when) == (200, CLICK_AT)
    assert reason.endswith("is before the click: taken as the click's time")
    # an hour off (a clock on summer time sent as EST) stays within the slack
    assert (
        postback(click, conversion_date="2024-05-01 06:30:00", conversion_timezone="EST", txid="2")[2]
        == CLICK_AT
    )


def test_further_before_the_click_is_refused(click):
    status, error, when, reason = postback(click, conversion_date="2024-05-01 10:59:59")
    assert (status, when) == (400, None)
    assert (
        error
        == reason
        == (
            "conversion_date '2024-05-01 10:59:59' (2024-05-01 10:59:59 UTC) "
            "is before the click (2024-05-01 12:00:00 UTC)"
        )
    )
    assert postback(click, conversion_date="2024-04-30")[0] == 400


def test_five_minutes_ahead_is_now_and_noted_further_is_refused(click):
    status, _, when, reason = postback(click, now=LATER, conversion_date="2024-05-03 12:04:00")
    assert (status, when) == (200, LATER)
    assert reason.endswith("is ahead of now by 240 s: taken as now")
    status, error, _, _ = postback(click, now=LATER, conversion_date="2024-05-03 12:05:01", txid="2")
    assert (status, error) == (
        400,
        "conversion_date '2024-05-03 12:05:01' (2024-05-03 12:05:01 UTC) is in the future",
    )


def test_the_attribution_window_counts_to_the_conversion_not_to_its_report(click):
    much_later = CLICK_AT + datetime.timedelta(days=45)
    assert postback(click, now=much_later)[:2] == (
        410,
        "the click is 45 days old, outside the 30-day attribution window",
    )
    status, _, when, _ = postback(click, now=much_later, conversion_date="2024-05-20 00:00:00")
    assert (status, when) == (200, at("2024-05-20 00:00:00"))


@pytest.mark.parametrize(
    "fields, error",
    [
        (
            {"conversion_date": "02/05/2024"},
            "conversion_date '02/05/2024' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
        ),
        (
            {"conversion_date": "2024-02-30"},
            "conversion_date '2024-02-30' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
        ),
        (
            {"conversion_date": "2024-05-02", "conversion_timezone": "Mars/Olympus"},
            "conversion_timezone 'Mars/Olympus' is not one of PST, EST, CST, MST, AKST, SST, HST, AST "
            "nor an IANA time zone such as America/New_York",
        ),
        ({"conversion_date": "2024-05-02", "conversion_timezone": "../../etc/passwd"}, None),
        (
            {"conversion_date": "{conversion_date}"},
            "conversion_date is '{conversion_date}', an unreplaced macro: the sender did not "
            "replace {conversion_date} with the real value; fix the postback URL on the sender's side",
        ),
        (  # a long zone is quoted cut to 80 characters
            {"conversion_date": "2024-05-02", "conversion_timezone": "Z" * 200},
            "conversion_timezone %r is not one of PST, EST, CST, MST, AKST, SST, HST, AST "
            "nor an IANA time zone such as America/New_York" % ("Z" * 80),
        ),
    ],
)
def test_bad_dates_and_zones_are_400(click, fields, error):
    status, given, when, _ = postback(click, **fields)
    assert (status, when) == (400, None)
    if error:
        assert given == error


def test_over_http(client, click):
    query = (
        "click_id=%s&event=sale&payout=5&conversion_date=2024-05-02+09%%3A30%%3A00&conversion_timezone=PST"
    )
    response = client.get("/postback?" + query % click.click_id)
    assert response.status_code == 200
    assert Conversion.get().created_at == at("2024-05-02 17:30:00")
    assert Conversion.get().data == {}  # the dates are the contract's, not lead data
