"""The event API's claim (DESIGN §4.3): every ``transaction_id`` + ``event_id`` pair is claimed
for ``TRACKER_EVENT_CLAIM_SECONDS`` (default 2) from its first request, also for events that
allow duplicates; other requests for the pair within it get 403; a first request that records
nothing gives the claim back at once. Issue 9, point 4: 16 identical requests at once for an
event that allows duplicates stored 14 or 15 (the served test is in test_concurrency.py)."""

import datetime

import pytest

from tracker.conversions.claims import SenderRules, make_inbound
from tracker.conversions.record import record_conversion
from tracker.models import RequestLock, utcnow

from conversion_helpers import click_on, conversions

EVENTS = [
    {"name": "lead"},
    {"name": "sale", "conversion": True},
    {"name": "upsell", "conversion": True, "isDuplicate": True},
]
RULES = SenderRules(claim_seconds=2)


@pytest.fixture
def flow(make_flow):
    return make_flow(events=EVENTS)


@pytest.fixture
def fire(client, flow):
    """Record an event at a given time, as /api/v1/events does; its answer ``(status, error)``."""
    click_id = click_on(client, flow)
    start = utcnow()

    def send(seconds, event="upsell", rules=RULES, **fields):
        fields = dict(
            {"cid": flow["key"], "transaction_id": click_id, "event_id": event, "revenue": "5"}, **fields
        )
        pairs = [(name, value) for name, value in fields.items() if value is not None]
        inbound = make_inbound("events", "POST", "127.0.0.1", pairs)
        outcome = record_conversion(inbound, rules, now=start + datetime.timedelta(seconds=seconds))
        return outcome.http_status, outcome.error

    return send


CLAIMED = (
    403,
    "the same transaction_id and event_id is claimed for 2 s by an earlier request; retry later",
)


def test_the_claim_covers_an_event_that_allows_duplicates_for_its_window(fire):
    assert fire(0) == (200, None)
    assert fire(1.9) == CLAIMED
    assert fire(2.0) == (200, None)  # a repeat after the window counts again
    assert fire(2.5) == CLAIMED
    assert [c.event for c in conversions()] == ["upsell", "upsell"]


def test_a_duplicate_of_an_event_without_duplicates_is_403_then_400(fire):
    assert fire(0, "lead") == (200, None)
    assert fire(1, "lead") == CLAIMED
    status, error = fire(3, "lead")
    assert (status, error.startswith("duplicate: event 'lead' already fired")) == (400, True)
    assert fire(3.1, "lead")[0] == 400  # the duplicate recorded nothing: its claim is given back


def test_a_first_request_that_records_nothing_releases_the_claim(fire):
    status, error = fire(0, "sale", revenue=None)
    assert (status, error) == (400, "revenue is required: 'sale' is a conversion event")
    assert fire(0.1, "sale", revenue="9") == (200, None)  # the corrected resend, not refused
    assert [c.event for c in conversions()] == ["sale"]


def test_pairs_are_claimed_apart_and_expired_claims_are_cleared(fire):
    assert fire(0, "lead") == (200, None)
    assert fire(0, "sale") == (200, None)
    assert RequestLock.select().count() == 2
    assert fire(10, "upsell") == (200, None)
    assert [lock.key.rsplit(":", 1)[1] for lock in RequestLock.select()] == ["upsell"]


def test_the_window_is_configurable(make_app, make_flow):
    app = make_app(TRACKER_EVENT_CLAIM_SECONDS="0.5")
    assert app.config["TRACKER_EVENT_CLAIM_SECONDS"] == 0.5
    client = app.test_client()
    flow = make_flow(events=EVENTS)
    click_id = click_on(client, flow)
    body = {"cid": flow["key"], "transaction_id": click_id, "event_id": "upsell", "amount": "5"}
    before = utcnow()
    assert client.post("/api/v1/events", json=body).status_code == 200
    after = utcnow()
    assert client.post("/api/v1/events", json=body).status_code == 403
    claimed_at = RequestLock.get().expires_at - datetime.timedelta(seconds=0.5)
    assert before <= claimed_at <= after
