"""Each refusal names the field the sender got wrong and shows its value (cut at 80 characters),
so the sender can fix the right parameter; found by mutation testing (README "Mutation testing")."""

import pytest

from tracker.conversions.claims import Refused, parse_event_request, parse_postback, parse_status

CLICK = "0mk1w2x3a9f0c1d2e3f4g5h6i"
EVENT = {"cid": "Key1", "event_id": "sale", "transaction_id": CLICK}


def reason(parse, params):
    with pytest.raises(Refused) as info:
        parse(params)
    assert info.value.status == 400
    return info.value.reason


def test_an_unreplaced_macro_is_named_by_its_field():
    assert reason(parse_postback, {"click_id": CLICK, "status": "{status}"}).startswith(
        "status is '{status}', an unreplaced macro"
    )
    assert reason(parse_event_request, dict(EVENT, pid="[pid]")).startswith(
        "pid is '[pid]', an unreplaced macro"
    )
    assert reason(parse_event_request, dict(EVENT, cid="{cid}")).startswith(
        "cid is '{cid}', an unreplaced macro"
    )
    assert reason(parse_event_request, dict(EVENT, event_id="{goal}")).startswith(
        "event_id is '{goal}', an unreplaced macro"
    )
    assert (
        reason(parse_event_request, dict(EVENT, event_id="e" * 101))
        == "event_id is longer than 100 characters"
    )
    assert reason(parse_event_request, dict(EVENT, cost="{cost}")).startswith(
        "cost is '{cost}', an unreplaced macro"
    )


def test_a_cost_that_is_no_number_is_refused_as_the_cost():
    assert reason(parse_event_request, dict(EVENT, cost="ten")) == "cost 'ten' is not a number"
    assert reason(parse_event_request, dict(EVENT, cost="1,5")).startswith("cost '1,5' is ambiguous")


def test_long_values_are_shown_cut_at_80_characters():
    long = "x" * 100
    assert reason(parse_status, long).startswith("status %r is not one of" % ("x" * 80))
    assert reason(parse_event_request, dict(EVENT, cost="1", cost_operation=long)) == (
        "cost_operation %r is not one of add, subtract, override" % ("x" * 80)
    )


def test_a_traffic_source_of_200_characters_is_taken_and_201_refused():
    assert parse_event_request(dict(EVENT, pid="s" * 200)).source == "s" * 200
    assert reason(parse_event_request, dict(EVENT, pid="s" * 201)) == (
        "pid is longer than 200 characters: it is a traffic source's id or name"
    )


def test_a_cid_longer_than_a_flow_key_is_read_as_its_first_32_characters():
    assert parse_event_request(dict(EVENT, cid="K" * 40)).flow_key == "K" * 32
