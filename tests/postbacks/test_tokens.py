"""Token rules a user relies on, in both spellings: filters on ``<name|filter>`` as on
``{name|filter}``, each sub id alias reading its own sub id, custom names read whatever their
case, and a JSON template's escaped quotes not confusing where a token stands."""

import datetime
import hashlib
import json
from decimal import Decimal

import pytest

from tracker import tokens
from tracker.dashboard.postback_editor import token_rows
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


def test_with_nothing_known_every_token_is_empty_and_none_fails():
    names = sorted(tokens.REGISTRY) + [
        "req.qs.gclid",
        "var:adid",
        "req.cookie._fbp",
        "req.sessiondata.a.b",
        "adid",
    ]
    template = "&".join("%s={%s}" % (name, name) for name in names)
    assert fill_url(template, TokenContext()) == "&".join("%s=" % name for name in names)
    flow_only = TokenContext(flow=Flow(id=7, name="F", currency="EUR"))
    assert fill_url("{campaign.id}/{flow.name}/{offer.id}/{currency}/{sub1}", flow_only) == "7/F/7/EUR/"


def test_the_flow_id_of_a_click_without_its_flow_loaded_is_the_clicks():
    click = Click(click_id="c1", flow=9, params={}, cookies={}, created_at=NOW)
    assert fill_url("https://pb.example/?f={campaign_id}&o={offer.id}", TokenContext(click=click)) == (
        "https://pb.example/?f=9&o=9"
    )


def test_a_referrer_without_a_host_has_an_empty_domain():
    assert fill_url("?d={referrerdomain}", context(referrer="about:blank")) == "?d="
    assert fill_url("?d={referrerdomain}", context(referrer="https://News.Example/a")) == "?d=news.example"
    # a visitor's Referer may be anything: one urllib cannot split has no domain (it raised,
    # and the click of a flow with a click postback using the token went to the spool)
    for referrer in ("http://[::1/x", "http://[abc]/x", "https://[2001:db8::1/"):
        assert fill_url("?d={referrerdomain}", context(referrer=referrer)) == "?d="


def test_true_and_false_lead_values_are_1_and_0():
    ctx = TokenContext(click=context().click, lead={"consent": True, "optout": False, "nested": {"ok": True}})
    template = "https://pb.example/?c={consent}&o={optout}&n={req.sessiondata.nested.ok}"
    assert fill_url(template, ctx) == "https://pb.example/?c=1&o=0&n=1"


def test_a_bare_family_prefix_is_no_family_but_a_custom_name():
    ctx = context(params={"var:": "v", "req.qs.": "q"})
    assert fill_url("https://pb.example/?a={var:}&b={req.qs.}", ctx) == "https://pb.example/?a=v&b=q"
    errors, warnings = templates.check("https://pb.example/?a={var:}&b={req.qs.gclid}&c={my_long_custom}")
    assert errors == [] and [w.split(" ")[0] for w in warnings] == ["{var:}", "{my_long_custom}"]


def test_the_token_reference_gives_each_token_its_aliases_triggers_and_meaning():
    rows = {row["name"]: row for row in token_rows()["tokens"]}
    assert rows["payout"] == {
        "name": "payout",
        "aliases": ("publisherrevenue", "revenue", "cash", "conversion.payout"),
        "doc": "the conversion's payout",
        "triggers": ("conversion", "status", "payout"),
    }
    assert rows["sub3"]["aliases"] == ("subid3",) and rows["sub3"]["doc"] == "sub id 3 from the click"
    assert rows["click_id"]["triggers"] == ("click", "conversion", "status", "payout")
    assert all(row["doc"] and isinstance(row["aliases"], tuple) for row in rows.values())
    assert resolve("PAYOUT", context()) == resolve("Conversion.Payout", context()) == Decimal("12.50")


def test_the_leads_own_place_wins_over_geoip_and_an_empty_one_does_not():
    click = context(country="US", region="Texas", city="Austin", zip="73301").click
    lead = {"country_code": "de", "state": "", "city": "Berlin", "postal": "10115"}
    ctx = TokenContext(click=click, lead=lead)
    assert fill_url("?c={country}&r={region}&t={city}&z={zip}", ctx) == "?c=de&r=Texas&t=Berlin&z=10115"


def test_an_empty_lead_value_does_not_hide_the_clicks_parameter():
    click = context(params={"email": "click@example.com", "advertisername": "", "advertiser": "Acme"}).click
    ctx = TokenContext(click=click, lead={"email": "", "phone": None})
    assert fill_url("?e={email}&a={advertiser}", ctx) == "?e=click%40example.com&a=Acme"


def test_the_click_url_keeps_the_trackers_base_url_as_written():
    for base in ("https://go.example/PX/", "https://go.example/PX"):
        ctx = TokenContext(click=context().click, public_url=base)
        assert fill_url("{click_url|raw}", ctx) == "https://go.example/PX/click?click_id=c1"
