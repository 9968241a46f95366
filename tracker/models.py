"""The peewee models: flows and sources, clicks, conversions, deliveries, users."""

import datetime
import json

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from .db import db
from .money import MoneyField


def utcnow():
    """The current UTC time, naive, as every timestamp is stored."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# The words of the contract (DESIGN §4.2, §4.4), defined once.
TRIGGERS = ("click", "conversion", "status", "payout")
CONVERSION_TRIGGERS = ("conversion", "status", "payout")
STATUSES = ("approved", "pending", "declined")
PAYOUT_TYPES = ("all", "payout", "debit")
DELIVERY_STATUSES = ("queued", "sending", "retrying", "delivered", "failed", "skipped")
ROUTE_ACTIONS = ("redirect", "not_found")  # DESIGN §4.7


# json.dumps with options builds a new encoder on every call; every click encodes three.
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JSONField(TextField):
    """A JSON document stored as text (portable across SQLite and PostgreSQL)."""

    def db_value(self, value):
        return None if value is None else JSON_ENCODER.encode(value)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Removable:
    """A model whose rows are marked ``deleted`` instead of removed (their clicks and
    conversions keep pointing at them for the reports)."""

    @classmethod
    def live(cls, *fields):
        """The rows that are not deleted."""
        return cls.select(*fields).where(cls.deleted == False)  # noqa: E712


class TrafficSource(BaseModel):
    name = CharField(max_length=200)
    click_id_param = CharField(max_length=100, default="")
    vars = JSONField(default=dict)  # {"var1": "zoneid", ...}
    postback_url = TextField(default="")
    postback_events = JSONField(default=list)  # event names; empty: every event
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class Flow(Removable, BaseModel):
    name = CharField(max_length=200)
    key = CharField(max_length=32, unique=True)
    offer_url = TextField()
    payout = MoneyField(default=0)
    currency = CharField(max_length=3, default="USD")
    attribution_days = IntegerField(null=True)  # None: TRACKER_ATTRIBUTION_DAYS
    fallback_url = TextField(default="")
    traffic_source = ForeignKeyField(TrafficSource, null=True, backref="flows", on_delete="SET NULL")
    paused = BooleanField(default=False)
    deleted = BooleanField(default=False)
    timezone = CharField(max_length=64, default="")  # '': TRACKER_TIMEZONE (hour and weekday rules)
    bind_visitors = BooleanField(default=False)  # the same visitor gets the same lander and offer
    unique_window_hours = IntegerField(default=24)  # is_unique, visitor binding, the tid cookie
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class FlowEvent(BaseModel):
    """An event a flow accepts. Only ``conversion`` events count as conversions (and need a
    revenue on the event API); ``allow_duplicates`` ones may repeat."""

    flow = ForeignKeyField(Flow, backref="events", on_delete="CASCADE")
    name = CharField(max_length=100)
    conversion = BooleanField(default=False)
    allow_duplicates = BooleanField(default=False)

    class Meta:
        indexes = ((("flow", "name"), True),)


class Postback(BaseModel):
    """An outgoing postback template on a flow (or a traffic source's own)."""

    flow = ForeignKeyField(Flow, null=True, backref="postbacks", on_delete="CASCADE")
    traffic_source = ForeignKeyField(TrafficSource, null=True, backref="postbacks", on_delete="CASCADE")
    name = CharField(max_length=200, default="")
    trigger = CharField(max_length=16)  # click | conversion | status | payout
    url = TextField()
    events = JSONField(default=list)
    statuses = JSONField(default=list)
    payout_type = CharField(max_length=8, default="all")  # all | payout | debit
    enabled = BooleanField(default=True)
    headers = JSONField(default=dict)  # {"Access-Token": "{template}"}
    success_body = TextField(default="")  # a regex a 2xx answer's body must match
    retry_4xx = BooleanField(default=False)  # retry any answer but 2xx (MomentScience)
    test_event_code = CharField(max_length=100, default="")  # added to test deliveries only
    created_at = DateTimeField(default=utcnow)


class Offer(Removable, BaseModel):
    """An offer a flow's routes send clicks to (DESIGN §4.7); its payout is the default of
    conversions on the clicks sent to it. Deleted offers stay for the reports' names."""

    name = CharField(max_length=200)
    url = TextField()
    payout = MoneyField(default=0)
    currency = CharField(max_length=3, default="USD")
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class Lander(Removable, BaseModel):
    """A landing page shown before the offer; it links on to ``{click_url}``."""

    name = CharField(max_length=200)
    url = TextField()
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class Route(Removable, BaseModel):
    """One way down a flow (DESIGN §4.7), in ``position`` order: its rules, weighted landers
    and offers. A route removed from its flow is kept ``deleted`` for the reports' names."""

    flow = ForeignKeyField(Flow, backref="routes", on_delete="CASCADE")
    position = IntegerField(default=0)
    name = CharField(max_length=200)
    enabled = BooleanField(default=True)
    is_default = BooleanField(default=False)
    action = CharField(max_length=16, default="redirect")  # redirect | not_found
    rules = JSONField(default=list)  # [{field, op, values}]
    landers = JSONField(default=list)  # [{lander_id, weight}]
    offers = JSONField(default=list)  # [{offer_id, weight}]
    deleted = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("flow", "position"), False),)


VAR_NAMES = ["var%d" % i for i in range(1, 11)]
SUB_NAMES = ["sub%d" % i for i in range(1, 6)]
UTM_NAMES = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]


class Click(BaseModel):
    click_id = CharField(max_length=32, primary_key=True)
    # No index of its own: (flow, created_at) below serves every lookup by flow.
    flow = ForeignKeyField(Flow, backref="clicks", on_delete="CASCADE", index=False)
    created_at = DateTimeField(default=utcnow)
    ip = CharField(max_length=45, default="")
    visitor = CharField(max_length=16, default="")  # hash of ip + user agent, for is_unique
    user_agent = TextField(default="")
    referrer = TextField(default="")
    language = CharField(max_length=35, default="")
    country = CharField(max_length=2, default="")
    country_name = CharField(max_length=100, default="")
    region = CharField(max_length=100, default="")
    city = CharField(max_length=100, default="")
    zip = CharField(max_length=20, default="")
    isp = CharField(max_length=200, default="")
    asn = IntegerField(null=True)
    carrier = CharField(max_length=200, default="")
    connection_type = CharField(max_length=30, default="")
    device_type = CharField(max_length=10, default="")
    brand = CharField(max_length=100, default="")
    model = CharField(max_length=100, default="")
    os = CharField(max_length=100, default="")
    os_version = CharField(max_length=50, default="")
    browser = CharField(max_length=100, default="")
    browser_version = CharField(max_length=50, default="")
    is_bot = BooleanField(default=False)
    is_unique = BooleanField(default=True)
    external_id = CharField(max_length=255, default="")
    sub1 = CharField(max_length=255, default="")
    sub2 = CharField(max_length=255, default="")
    sub3 = CharField(max_length=255, default="")
    sub4 = CharField(max_length=255, default="")
    sub5 = CharField(max_length=255, default="")
    utm_source = CharField(max_length=255, default="")
    utm_medium = CharField(max_length=255, default="")
    utm_campaign = CharField(max_length=255, default="")
    utm_term = CharField(max_length=255, default="")
    utm_content = CharField(max_length=255, default="")
    var1 = CharField(max_length=255, default="")
    var2 = CharField(max_length=255, default="")
    var3 = CharField(max_length=255, default="")
    var4 = CharField(max_length=255, default="")
    var5 = CharField(max_length=255, default="")
    var6 = CharField(max_length=255, default="")
    var7 = CharField(max_length=255, default="")
    var8 = CharField(max_length=255, default="")
    var9 = CharField(max_length=255, default="")
    var10 = CharField(max_length=255, default="")
    cost = MoneyField(default=0)
    params = JSONField(default=dict)
    cookies = JSONField(default=dict)
    cut = JSONField(default=list)  # names of the values that were cut to fit
    # Where the flow's routes sent the click (DESIGN §4.7); None for a flow without routes.
    route_id = IntegerField(null=True)
    lander_id = IntegerField(null=True)
    offer_id = IntegerField(null=True)
    lp_clicked_at = DateTimeField(null=True)  # when the visitor reached /click from the lander

    class Meta:
        indexes = (
            (("flow", "created_at"), False),
            (("flow", "visitor", "created_at"), False),
            # reports by external_id or ip page along these (queries.py, _value_page)
            (("flow", "external_id", "created_at"), False),
            (("flow", "ip", "created_at"), False),
        )


class OrphanVisit(BaseModel):
    """A hit on /r/<key> that matched no active flow, or on /click that matched no click."""

    created_at = DateTimeField(default=utcnow, index=True)
    key = CharField(max_length=255)
    reason = CharField(max_length=50)  # unknown | paused | unknown click (GET /click)
    ip = CharField(max_length=45, default="")
    user_agent = TextField(default="")
    referrer = TextField(default="")
    params = JSONField(default=dict)


class Conversion(BaseModel):
    click = ForeignKeyField(Click, backref="conversions", on_delete="CASCADE", column_name="click_id")
    flow = ForeignKeyField(Flow, backref="conversions", on_delete="CASCADE")
    event = CharField(max_length=100, default="conversion")
    payout = MoneyField(default=0)
    currency = CharField(max_length=3, default="USD")
    status = CharField(max_length=10, default="approved")
    txid = CharField(max_length=255, default="")
    # The uniqueness key beside (click, event): the txid, '' for "once per event",
    # or a fresh random value for events that allow duplicates without a txid.
    dedup_key = CharField(max_length=255, default="")
    # The event counts in conversions, CR and EPC (the flow marks it a conversion, or defines
    # no events); other events are reported as events (DESIGN §4.3).
    is_conversion = BooleanField(default=True)
    # The rate of ``currency`` in TRACKER_CURRENCY in force when the conversion was recorded,
    # and the payout at that rate (DESIGN §4.5); None when no rate was stored then (reports
    # convert it at the current rate, or show it apart as unconverted).
    rate = CharField(max_length=40, null=True)
    report_payout = MoneyField(null=True)
    data = JSONField(default=dict)  # lead data, for tokens
    raw = JSONField(default=dict)  # the request as received
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    # What reports need of the click, copied from it when the conversion is written (the INSERT
    # reads the click anyway; ``CLICK_COPIED``): a report then reads the period's conversions
    # alone, never joining them to the click table, which at ten million clicks stands far
    # outside the database's cache (issue 12). Of these a click changes only its offer (``/click``
    # from the lander), and ``clickin.record.record_lander_click`` updates the copies with it.
    click_created_at = DateTimeField(default=utcnow)
    click_is_bot = BooleanField(default=False)
    click_country = CharField(max_length=2, default="")
    click_region = CharField(max_length=100, default="")
    click_city = CharField(max_length=100, default="")
    click_isp = CharField(max_length=200, default="")
    click_connection_type = CharField(max_length=30, default="")
    click_device_type = CharField(max_length=10, default="")
    click_os = CharField(max_length=100, default="")
    click_browser = CharField(max_length=100, default="")
    click_ip = CharField(max_length=45, default="")
    click_external_id = CharField(max_length=255, default="")
    click_sub1 = CharField(max_length=255, default="")
    click_sub2 = CharField(max_length=255, default="")
    click_sub3 = CharField(max_length=255, default="")
    click_sub4 = CharField(max_length=255, default="")
    click_sub5 = CharField(max_length=255, default="")
    click_utm_source = CharField(max_length=255, default="")
    click_utm_medium = CharField(max_length=255, default="")
    click_utm_campaign = CharField(max_length=255, default="")
    click_utm_term = CharField(max_length=255, default="")
    click_utm_content = CharField(max_length=255, default="")
    click_route_id = IntegerField(null=True)
    click_lander_id = IntegerField(null=True)
    click_offer_id = IntegerField(null=True)

    class Meta:
        indexes = (
            (("click", "event", "dedup_key"), True),
            (("flow", "created_at"), False),
        )


# The click's columns a conversion keeps a copy of, each as ``click_<name>``.
CLICK_COPIED = tuple(
    field.name[len("click_") :] for field in Conversion._meta.sorted_fields if field.name.startswith("click_")
)


class CurrencyRate(BaseModel):
    """The value of one unit of ``code`` in TRACKER_CURRENCY (``PUT /api/v1/currency-rates``,
    ``tracker rates update``)."""

    code = CharField(max_length=3, primary_key=True)
    rate = CharField(max_length=40)  # a decimal as text: exact, any precision
    updated_at = DateTimeField(default=utcnow)


class RollupClick(BaseModel):
    """Clicks per UTC hour (per UTC day for the dimensions of many values), flow, reported
    dimension value and bot flag (DESIGN §6). ``dimension`` '' holds the flow's own totals
    (value ''). Kept by ``reports.rollups``."""

    hour = DateTimeField()
    flow_id = IntegerField()
    dimension = CharField(max_length=20)
    value = CharField(max_length=255)
    is_bot = BooleanField()
    clicks = IntegerField()
    unique_clicks = IntegerField()
    cost = MoneyField()
    lp_views = IntegerField()
    lp_clicks = IntegerField()

    class Meta:
        indexes = ((("dimension", "hour", "flow_id"), False),)


class RollupCombo(BaseModel):
    """Clicks per UTC day, flow, bot flag and combination of the dimensions of one ``kind``
    (``device``: country, device, OS, browser, connection; ``route``: route, lander, offer,
    country; ``sub1``: country, device, OS, sub1; the columns of the other kinds hold '' or
    NULL): what reports by several of them, or by one filtered on another, read (DESIGN §6).
    Kept by ``reports.rollups``."""

    kind = CharField(max_length=10)
    day = DateTimeField()
    flow_id = IntegerField()
    is_bot = BooleanField()
    country = CharField(max_length=2)
    device_type = CharField(max_length=10)
    os = CharField(max_length=100)
    browser = CharField(max_length=100)
    connection_type = CharField(max_length=30)
    route_id = IntegerField(null=True)
    lander_id = IntegerField(null=True)
    offer_id = IntegerField(null=True)
    sub1 = CharField(max_length=255, default="")
    clicks = IntegerField()
    unique_clicks = IntegerField()
    cost = MoneyField()
    lp_views = IntegerField()
    lp_clicks = IntegerField()

    class Meta:
        indexes = ((("kind", "day", "flow_id"), False),)


# The combination rows in the order of the dashboard's drill-down (country, then OS, then sub1),
# with every other column a report of the sub1 kind reads: a report grouping by leading columns
# of it (country,os,sub1; country,os; sub1 of one country and OS) reads the index alone, in
# group order, where it sorted every row it read (30-day country,os,sub1 over all flows at 1 M
# clicks on SQLite: the GROUP BY 1.15 s, now 0.6 s).
COMBO_ORDER = (
    "kind",
    "country",
    "os",
    "sub1",
    "device_type",
    "day",
    "flow_id",
    "is_bot",
    "clicks",
    "unique_clicks",
    "cost",
    "lp_views",
    "lp_clicks",
)
RollupCombo.add_index(RollupCombo.index(*COMBO_ORDER, name="rollup_combo_order"))

# PostgreSQL only: one flow's combination rows, where its reports read the whole kind by a
# parallel scan (one flow's 30-day country,os,sub1 at 10 M clicks: 0.60–0.72 s → 0.36–0.38 s;
# its country,os 0.18 s → 0.03 s). SQLite keeps the covering drill-down index for them; told the
# flow's share of the flows it took this one and was slower (its first pass 166 → 210 ms at
# 1 M clicks, and its second read the flow's rows once per picked prefix), so there it would
# only cost writes. Made with the schema (migrations.upgrade) and by step 14.
POSTGRES_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "rollup_combo_kind_flow_id_day" ON "rollup_combo" ("kind", "flow_id", "day")',
)


class RollupDirty(BaseModel):
    """A rolled-up hour of a flow whose clicks changed since (a lander click, a cost, a click
    written late): reports read it raw until the worker rolls it up again."""

    hour = DateTimeField()
    flow_id = IntegerField()


class LeadProfile(BaseModel):
    """The click's lead profile: the lead data of every conversion and event of the click,
    merged (later values win, empty ones never overwrite). Postbacks read lead tokens from it."""

    click = ForeignKeyField(Click, primary_key=True, on_delete="CASCADE", column_name="click_id")
    data = JSONField(default=dict)
    updated_at = DateTimeField(default=utcnow)


class ConversionChange(BaseModel):
    """The history of a conversion: its creation and every status or payout change."""

    conversion = ForeignKeyField(Conversion, backref="changes", on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    status = CharField(max_length=10)
    payout = MoneyField()
    inbound = BigIntegerField(null=True)  # the InboundRequest that caused it


class InboundRequest(BaseModel):
    """Every request to /postback or /api/v1/events, accepted or not, with the reason."""

    at = DateTimeField(default=utcnow)
    endpoint = CharField(max_length=20)  # postback | events
    ip = CharField(max_length=45, default="")
    method = CharField(max_length=10, default="GET")
    params = JSONField(default=dict)
    http_status = IntegerField()
    accepted = BooleanField(default=False)
    reason = TextField(default="")
    result = CharField(max_length=20, default="")  # ok | duplicate | updated | error
    flow_id = IntegerField(null=True)
    click_id = CharField(max_length=64, default="")
    conversion = ForeignKeyField(Conversion, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("flow_id", "at"), False), (("at",), False))


class RequestLock(BaseModel):
    """A short-lived claim on an idempotency key while its request is in flight."""

    key = CharField(max_length=255, primary_key=True)
    expires_at = DateTimeField()


class Delivery(BaseModel):
    """One outgoing request, rendered once at enqueue; the worker's queue row."""

    flow_id = IntegerField(null=True)
    click_id = CharField(max_length=32, null=True)
    conversion_id = BigIntegerField(null=True)
    postback = ForeignKeyField(Postback, null=True, on_delete="SET NULL")
    trigger = CharField(max_length=16)
    method = CharField(max_length=8, default="GET")
    url = TextField()
    headers = JSONField(default=dict)
    body = TextField(default="")
    success_body = TextField(default="")  # the postback's, as it was when this was rendered
    retry_4xx = BooleanField(default=False)
    status = CharField(max_length=10, default="queued")
    test = BooleanField(default=False)
    attempts_count = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_until = DateTimeField(null=True)
    # Set anew by every claim: an attempt records its outcome only while the row still bears
    # its claim's token, so one finished after its lease was taken over changes nothing.
    claim_token = BigIntegerField(default=0)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("status", "next_attempt_at"), False),
            (("flow_id", "created_at"), False),
            (("conversion_id",), False),
            (("click_id",), False),
        )


class DeliveryAttempt(BaseModel):
    delivery = ForeignKeyField(Delivery, backref="attempts", on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    status_code = IntegerField(null=True)
    duration_ms = FloatField(default=0)
    error = TextField(default="")
    response = TextField(default="")


class User(BaseModel):
    username = CharField(max_length=100, unique=True)
    password_hash = CharField(max_length=255)
    created_at = DateTimeField(default=utcnow)


class UserSession(BaseModel):
    """A dashboard session kept on the server (DESIGN §4.8): the cookie holds a random id,
    this row only its SHA-256, so logging out, a password change or a quiet spell of
    ``TRACKER_SESSION_DAYS`` ends it for good."""

    id_hash = CharField(max_length=64, primary_key=True)
    user_id = IntegerField(null=True, index=True)  # None: a visitor who has not logged in
    data = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    seen_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "user_session"


class ApiToken(BaseModel):
    name = CharField(max_length=100)
    token_hash = CharField(max_length=64, unique=True)
    may_reveal = BooleanField(default=False)  # may ask the API for unmasked secrets (?reveal=1)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)


class Setting(BaseModel):
    """Small key/value facts the app keeps: the one-time setup token, and so on."""

    key = CharField(max_length=100, primary_key=True)
    value = TextField()


ALL_MODELS = [
    TrafficSource,
    Flow,
    FlowEvent,
    Postback,
    Offer,
    Lander,
    Route,
    Click,
    OrphanVisit,
    Conversion,
    LeadProfile,
    ConversionChange,
    CurrencyRate,
    RollupClick,
    RollupCombo,
    RollupDirty,
    InboundRequest,
    RequestLock,
    Delivery,
    DeliveryAttempt,
    User,
    UserSession,
    ApiToken,
    Setting,
]
