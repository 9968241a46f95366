"""Token rules a user relies on, in both spellings: filters on ``<name|filter>`` as on
``{name|filter}``, each sub id alias reading its own sub id, custom names read whatever their
case, and a JSON template's escaped quotes not confusing where a token stands."""

import datetime
import hashlib
import json
from decimal import Decimal

import pytest

from tracker.models import Click, Conversion, Flow
from tracker.postbacks import templates
from tracker.tokens import TokenContext, fill_url, resolve

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)


def context(**click_fields):
    flow = Flow(id=7, name="F", key="k", offer_url="https://offer.example/", currency="USD")
    click = Click(click_id="c1", flow=flow, created_at=NOW, **{"params": {}, "cookies": {}, **click_fields})
    conversion = Conversion(
        id=3, click=click, event="lead", payout=Decimal("12.50"), currency="USD", status="approved",
        txid="T1", data={"email": " Jane.Doe@Example.com "}, created_at=NOW,
    )  # fmt: skip
    return TokenContext(click=click, flow=flow, conversion=conversion, now=NOW)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_filters_work_in_the_angle_bracket_spelling_too():
    ctx = context()
    expected = "https://pb.example/?e=" + sha256("jane.doe@example.com")
    assert fill_url("https://pb.example/?e=<email|sha256>", ctx) == expected
    assert fill_url("https://pb.example/?e={email|sha256}", ctx) == expected
    for template in (
        'https://pb.example/|JSON|{"em":"<email|sha256>"}',
        "https://pb.example/|POST|em=<EMAIL|SHA256>",
    ):
        body = templates.render(template, ctx).body
        assert sha256("jane.doe@example.com") in body and "Jane" not in body


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_each_sub_id_alias_reads_its_own_sub_id(n):
    ctx = context(**{"sub%d" % i: "value-%d" % i for i in range(1, 6)})
    assert resolve("subid%d" % n, ctx) == resolve("sub%d" % n, ctx) == "value-%d" % n


def test_a_custom_token_reads_its_parameter_whatever_the_case():
    ctx = context(params={"adid": "ad-991"})
    assert fill_url("https://pb.example/?a={ADID}&b=<AdId>", ctx) == "https://pb.example/?a=ad-991&b=ad-991"


def test_a_token_after_an_escaped_quote_is_encoded_for_where_it_stands():
    template = r'https://pb.example/|JSON|{"note":"say \"hi\"","value":{payout},"text":"a \" {event}"}'
    body = json.loads(templates.render(template, context()).body)
    assert body == {"note": 'say "hi"', "value": 12.5, "text": 'a " lead'}


def test_previews_and_test_deliveries_carry_the_time_of_now_not_a_sample_time(api):
    before = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    status, preview = api.post("/api/v1/postbacks/preview", json={"url": "https://pb.example/?t={now}"})
    assert status == 200
    status, delivery = api.post("/api/v1/postbacks/test", json={"url": "https://pb.example/?t={now}"})
    assert status == 201
    after = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    for url in (preview["url"], delivery["url"]):
        assert before <= int(url.rsplit("=", 1)[1]) <= after


def test_times_are_the_utc_instant_whatever_the_machines_zone(machine_in_new_york):
    template = "https://pb.example/?t={now}&c={click_time}&v={conversion_time}&i={event_time_iso}"
    assert fill_url(template, context()) == (
        "https://pb.example/?t=1714564800&c=1714564800&v=1714564800&i=2024-05-01T12%3A00%3A00Z"
    )
