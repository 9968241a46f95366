"""The two doors a conversion comes in by, side by side: the S2S postback (DESIGN §4.2) and
the Pingtree event API (§4.3). Both share every rule of ``record``; what differs between
them is data here, not branches there."""

from dataclasses import dataclass
from typing import Callable

from .claims import POSTBACK_ALIASES, parse_event_request, parse_postback


@dataclass(frozen=True)
class Contract:
    """How one endpoint names its fields and answers."""

    endpoint: str  # the inbound log's name for it
    click_id_names: tuple  # where the log finds the click id, even in a request refused early
    parse: Callable  # params -> Claim, or raises Refused
    event_field: str  # how a refusal names the event
    window_status: int  # the answer to a click outside the attribution window
    recorded: str  # the answer's status when a conversion is recorded
    duplicate_refused: bool  # a duplicate is 400 (else 200 "duplicate")
    flow_payout_default: bool  # a missing payout takes the flow's (else 0)
    revenue_required: bool  # a conversion event without revenue is refused
    claims_in_flight: bool  # the same transaction_id + event_id in flight gets 403
    updates_by_click: bool  # without a txid, a new status or payout updates the click's conversion


POSTBACK = Contract(
    endpoint="postback",
    click_id_names=POSTBACK_ALIASES["click_id"],
    parse=parse_postback,
    event_field="event",
    window_status=410,
    recorded="ok",
    duplicate_refused=False,
    flow_payout_default=True,
    revenue_required=False,
    claims_in_flight=False,
    updates_by_click=True,
)

EVENTS = Contract(
    endpoint="events",
    click_id_names=("transaction_id",),
    parse=parse_event_request,
    event_field="event_id",
    window_status=400,  # the seed folds every unknown or unusable click into 400
    recorded="fired",
    duplicate_refused=True,
    flow_payout_default=False,
    revenue_required=True,
    claims_in_flight=True,
    updates_by_click=False,
)

CONTRACTS = {contract.endpoint: contract for contract in (POSTBACK, EVENTS)}
