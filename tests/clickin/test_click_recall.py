"""What the click-in reads back: the visitor's latest click on the flow within its window
(visitor binding, ``is_unique`` rules), and the bounds that let PostgreSQL read only the
partitions of that window (the id every click made since a moment is at least, the days)."""

import datetime

from tracker.clickin.record import (
    days_of,
    find_lander_click,
    ids_since,
    new_click_id,
    parse_cost,
    recall_visit,
    record_lander_click,
    record_orphan,
    unique_window,
)
from tracker.clickin.visitor import Visitor, visitor_hash
from tracker.db import db
from tracker.models import Click, Delivery, Flow, OrphanVisit, RollupDirty, utcnow

from postback_helpers import CLICK, NOW, make_click

HOUR = datetime.timedelta(hours=1)


def test_recall_finds_the_visitors_latest_click_on_this_flow_within_the_window(app, make_flow):
    flow, other_flow = make_flow()["id"], make_flow()["id"]
    with db.connection_context():
        make_click(flow, now=NOW - 3 * HOUR, visitor="v1", lander_id=1, offer_id=1)
        make_click(flow, now=NOW - HOUR, visitor="v1", lander_id=2, offer_id=2)  # the latest
        make_click(flow, now=NOW - HOUR / 2, visitor="v2", lander_id=3, offer_id=3)  # someone else
        make_click(other_flow, now=NOW - HOUR / 6, visitor="v1", lander_id=4, offer_id=4)  # elsewhere
        now = Click(flow=flow, visitor="v1", ip=CLICK["ip"], created_at=NOW)  # v1's address, as made
        assert recall_visit(now, 24 * HOUR) == (2, 2)
        assert recall_visit(now, 2 * HOUR) == (2, 2)
        assert recall_visit(now, HOUR) is None  # an hour old exactly: outside a window of an hour
        assert recall_visit(now, HOUR / 2) is None


def test_every_click_made_since_a_moment_has_an_id_at_or_above_its_bound(machine_in_new_york):
    moment = datetime.datetime(2024, 5, 1, 12, 0, 0)
    seconds = moment.replace(tzinfo=datetime.timezone.utc).timestamp()
    bound = ids_since(moment)
    # a minute early, for a clock read twice: the bound is a click id's time part one minute before
    assert bound == new_click_id(seconds - 60)[:9]
    assert new_click_id(seconds) >= bound and new_click_id(seconds - 59) >= bound
    assert new_click_id(seconds - 61) < bound


def test_the_days_of_a_window_are_each_midnight_from_its_first_day_to_its_last():
    day = datetime.datetime
    assert days_of(day(2024, 4, 30, 13, 5, 7, 9), day(2024, 5, 2)) == [
        day(2024, 4, 30),
        day(2024, 5, 1),
        day(2024, 5, 2),
    ]
    assert days_of(day(2024, 5, 1, 23), day(2024, 5, 1, 23, 30)) == [day(2024, 5, 1)]


def test_a_lander_click_marks_its_own_click_once_and_an_hour_already_rolled_up(app, make_flow):
    flow = make_flow()["id"]
    with db.connection_context():
        old = make_click(flow, now=NOW - 3 * HOUR, offer_id=None)  # an hour the worker rolled up
        fresh = make_click(flow, now=NOW - HOUR / 6)  # this hour: not rolled up yet
        untouched = make_click(flow, now=NOW - HOUR)
        for click, offer in ((old, 7), (fresh, None)):
            click.offer_id = offer
            record_lander_click(click, now=NOW)
        record_lander_click(old, now=NOW + HOUR)  # again: the first time stands
        rows = {c.click_id: (c.lp_clicked_at, c.offer_id) for c in Click.select()}
        assert rows == {
            old.click_id: (NOW, 7),
            fresh.click_id: (NOW, None),
            untouched.click_id: (None, None),
        }
        dirty = [(d.hour, d.flow_id) for d in RollupDirty.select()]
        assert dirty[0] == (datetime.datetime(2024, 5, 1, 9), flow)
        assert {hour for hour, _ in dirty} == {datetime.datetime(2024, 5, 1, 9)}


def test_a_lander_click_finds_the_click_it_names_among_others(app, make_flow):
    flows = [make_flow(), make_flow()]
    with db.connection_context():
        make_click(flows[0]["id"], now=NOW - HOUR)
        named = make_click(flows[1]["id"], now=NOW - HOUR / 2)
        make_click(flows[0]["id"], now=NOW - HOUR / 4)
        found = find_lander_click(named.click_id.upper())  # as a lander may spell it
        assert (found.click_id, found.flow.key) == (named.click_id, flows[1]["key"])
        assert find_lander_click(named.click_id[:-1] + "_") is None


def test_a_hit_on_no_flow_is_kept_with_who_came_and_when(app):
    visitor = Visitor(
        ip="198.51.100.7", user_agent="UA/1", referrer="https://ref.example/", params={"a": "1"}
    )
    with db.connection_context():
        record_orphan("nope", visitor, "unknown", now=NOW)
        (orphan,) = OrphanVisit.select()
        assert (orphan.created_at, orphan.key, orphan.reason, orphan.ip, orphan.user_agent) == (
            NOW,
            "nope",
            "unknown",
            "198.51.100.7",
            "UA/1",
        )
        assert (orphan.referrer, orphan.params) == ("https://ref.example/", {"a": "1"})


def test_a_click_on_a_flow_with_a_click_postback_is_saved_with_its_delivery(client, make_flow):
    flow = make_flow(
        offer_url="https://offer.example/?cid={clickid}",
        postbacks=[{"trigger": "click", "url": "https://pb.example/c?cid={clickid}"}],
    )
    plain = make_flow(offer_url="https://offer.example/?cid={clickid}")
    assert client.get("/r/" + flow["key"]).status_code == 302
    assert client.get("/r/" + plain["key"]).status_code == 302
    with db.connection_context():
        click = Click.get(Click.flow == flow["id"])
        assert [(d.trigger, d.url, d.created_at) for d in Delivery.select()] == [
            ("click", "https://pb.example/c?cid=" + click.click_id, click.created_at)
        ]


def test_a_flow_with_click_postbacks_counts_uniques_in_its_own_window(client, make_flow):
    flow = make_flow(
        unique_window_hours=1,
        postbacks=[{"trigger": "click", "url": "https://pb.example/c?u={is_unique}"}],
    )
    visitor = {"environ_base": {"REMOTE_ADDR": "198.51.100.9"}, "headers": {"User-Agent": "UA/1"}}
    with db.connection_context():  # the same visitor two hours ago: outside a window of one hour
        make_click(flow["id"], now=utcnow() - 2 * HOUR, visitor=visitor_hash("198.51.100.9", "UA/1"))
    assert client.get("/r/" + flow["key"], **visitor).status_code == 302
    with db.connection_context():
        latest = Click.select().order_by(Click.created_at.desc()).first()
        assert latest.is_unique is True


def test_a_flow_without_a_window_of_its_own_counts_a_visitor_once_a_day():
    assert unique_window(Flow(unique_window_hours=None)) == 24 * HOUR
    assert unique_window(Flow(unique_window_hours=6)) == 6 * HOUR


def clicked(client, flow, query, **kwargs):
    """Click ``flow`` with ``query``; the Click row written."""
    assert client.get("/r/%s?%s" % (flow["key"], query), **kwargs).status_code == 302
    with db.connection_context():
        return Click.select().order_by(Click.created_at.desc(), Click.click_id.desc()).first()


def test_absent_parameters_leave_their_columns_empty_and_a_value_is_cut_past_255(client, make_flow):
    flow = make_flow(offer_url="https://offer.example/?cid={clickid}")
    bare = clicked(client, flow, "x=1")
    assert (bare.sub1, bare.utm_source, bare.var1, bare.external_id, bare.cut) == ("", "", "", "", [])
    fits = clicked(client, flow, "sub1=" + "a" * 255)
    assert (fits.sub1, fits.cut) == ("a" * 255, [])
    cut = clicked(client, flow, "sub1=" + "b" * 256)
    assert (cut.sub1, cut.cut) == ("b" * 255, ["sub1"])


def test_tiktok_and_snapchat_click_ids_stand_in_for_their_missing_cookies(client, make_flow):
    flow = make_flow(offer_url="https://offer.example/?cid={clickid}")
    fresh = clicked(client, flow, "ttclid=E.C.P.tt1&ScCid=sc-1")
    assert (fresh.cookies.get("ttclid"), fresh.cookies.get("ScCid")) == ("E.C.P.tt1", "sc-1")
    alone = clicked(client, flow, "ttclid=E.C.P.tt3")  # no fbclid: no _fbc made up
    assert alone.cookies == {"ttclid": "E.C.P.tt3"}
    client.set_cookie("ttclid", "E.C.P.old")
    client.set_cookie("_fbc", "fb.1.1714560000.old")
    kept = clicked(client, flow, "ttclid=E.C.P.tt2&ScCid=sc-2&fbclid=new")  # the visitor's own stay
    assert (kept.cookies["ttclid"], kept.cookies["_fbc"], kept.cookies["ScCid"]) == (
        "E.C.P.old",
        "fb.1.1714560000.old",
        "sc-2",
    )


def test_a_clicks_cost_is_a_plain_amount_up_to_a_billion_and_anything_else_is_zero():
    readings = {
        None: "0",
        "": "0",
        "0.35": "0.35",
        " 1,5 ": "1.5",  # a decimal comma
        "100": "100",
        "1000000000": "1000000000",  # a billion, exactly
        "1000000000.01": "0",
        "3000000000": "0",
        "-1": "0",
        "NaN": "0",
        "Infinity": "0",
        "1e3": "1E+3",
        "abc": "0",
    }
    assert {value: str(parse_cost(value)) for value in readings} == readings


def test_a_click_id_is_25_characters_of_0_to_9_and_a_to_z_its_time_first():
    first, later = new_click_id(1714564800.0), new_click_id(1714564800.001)
    assert len(first) == len(later) == 25
    assert set(first + later) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert first[:9] < later[:9]
