"""Conversions: where an advertiser's postback or event becomes a ``Conversion`` row.

``record_conversion`` is the one write path of ``/postback`` and ``/api/v1/events``: it checks
the sender, reads the claim, attributes it to a click within the attribution window, and in
one short transaction writes the conversion (or finds the one already there), its history
row, the click's merged lead profile, the outgoing deliveries it triggers and the inbound log
row. Exactly-once comes from the unique index on (click, event, dedup_key): the INSERT is
attempted, and a conflict means the conversion exists. Every request leaves an
``InboundRequest`` row, refused ones included.

On the event API, every ``transaction_id`` + ``event_id`` pair is claimed for
``TRACKER_EVENT_CLAIM_SECONDS`` from its first request (``RequestLock``): the others within
that time get 403, so identical requests sent together count once however they are queued;
a first request that records nothing gives its claim back at once.
"""

import datetime
import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from peewee import JOIN, SQL, Case, IntegrityError, fn

from ..clickin.flow_cache import generation
from ..clickin.spool import may_be_spooled
from ..currency import convert, rate_of
from ..db import INDEXED, Prepared, PreparedInsert, Rows, db, is_postgres
from ..masking import mask_mapping
from ..models import (
    CLICK_COPIED,
    Click,
    Conversion,
    ConversionChange,
    Flow,
    FlowEvent,
    InboundRequest,
    Offer,
    RequestLock,
    TrafficSource,
    utcnow,
)
from ..postbacks import leads, outbox
from ..reports import rollups
from .claims import Refused, check_sender, first
from .contracts import CONTRACTS

logger = logging.getLogger(__name__)

# How far a conversion_date may stand before its click, or ahead of now, and still be taken
# (as the click's time, or as now): clock skew, a date-only value, summer time sent as EST.
BEFORE_CLICK = datetime.timedelta(hours=1)
AHEAD_OF_NOW = datetime.timedelta(minutes=5)


@dataclass
class Outcome:
    """The answer to an inbound request: HTTP status, and the JSON body's fields."""

    http_status: int
    status: str  # ok | duplicate | updated | fired | error
    conversion_id: int = None
    error: str = None

    def to_json(self):
        """The answer's JSON body."""
        return {"status": self.status, "conversion_id": self.conversion_id, "error": self.error}


@dataclass
class Trace:
    """What became known about a request on its way, for its log row."""

    click_id: str = ""
    flow_id: int = None
    notes: list = None  # what the log should say beside the outcome


def record_conversion(inbound, rules, now=None):
    """Record the conversion ``inbound`` claims, under ``rules``; return its ``Outcome``.

    Never raises: a refusal or a failure is answered and logged like any other outcome.
    """
    now = now or utcnow()
    trace = Trace(notes=[])
    try:
        return _record(inbound, rules, now, trace)
    except Refused as refusal:
        outcome = Outcome(refusal.status, "error", refusal.conversion_id, refusal.reason)
    except Exception:
        logger.exception("could not record a conversion from %s %.2000r", inbound.endpoint, inbound.params)
        outcome = Outcome(500, "error", None, "internal error: the conversion was not recorded; retry later")
    try:
        log_inbound(inbound, outcome, trace, now).save(force_insert=True)
    except Exception:
        logger.exception("could not log an inbound %s request %.2000r", inbound.endpoint, inbound.params)
    return outcome


def _record(inbound, rules, now, trace):
    contract = CONTRACTS[inbound.endpoint]
    trace.click_id = first(inbound.params, contract.click_id_names) or ""
    if inbound.body_error:
        raise Refused(*inbound.body_error)
    check_sender(inbound, rules)
    claim = contract.parse(inbound.params)
    click, flow = find_click(claim, trace)
    occurred = settle_time(claim, click, now, trace)
    check_window(click, flow, rules, occurred, contract)
    event = settle_event(claim, click, flow, contract)
    check_source(claim.source)
    if not contract.claims_in_flight:
        return write(contract, inbound, claim, click, flow, event, now, occurred, trace, rules)
    key = "events:%s:%s" % (claim.click_id, claim.event)
    expires = claim_pair(key, now, rules.claim_seconds)
    try:
        return write(contract, inbound, claim, click, flow, event, now, occurred, trace, rules)
    except BaseException:
        release_claim(key, expires)  # nothing recorded: a corrected resend must not be refused
        raise


def click_and_flow_query(slot):
    """The click, its flow, the flow's traffic source (NULLs when none), and the event of the
    click's one conversion with txid ``txid`` (NULL unless exactly one): one round trip. The
    conversions are found by the click id given, not the click row's: PostgreSQL then reads
    them by their (click, event, txid) index whatever its statistics say (correlated, it chose
    to scan the table while its statistics held it empty)."""
    txid_event = Conversion.select(
        Case(None, [(fn.COUNT(SQL("*")) == 1, fn.MIN(Conversion.event))], None)
    ).where(Conversion.click == slot("id"), Conversion.dedup_key == slot("txid"))
    return (
        Click.select(Click, Flow, TrafficSource, txid_event)
        .join(Flow)
        .join(TrafficSource, JOIN.LEFT_OUTER, on=Flow.traffic_source == TrafficSource.id)
        .where(Click.click_id == slot("id"))
    )


# The hot path's reads and writes, their SQL made once per engine (db.Prepared): generating it
# was a third of a postback's time.
CLICK_AND_FLOW = Prepared(click_and_flow_query, INDEXED)  # see db.INDEXED
CLICK_AND_FLOW_ROWS = Rows(Click, Flow, TrafficSource)
FLOW_EVENTS = Prepared(lambda slot: FlowEvent.select().where(FlowEvent.flow == slot("flow")))
FLOW_EVENT_ROWS = Rows(FlowEvent)
OFFER = Prepared(lambda slot: Offer.select().where(Offer.id == slot("id")))
OFFER_ROWS = Rows(Offer)
INSERT_LOG = PreparedInsert(InboundRequest)
INSERT_CHANGE = PreparedInsert(ConversionChange)
COPIED_FROM_CLICK = {"click_" + name: Click._meta.fields[name] for name in CLICK_COPIED}
CONVERSION_FIELDS = [field for field in Conversion._meta.sorted_fields if field is not Conversion.id]
CONVERSION_TO_DB = [
    (field.name, field.db_value) for field in CONVERSION_FIELDS if field.name not in COPIED_FROM_CLICK
]


def _value_of(field, slot):
    """What the conversion's INSERT writes in ``field``: the click's own column for its copies
    of the click (``models.CLICK_COPIED``), else the value given."""
    copied = COPIED_FROM_CLICK.get(field.name)
    return slot(field.name) if copied is None else copied


def insert_conversion_query(slot):
    """INSERT the conversion unless (click, event, dedup_key) exists; the id when inserted.

    One statement instead of a savepoint, the INSERT and a release (or a rollback). Its SELECT
    finds the click in the same statement: on PostgreSQL, where the click table is partitioned
    and no foreign key guards a conversion's click (``operations.partitions``), a conversion is never
    written for a click that retention removed meanwhile. It copies what reports need of the
    click onto the conversion as it goes (``models.CLICK_COPIED``).
    """
    click = Click.select(*[_value_of(field, slot) for field in CONVERSION_FIELDS]).where(
        Click.click_id == slot("click")
    )
    target = (Conversion.click, Conversion.event, Conversion.dedup_key)
    return (
        Conversion.insert_from(click, CONVERSION_FIELDS)
        .on_conflict(conflict_target=target, action="NOTHING")
        .returning(Conversion.id)
    )


# Planned with db.INDEXED, as what the conversion's transaction plans after it.
INSERT_CONVERSION = Prepared(insert_conversion_query, INDEXED)


def find_click(claim, trace):
    """The claimed click and its flow; 404 for an unknown click (400 on the event API)."""
    row = CLICK_AND_FLOW.first({"id": claim.click_id, "txid": claim.txid or None})
    click = None
    if row is not None:
        click, flow, source = CLICK_AND_FLOW_ROWS.build(row[:-1])
        click.__rel__["flow"] = flow
        flow.__rel__["traffic_source"] = source if source.id is not None else None
        click.txid_event = row[-1]
    if click is None and may_be_spooled(claim.click_id):
        raise Refused(
            503, "click_id %r is not written yet (it may wait in a click spool): retry" % claim.click_id
        )
    if claim.flow_key is None:
        if click is None:
            raise Refused(404, "click_id %r is not a click of ours" % claim.click_id)
        trace.flow_id = click.flow_id
        return click, click.flow
    flow = Flow.live().where(Flow.key == claim.flow_key).first()
    if flow is None:
        raise Refused(400, "cid %r is invalid: no campaign (flow) has this key" % claim.flow_key)
    trace.flow_id = flow.id
    if click is None or click.flow_id != flow.id:
        raise Refused(
            400,
            "transaction_id %r is invalid: it is no click of campaign %r" % (claim.click_id, claim.flow_key),
        )
    return click, flow


def settle_time(claim, click, now, trace):
    """When the conversion happened: ``conversion_date`` if given (DESIGN §4.2), else now.

    A time up to an hour before the click (or a date-only value on the click's own day) is
    taken as the click's time, and up to 5 minutes ahead as now, each noted in the log;
    further before the click or ahead is refused with 400.
    """
    occurred = claim.occurred
    if occurred is None:
        return now
    at, shown = occurred.at, "conversion_date %r (%s UTC)" % (occurred.text, occurred.at.isoformat(" "))
    if at > now + AHEAD_OF_NOW:
        raise Refused(400, "%s is in the future" % shown)
    if at > now:
        trace.notes.append("%s is ahead of now by %d s: taken as now" % (shown, (at - now).total_seconds()))
        return now
    if at >= click.created_at:
        return at
    same_day = occurred.date_only and click.created_at < at + datetime.timedelta(days=1)
    if same_day or click.created_at - at <= BEFORE_CLICK:
        trace.notes.append("%s is before the click: taken as the click's time" % shown)
        return click.created_at
    raise Refused(
        400, "%s is before the click (%s UTC)" % (shown, click.created_at.isoformat(" ", "seconds"))
    )


def check_window(click, flow, rules, occurred, contract):
    """Refuse a conversion that happened after the flow's (or the default) attribution window."""
    days = flow.attribution_days or rules.attribution_days
    age = occurred - click.created_at
    if age > datetime.timedelta(days=days):
        raise Refused(
            contract.window_status,
            "the click is %d days old, outside the %d-day attribution window" % (age.days, days),
        )


# Each flow's events by name and its conversion postbacks, kept in this process for
# FLOW_RULES_SECONDS per version of the flow: its ``updated_at``, which every change of them
# through the tracker moves, and the flow caches' generation, which ``forget_flows`` moves. A
# conversion reads the flow with its click, and these two lists then cost no round trip; a change
# made in SQL behind the tracker's back is seen within the TTL, as by the click path.
FLOW_RULES_SECONDS = 2.0
_flow_rules = {}  # (flow id, updated_at) -> (expires, generation, events, postbacks)


def flow_rules(flow):
    """``(events by name, conversion postbacks)`` of ``flow``, as of its ``updated_at``."""
    key, now = (flow.id, flow.updated_at), time.monotonic()
    kept = _flow_rules.get(key)
    if kept is not None and kept[0] > now and kept[1] == generation():
        return kept[2], kept[3]
    rows = FLOW_EVENTS.execute({"flow": flow.id}).fetchall()
    events = {event.name: event for (event,) in map(FLOW_EVENT_ROWS.build, rows)}
    postbacks = outbox.conversion_postbacks(flow.id)
    if len(_flow_rules) > 10000:
        _flow_rules.clear()
    _flow_rules[key] = (now + FLOW_RULES_SECONDS, generation(), events, postbacks)
    return events, postbacks


def settle_event(claim, click, flow, contract):
    """Fix the claim's event and currency by the flow's rules; return its FlowEvent or None."""
    events, _ = flow_rules(flow)
    if claim.event is None and claim.txid:
        claim.event = click.txid_event  # a status update that omits the event
    field = contract.event_field
    if claim.event is None and events and "conversion" not in events:
        raise Refused(400, "%s is required: this flow defines %s" % (field, ", ".join(sorted(events))))
    claim.event = claim.event or "conversion"
    event = events.get(claim.event)
    if events and event is None:
        raise Refused(
            400,
            "%s %r is not defined on this flow (defined: %s)"
            % (field, claim.event, ", ".join(sorted(events))),
        )
    if contract.revenue_required and claim.payout is None and event is not None and event.conversion:
        raise Refused(400, "revenue is required: %r is a conversion event" % claim.event)
    claim.currency = claim.currency or offer_defaults(click, flow)[1]
    return event


def offer_defaults(click, flow):
    """``(payout, currency)`` that conversions of ``click`` default to: those of the offer
    its flow's routes sent it to (DESIGN §4.7), else the flow's."""
    if click.offer_id is not None:
        row = OFFER.first({"id": click.offer_id})
        if row is not None:
            (offer,) = OFFER_ROWS.build(row)
            return offer.payout, offer.currency
    return flow.payout, flow.currency


def check_source(source):
    """The event API's ``pid``, a traffic source's id or name: an unknown one is 400, an
    inactive one 403."""
    if source is None:
        return
    found = None
    if source.isascii() and source.isdigit() and len(source) <= 18:
        found = TrafficSource.get_or_none(TrafficSource.id == int(source))
    if found is None:
        named = list(TrafficSource.select().where(fn.LOWER(TrafficSource.name) == source.lower()).limit(2))
        if len(named) > 1:
            raise Refused(400, "pid %r is ambiguous: several traffic sources have this name" % source[:80])
        found = named[0] if named else None
    if found is None:
        raise Refused(400, "pid %r is invalid: no traffic source has this id or name" % source[:80])
    if not found.active:
        raise Refused(403, "source %s is inactive" % source[:80])


def claim_pair(key, now, seconds):
    """Claim ``key`` for ``seconds`` from now (an expired claim is taken over); 403 when another
    request holds it. Expired claims of other pairs are cleared on the way."""
    expires = now + datetime.timedelta(seconds=seconds)
    try:
        RequestLock.insert(key=key, expires_at=expires).execute()
    except IntegrityError:
        taken = (
            RequestLock.update(expires_at=expires)
            .where(RequestLock.key == key, RequestLock.expires_at <= now)
            .execute()
        )
        if not taken:
            raise Refused(
                403,
                "the same transaction_id and event_id is claimed for %g s by an earlier "
                "request; retry later" % seconds,
            ) from None
        return expires
    RequestLock.delete().where(RequestLock.expires_at < now).execute()
    return expires


def release_claim(key, expires):
    """Give back our claim on ``key`` (not one that took ours over after it expired)."""
    try:
        RequestLock.delete().where(RequestLock.key == key, RequestLock.expires_at == expires).execute()
    except Exception:
        logger.exception("could not release the claim %r", key)


def dedup_key(claim, event):
    """The uniqueness key beside (click, event): the txid, '' once per event, or fresh."""
    if claim.txid:
        return claim.txid
    if event is not None and event.allow_duplicates:
        return "dup:" + secrets.token_hex(12)
    return ""


def write(contract, inbound, claim, click, flow, event, now, occurred, trace, rules=None):
    """The one transaction: the conversion (new, found or updated), its history, the click's
    lead profile, deliveries, log."""
    payout = (
        claim.payout
        if claim.payout is not None
        else (offer_defaults(click, flow)[0] if contract.flow_payout_default else 0)
    )
    conversion = Conversion(
        click=click,
        flow=flow,
        event=claim.event,
        payout=payout,
        currency=claim.currency,
        status=claim.status or "approved",
        txid=claim.txid,
        dedup_key=dedup_key(claim, event),
        is_conversion=event is None or event.conversion,
        data=claim.data,
        raw=mask_mapping(inbound.params),
        created_at=occurred,
        updated_at=now,
    )
    conversion.rate, conversion.report_payout = report_payout(payout, claim.currency, rules)
    with db.atomic():
        if contract.updates_by_click and conversion.dedup_key == "":
            conversion.dedup_key = key_of_the_one_conversion(click, claim.event)
        data = conversion.__data__
        values = {name: to_db(data.get(name)) for name, to_db in CONVERSION_TO_DB}
        inserted = INSERT_CONVERSION.execute(values).fetchall()
        if not inserted:
            return write_existing(contract, inbound, claim, conversion, now, trace, rules)
        conversion.id = inserted[0][0]
        outcome = Outcome(200, contract.recorded, conversion.id)
        log = INSERT_LOG.run(log_inbound(inbound, outcome, trace, now, conversion))
        record_change(conversion, log, now)
        lead = leads.merge_into_profile(click.click_id, claim.data, now)
        postbacks = flow_rules(flow)[1]
        outbox.enqueue_for_conversion(conversion, None, now, lead, postbacks=postbacks, ids=False)
        if claim.cost is not None:
            update_cost(click, claim.cost, claim.cost_operation)
    return outcome


def report_payout(payout, currency, rules, rate=None):
    """``(rate, payout in TRACKER_CURRENCY)`` at ``rate`` or the stored rate in force now;
    ``(None, None)`` when there is none (reports convert it later, or show it apart)."""
    base = getattr(rules, "report_currency", None) or "USD"
    if rate is None:
        rate = rate_of(currency or "USD", base)
    if rate is None:
        return None, None
    return format(rate, "f"), convert(payout or 0, rate)


def key_of_the_one_conversion(click, event):
    """The dedup key a postback without a txid is recorded under: that of the click's one
    conversion of ``event`` when it was stored under a txid (so the postback updates it,
    DESIGN §4.2), else '' (once per click and event)."""
    keys = list(
        Conversion.select(Conversion.dedup_key)
        .where(Conversion.click == click.click_id, Conversion.event == event)
        .limit(2)
    )
    return keys[0].dedup_key if len(keys) == 1 else ""


def write_existing(contract, inbound, claim, attempted, now, trace, rules=None):
    """The conversion exists: a changed status or payout updates it (on /postback also without
    a txid: networks send ``status=rejected`` by click alone), the same again is a duplicate
    (200 on /postback, 400 on the event API)."""
    query = Conversion.select().where(
        Conversion.click == attempted.click_id,
        Conversion.event == attempted.event,
        Conversion.dedup_key == attempted.dedup_key,
    )
    existing = (query.for_update() if is_postgres() else query).first()
    if existing is None:  # no conflict: the click is gone (retention removed it meanwhile)
        raise Refused(404, "click_id %r is not a click of ours" % attempted.click_id)
    existing.click, existing.flow = attempted.click, attempted.flow  # already loaded
    previous = (existing.status, existing.payout)
    status = claim.status or existing.status  # an update may name only what changes
    payout = claim.payout if claim.payout is not None else existing.payout
    by_txid = claim.txid or contract.updates_by_click
    if not by_txid or (status, payout) == previous:
        if contract.duplicate_refused:
            raise Refused(
                400,
                "duplicate: event %r already fired for this transaction_id "
                "(the event does not allow duplicates)" % existing.event,
                existing.id,
            )
        outcome = Outcome(200, "duplicate", existing.id)
        log_inbound(inbound, outcome, trace, now, existing).save(force_insert=True)
        return outcome
    existing.status, existing.payout, existing.updated_at = status, payout, now
    currency = claim.currency if claim.payout is not None else existing.currency
    # the rate in force when the conversion was recorded, unless its currency changed
    kept = Decimal(existing.rate) if existing.rate and currency == existing.currency else None
    existing.currency = currency
    existing.rate, existing.report_payout = report_payout(payout, currency, rules, kept)
    existing.data = {**existing.data, **claim.data}
    existing.save()
    outcome = Outcome(200, "updated", existing.id)
    log = INSERT_LOG.run(log_inbound(inbound, outcome, trace, now, existing))
    record_change(existing, log, now)
    lead = leads.merge_into_profile(existing.click_id, claim.data, now)
    postbacks = flow_rules(existing.flow)[1]
    outbox.enqueue_for_conversion(existing, previous, now, lead, postbacks=postbacks, ids=False)
    return outcome


def record_change(conversion, log, now):
    """Keep the conversion's status and payout as of ``now`` in its history (written with the
    transaction's next statement)."""
    INSERT_CHANGE.defer(
        ConversionChange(
            conversion=conversion.id,
            at=now,
            status=conversion.status,
            payout=conversion.payout,
            inbound=log.id,
        )
    )


def update_cost(click, cost, operation):
    """Add, subtract or override the click's cost, in SQL (no read-then-write)."""
    if operation == "add":
        value = Click.cost + cost
    elif operation == "subtract":
        value = Click.cost - cost
    else:
        value = cost
    Click.update(cost=value).where(Click.click_id == click.click_id).execute()
    rollups.mark([(click.created_at, click.flow_id)])


def log_inbound(inbound, outcome, trace, now, conversion=None):
    """The (unsaved) inbound log row of a request and its outcome."""
    return InboundRequest(
        at=now,
        endpoint=inbound.endpoint,
        ip=inbound.ip,
        method=inbound.method,
        params=mask_mapping(inbound.params),
        http_status=outcome.http_status,
        accepted=outcome.http_status == 200,
        reason="; ".join([outcome.error or outcome_reason(outcome), *(trace.notes or [])]),
        result=outcome.status,
        flow_id=trace.flow_id,
        click_id=trace.click_id[:64],
        conversion=conversion.id if conversion is not None else outcome.conversion_id,
    )


def outcome_reason(outcome):
    """The log's reason for an accepted request."""
    return {
        "ok": "recorded",
        "fired": "event fired",
        "updated": "status or payout updated",
        "duplicate": "duplicate: already recorded, nothing new counted",
    }.get(outcome.status, "")
