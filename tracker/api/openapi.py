"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of every machine-facing route.

Written as Python rather than a JSON or YAML file: the parts every route repeats (the list
envelope, the error answers, the id parameters, the bearer token) are written once as small
functions, the object shapes sit next to the code that makes them (``shapes.py``), and no YAML
parser is needed at run time. ``tests/api/test_openapi.py`` checks that every route of the app
is described here and that every example validates against its schema; a Schemathesis run
checks the answers against it.
"""

from flask import jsonify

from ..clickin.routing import OPS
from ..models import DELIVERY_STATUSES, PAYOUT_TYPES, ROUTE_ACTIONS, STATUSES, TRIGGERS
from . import bp
from .shapes import CLICK_FIELDS


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def nullable(schema_type):
    return {"type": [schema_type, "null"]}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, with a Z"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "a decimal, as a string"}
ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
OBJECT = {"type": "object"}
CLICK_TYPED = {
    "click_id",
    "flow_id",
    "created_at",
    "asn",
    "is_bot",
    "is_unique",
    "cost",
    "params",
    "cookies",
    "cut",
    "route_id",
    "lander_id",
    "offer_id",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# What a postback adds to its template (the request's headers, when it counts as delivered).
REQUEST_OPTIONS = {
    "headers": {**STRING_MAP, "description": 'header templates, like {"Access-Token": "{token}"}'},
    "success_body": {"type": "string", "description": "a regular expression a 2xx body must match"},
    "retry_4xx": {"type": "boolean", "description": "retry on any answer but 2xx"},
    "test_event_code": {"type": "string", "description": "the platform's test code (Meta, TikTok)"},
}


def obj(required, properties, **extra):
    """An object schema; every answer may grow fields (add, never rename), so no
    ``additionalProperties: false`` on answers."""
    return {"type": "object", "required": list(required), "properties": properties, **extra}


SCHEMAS = {
    "Error": obj(["error"], {"error": STRING}, example={"error": "flow 7 not found"}),
    "Click": obj(
        ["click_id", "flow_id", "created_at"],
        {
            "click_id": {"type": "string", "pattern": "^[0-9a-z]{1,64}$"},
            "flow_id": ID,
            "created_at": TIME,
            **{name: STRING for name in CLICK_FIELDS if name not in CLICK_TYPED},
            "asn": nullable("integer"),
            "is_bot": BOOLEAN,
            "is_unique": BOOLEAN,
            "cost": MONEY,
            "params": STRING_MAP,
            "cookies": STRING_MAP,
            "cut": {"type": "array", "items": STRING, "description": "fields whose value was cut to fit"},
            "route_id": nullable("integer"),
            "lander_id": nullable("integer"),
            "offer_id": nullable("integer"),
            "lp_clicked_at": {**TIME_OR_NULL, "description": "when the visitor went on from the lander"},
        },
    ),
    "ConversionChange": obj(
        ["at", "status", "payout"],
        {"at": TIME, "status": {"enum": list(STATUSES)}, "payout": MONEY, "inbound_id": nullable("integer")},
    ),
    "Conversion": obj(
        ["id", "click_id", "flow_id", "event", "payout", "currency", "status", "txid", "data", "created_at"],
        {
            "id": ID,
            "click_id": STRING,
            "flow_id": ID,
            "event": STRING,
            "payout": MONEY,
            "currency": STRING,
            "status": {"enum": list(STATUSES)},
            "txid": STRING,
            "data": {"type": "object", "description": "the lead data sent with it"},
            "created_at": TIME,
            "updated_at": TIME,
            "history": {"type": "array", "items": ref("ConversionChange")},
        },
    ),
    "InboundRequest": obj(
        ["id", "at", "ip", "method", "params", "http_status", "accepted", "reason", "conversion_id"],
        {
            "id": ID,
            "at": TIME,
            "endpoint": {"enum": ["postback", "events"]},
            "ip": STRING,
            "method": STRING,
            "params": OBJECT,
            "http_status": INTEGER,
            "accepted": BOOLEAN,
            "reason": STRING,
            "result": STRING,
            "flow_id": nullable("integer"),
            "click_id": STRING,
            "conversion_id": nullable("integer"),
        },
    ),
    "Attempt": obj(
        ["at", "status_code", "duration_ms", "error", "response"],
        {
            "at": TIME,
            "status_code": nullable("integer"),
            "duration_ms": {"type": "number"},
            "error": STRING,
            "response": STRING,
        },
    ),
    "Delivery": obj(
        [
            "id",
            "flow_id",
            "click_id",
            "conversion_id",
            "trigger",
            "method",
            "url",
            "headers",
            "body",
            "status",
        ],
        {
            "id": ID,
            "flow_id": nullable("integer"),
            "click_id": nullable("string"),
            "conversion_id": nullable("integer"),
            "postback_id": nullable("integer"),
            "trigger": STRING,
            "method": {"enum": ["GET", "POST"]},
            "url": STRING,
            "headers": STRING_MAP,
            "body": STRING,
            "status": {"enum": list(DELIVERY_STATUSES)},
            "test": BOOLEAN,
            "error": STRING,
            "attempts_count": INTEGER,
            "next_attempt_at": TIME_OR_NULL,
            "created_at": TIME,
            "updated_at": TIME,
            "attempts": {"type": "array", "items": ref("Attempt")},
        },
    ),
    "PostbackInput": obj(
        ["trigger", "url"],
        {
            "trigger": {"enum": [*TRIGGERS, "session"]},
            "url": {"type": "string", "description": "URL, URL|POST|k=v&…, or URL|JSON|{…}, with {tokens}"},
            "name": STRING,
            "events": {"type": "array", "items": STRING},
            "statuses": {"type": "array", "items": {"enum": list(STATUSES)}},
            "payout_type": {"enum": list(PAYOUT_TYPES)},
            "enabled": BOOLEAN,
            **REQUEST_OPTIONS,
        },
    ),
    "Postback": obj(
        ["id", "trigger", "url", "enabled"],
        {
            "id": ID,
            "trigger": {"enum": list(TRIGGERS)},
            "name": STRING,
            "url": STRING,
            "events": {"type": "array", "items": STRING},
            "statuses": {"type": "array", "items": STRING},
            "payout_type": {"enum": list(PAYOUT_TYPES)},
            "enabled": BOOLEAN,
            **REQUEST_OPTIONS,
            "warnings": {"type": "array", "items": STRING},
        },
    ),
    "FlowEvent": obj(
        ["name", "conversion", "allow_duplicates"],
        {"name": STRING, "conversion": BOOLEAN, "allow_duplicates": BOOLEAN},
    ),
    "FlowInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "offer_url": {"type": "string", "description": "http(s) URL with {tokens}"},
            "payout": {"type": ["string", "number"]},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            "attribution_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
            "fallback_url": STRING,
            "traffic_source_id": nullable("integer"),
            "paused": BOOLEAN,
            "events": {
                "type": "array",
                "items": obj(["name"], {"name": STRING, "conversion": BOOLEAN, "allow_duplicates": BOOLEAN}),
            },
            "postbacks": {"type": "array", "items": ref("PostbackInput")},
            "timezone": {"type": ["string", "null"], "description": "IANA zone of hour and weekday rules"},
            "unique_window_hours": {"type": ["integer", "null"], "minimum": 1, "maximum": 8760},
            "bind_visitors": BOOLEAN,
            "routes": {"type": "array", "items": ref("RouteInput")},
        },
        "example": {"name": "Spring push", "offer_url": "https://offer.example/lp?cid={clickid}&src={sub1}"},
    },
    "Flow": obj(
        ["id", "key", "link", "name", "offer_url", "payout", "currency", "events", "postbacks"],
        {
            "id": ID,
            "name": STRING,
            "key": STRING,
            "link": {"type": "string", "description": "the tracking link, <public url>/r/<key>"},
            "offer_url": STRING,
            "payout": MONEY,
            "currency": STRING,
            "attribution_days": nullable("integer"),
            "fallback_url": STRING,
            "traffic_source_id": nullable("integer"),
            "paused": BOOLEAN,
            "events": {"type": "array", "items": ref("FlowEvent")},
            "postbacks": {"type": "array", "items": ref("Postback")},
            "unique_window_hours": INTEGER,
            "timezone": nullable("string"),
            "bind_visitors": BOOLEAN,
            "routes": {"type": "array", "items": ref("Route")},
            "created_at": TIME,
            "updated_at": TIME,
        },
        example={
            "id": 1,
            "name": "Spring push",
            "key": "k3J9xQ0aBc",
            "link": "http://127.0.0.1:8000/r/k3J9xQ0aBc",
            "offer_url": "https://offer.example/lp?cid={clickid}&src={sub1}",
            "payout": "0.00",
            "currency": "USD",
            "attribution_days": None,
            "fallback_url": "",
            "traffic_source_id": None,
            "paused": False,
            "events": [],
            "postbacks": [],
            "unique_window_hours": 24,
            "timezone": None,
            "bind_visitors": False,
            "routes": [],
            "created_at": "2026-11-28T10:15:03Z",
            "updated_at": "2026-11-28T10:15:03Z",
        },
    ),
    "TrafficSourceInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "click_id_param": {"type": "string", "maxLength": 100},
            "vars": {"type": "object", "additionalProperties": STRING, "description": '{"var1": "zoneid"}'},
            "postback_url": STRING,
            "postback_events": {"type": "array", "items": STRING},
            "active": BOOLEAN,
        },
        "example": {"name": "PropellerAds", "click_id_param": "visitor_id", "vars": {"var1": "zoneid"}},
    },
    "TrafficSource": obj(
        ["id", "name", "click_id_param", "vars", "postback_url", "postback_events", "active"],
        {
            "id": ID,
            "name": STRING,
            "click_id_param": STRING,
            "vars": STRING_MAP,
            "postback_url": STRING,
            "postback_events": {"type": "array", "items": STRING},
            "active": BOOLEAN,
            "created_at": TIME,
        },
    ),
    "StatsRow": obj(
        ["clicks", "unique_clicks", "conversions", "revenue", "cost", "profit", "cr", "epc", "roi"],
        {
            "key": {
                "type": ["string", "integer", "null"],
                "description": "the dimension's value (the last dimension's, with several)",
            },
            "keys": {
                "type": "array",
                "items": {"type": ["string", "integer", "null"]},
                "description": "one value per dimension of group_by, in its order",
            },
            "clicks": INTEGER,
            "unique_clicks": INTEGER,
            "conversions": INTEGER,
            "revenue": MONEY,
            "cost": MONEY,
            "profit": MONEY,
            "cr": {"type": ["string", "null"], "description": "a percentage: 12.50 means 12.5 %"},
            "epc": {"type": ["string", "null"]},
            "roi": {"type": ["string", "null"], "description": "a percentage"},
            "events": {"type": "integer", "description": "approved events that are not conversions"},
            "pending": {"type": "integer", "description": "pending conversions"},
            "declined": {"type": "integer", "description": "declined conversions"},
            "lp_views": {"type": "integer", "description": "clicks sent to a lander"},
            "lp_clicks": {"type": "integer", "description": "those that went on through /click"},
            "lp_ctr": {"type": ["string", "null"], "description": "a percentage"},
            "cpa": {"type": ["string", "null"], "description": "cost per conversion"},
            "cpc": {"type": ["string", "null"], "description": "cost per click"},
            "bot_clicks": INTEGER,
            "currency": {"type": "string", "description": "the report's (TRACKER_CURRENCY)"},
            "unconverted": {
                "type": "object",
                "additionalProperties": MONEY,
                "description": "revenue in currencies without a stored rate, left out of revenue",
            },
            "previous": {"type": "object", "description": "with compare=previous: the same figures, before"},
        },
    ),
    "Stats": obj(
        ["items", "next", "totals"],
        {
            "items": {"type": "array", "items": ref("StatsRow")},
            "next": {"type": ["string", "null"], "description": "the cursor of the next page (with limit)"},
            "totals": ref("StatsRow"),
        },
        example={
            "items": [
                {
                    "key": "2026-11-28",
                    "keys": ["2026-11-28"],
                    "clicks": 120,
                    "unique_clicks": 110,
                    "conversions": 3,
                    "revenue": "147.00",
                    "cost": "30.00",
                    "profit": "117.00",
                    "cr": "2.50",
                    "epc": "1.2250",
                    "roi": "390.00",
                    "events": 5,
                    "pending": 1,
                    "declined": 0,
                    "lp_views": 80,
                    "lp_clicks": 20,
                    "lp_ctr": "25.00",
                    "cpa": "10.00",
                    "cpc": "0.25",
                    "bot_clicks": 4,
                    "currency": "USD",
                    "unconverted": {"GBP": "12.00"},
                }
            ],
            "next": None,
            "totals": {
                "clicks": 120,
                "unique_clicks": 110,
                "conversions": 3,
                "revenue": "147.00",
                "cost": "30.00",
                "profit": "117.00",
                "cr": "2.50",
                "epc": "1.2250",
                "roi": "390.00",
                "currency": "USD",
                "unconverted": {"GBP": "12.00"},
            },
        },
    ),
    "CostInput": obj(
        ["flow_id", "from", "to", "amount"],
        {
            "flow_id": ID,
            "from": {"type": "string", "description": "a date (its whole day) or a time, in tz"},
            "to": {"type": "string", "description": "a date (inclusive) or a time, in tz"},
            "amount": {"type": ["string", "number"], "description": "the period's spend, not negative"},
            "currency": {"type": "string", "description": "ISO 4217, default TRACKER_CURRENCY"},
            "filter": {
                "type": "object",
                "description": "only the clicks with these values: country, os, sub1, offer, …",
            },
            "tz": {"type": "string", "description": "IANA zone of the dates, default TRACKER_TIMEZONE"},
        },
        example={
            "flow_id": 3,
            "from": "2026-11-01",
            "to": "2026-11-07",
            "amount": "250.00",
            "currency": "EUR",
            "filter": {"country": "US"},
        },
    ),
    "CostAnswer": obj(
        ["clicks", "amount", "currency"],
        {"clicks": INTEGER, "amount": MONEY, "currency": STRING},
        example={"clicks": 1000, "amount": "270.00", "currency": "USD"},
    ),
    "CurrencyRates": {
        "type": "object",
        "additionalProperties": MONEY,
        "description": "the value of one unit of each currency in TRACKER_CURRENCY",
        "example": {"EUR": "1.08", "GBP": "1.27"},
    },
    "CurrencyRatesInput": {
        "type": "object",
        "additionalProperties": {"type": ["string", "number"]},
        "description": "the value of one unit of each currency in TRACKER_CURRENCY",
        "example": {"EUR": "1.08", "GBP": "1.27"},
    },
    "Preset": obj(
        ["id", "name", "trigger", "fields"],
        {
            "id": STRING,
            "name": STRING,
            "trigger": STRING,
            "fields": {
                "type": "array",
                "items": obj(
                    ["name", "label"], {"name": STRING, "label": STRING, "default": nullable("string")}
                ),
            },
        },
    ),
    "BuiltPostback": obj(
        ["trigger", "url"],
        {
            "trigger": STRING,
            "url": STRING,
            **REQUEST_OPTIONS,
            "statuses": {"type": "array", "items": STRING},
            "payout_type": STRING,
        },
    ),
    "PreviewInput": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": STRING,
            **REQUEST_OPTIONS,
            "click_id": nullable("string"),
            "flow_id": {"type": ["integer", "null"]},
            "conversion": obj(
                [],
                {
                    "event": STRING,
                    "payout": {"type": ["string", "number"]},
                    "currency": STRING,
                    "status": STRING,
                    "txid": STRING,
                    "data": OBJECT,
                },
            ),
        },
        "example": {"url": "https://tracking.example/pb?cid={externalid}&payout={payout}", "click_id": None},
    },
    "PreviewRequest": obj(
        ["method", "url", "headers", "body", "warnings"],
        {
            "method": {"enum": ["GET", "POST"]},
            "url": STRING,
            "headers": STRING_MAP,
            "body": STRING,
            "warnings": {"type": "array", "items": STRING},
        },
    ),
    "TemplateError": obj(["error"], {"error": STRING, "warnings": {"type": "array", "items": STRING}}),
    "ConversionAnswer": obj(
        ["status", "conversion_id", "error"],
        {
            "status": {"enum": ["ok", "duplicate", "updated", "fired", "error"]},
            "conversion_id": nullable("integer"),
            "error": nullable("string"),
        },
        example={"status": "ok", "conversion_id": 42, "error": None},
    ),
    "Health": obj(
        ["status", "spool_depth"],
        {
            "status": {"enum": ["ok", "error"]},
            "error": STRING,
            "spool_depth": {"type": "integer", "description": "clicks waiting in this node's click spool"},
        },
    ),
}

# Traffic distribution (DESIGN §4.7): offers, landers, a flow's routes, the bot lists.
RULE = obj(
    ["field", "op"],
    {
        "field": {"type": "string", "description": "a click field, param:NAME, hour or weekday"},
        "op": {"enum": list(OPS)},
        "values": {"type": "array", "items": STRING},
    },
)
WEIGHTS = {
    kind: {
        "type": "array",
        "items": obj([kind + "_id"], {kind + "_id": ID, "weight": {"type": "integer", "minimum": 0}}),
    }
    for kind in ("lander", "offer")
}
ROUTE_FIELDS = {
    "name": STRING,
    "enabled": BOOLEAN,
    "default": BOOLEAN,
    "action": {"enum": list(ROUTE_ACTIONS)},
    "rules": {"type": "array", "items": RULE},
    "landers": WEIGHTS["lander"],
    "offers": WEIGHTS["offer"],
}
SCHEMAS.update(
    {
        "RouteInput": obj(
            ["name"],
            {"id": {**ID, "description": "keeps a route of the flow in place"}, **ROUTE_FIELDS},
            example={
                "name": "US mobile",
                "rules": [{"field": "country", "op": "in", "values": ["US", "CA"]}],
                "offers": [{"offer_id": 1, "weight": 3}],
            },
        ),
        "Route": obj(["id", *ROUTE_FIELDS], {"id": ID, **ROUTE_FIELDS}),
        "OfferInput": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "url": {"type": "string", "description": "http(s) URL with {tokens}"},
                "payout": {"type": ["string", "number"]},
                "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            },
            "example": {"name": "Acme VPN", "url": "https://acme.example/?s={clickid}", "payout": "12.50"},
        },
        "Offer": obj(
            ["id", "name", "url", "payout", "currency"],
            {
                "id": ID,
                "name": STRING,
                "url": STRING,
                "payout": MONEY,
                "currency": STRING,
                "created_at": TIME,
            },
        ),
        "LanderInput": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 200}, "url": STRING},
            "example": {"name": "Quiz", "url": "https://lp.example/quiz?next={click_url}"},
        },
        "Lander": obj(["id", "name", "url"], {"id": ID, "name": STRING, "url": STRING, "created_at": TIME}),
        "BotRules": obj(
            ["ips", "user_agents"],
            {
                "ips": {"type": "array", "items": STRING, "description": "addresses and CIDR blocks"},
                "user_agents": {"type": "array", "items": STRING, "description": "substrings, any case"},
            },
            example={"ips": ["66.249.64.0/19"], "user_agents": ["HeadlessChrome"]},
        ),
    }
)


def page_of(name):
    """A list answer: ``{items: [...], next: <cursor or null>}``, newest first."""
    return obj(
        ["items", "next"],
        {"items": {"type": "array", "items": ref(name)}, "next": {"type": ["string", "integer", "null"]}},
    )


REASONS = {
    400: "Malformed input (the reason says which)",
    401: "No valid bearer token",
    403: "Refused: wrong secret, address, inactive source or a request in flight",
    404: "Not found",
    405: "Method not allowed",
    410: "The click is older than the attribution window",
    413: "The body is too large",
    415: "Unsupported media type",
    409: "In use (an offer or lander a route sends clicks to)",
    422: "Well-formed, but refused by the rules (the reason says why)",
    503: "The click waits in the spool or the database is away: retry",
}


def answers(ok_status, ok_schema, *codes, description="OK", example=None):
    """The responses of an operation: its success and the error codes it may answer."""
    ok = {"description": description}
    if ok_schema is not None:
        ok["content"] = {"application/json": {"schema": ok_schema}}
        if example is not None:
            ok["content"]["application/json"]["example"] = example
    out = {str(ok_status): ok}
    for code in codes:
        out[str(code)] = {
            "description": REASONS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def query(name, schema, description=""):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path_id(name, what):
    return {"name": name, "in": "path", "required": True, "schema": ID, "description": "the %s's id" % what}


def body(name, example=None):
    content = {"schema": ref(name)}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


PAGING = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "items per page, default 50"),
    query("cursor", STRING, "the `next` of the previous page"),
]
FLOW_ID = query("flow_id", ID)
BOOL_ARG = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
AUTHED = (400, 401)


def operation(summary, responses, parameters=(), request_body=None, tag="api", public=False):
    out = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        out["parameters"] = list(parameters)
    if request_body is not None:
        out["requestBody"] = request_body
    if public:
        out["security"] = []
    return out


POSTBACK_PARAMS = [
    query("click_id", STRING, "our click id (aliases clickid, click, subid)"),
    query("event", STRING, "event name, default conversion (alias goal)"),
    query("payout", STRING, "decimal, may be negative (aliases revenue, price, amount, sum)"),
    query("txid", STRING, "the advertiser's transaction id (aliases transaction_id, tid, uid)"),
    query("status", STRING, "approved, pending, declined (alias stage)"),
    query("currency", STRING, "ISO 4217"),
    query("secret", STRING, "required when TRACKER_POSTBACK_SECRET is set"),
]
CONVERSION_ERRORS = (400, 403, 404, 405, 410, 413, 503)
EVENT_BODY = {
    "type": "object",
    "required": ["cid", "event_id", "transaction_id"],
    "properties": {
        "cid": {"type": "string", "description": "the flow's key"},
        "event_id": STRING,
        "transaction_id": {"type": "string", "description": "our click id"},
        "pid": STRING,
        "revenue": {"type": ["number", "string"]},
    },
}

PATHS = {
    "/api/v1/openapi.json": {
        "get": operation(
            "This description",
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            public=True,
        )
    },
    "/api/v1/flows": {
        "get": operation("Flows, newest first", answers(200, page_of("Flow"), *AUTHED), PAGING),
        "post": operation(
            "Create a flow",
            answers(201, ref("Flow"), *AUTHED, 413, 422, description="Created"),
            request_body=body("FlowInput"),
        ),
    },
    "/api/v1/flows/{flow_id}": {
        "parameters": [path_id("flow_id", "flow")],
        "get": operation("A flow", answers(200, ref("Flow"), 401, 404)),
        "patch": operation(
            "Change a flow (events and postbacks given replace the flow's)",
            answers(200, ref("Flow"), *AUTHED, 404, 413, 422),
            request_body=body("FlowInput", example={"paused": True}),
        ),
        "delete": operation("Delete a flow (its clicks stay in the reports)", answers(204, None, 401, 404)),
    },
    "/api/v1/traffic-sources": {
        "get": operation("Traffic sources", answers(200, page_of("TrafficSource"), *AUTHED), PAGING),
        "post": operation(
            "Create a traffic source",
            answers(201, ref("TrafficSource"), *AUTHED, 413, 422, description="Created"),
            request_body=body("TrafficSourceInput"),
        ),
    },
    "/api/v1/traffic-sources/{source_id}": {
        "parameters": [path_id("source_id", "traffic source")],
        "get": operation("A traffic source", answers(200, ref("TrafficSource"), 401, 404)),
        "patch": operation(
            "Change a traffic source",
            answers(200, ref("TrafficSource"), *AUTHED, 404, 413, 422),
            request_body=body("TrafficSourceInput", example={"active": False}),
        ),
    },
    "/api/v1/clicks": {
        "get": operation("Clicks, newest first", answers(200, page_of("Click"), *AUTHED), [FLOW_ID, *PAGING]),
    },
    "/api/v1/clicks/{click_id}": {
        "parameters": [{"name": "click_id", "in": "path", "required": True, "schema": STRING}],
        "get": operation("A click", answers(200, ref("Click"), 401, 404)),
    },
    "/api/v1/conversions": {
        "get": operation(
            "Conversions, newest first",
            answers(200, page_of("Conversion"), *AUTHED),
            [FLOW_ID, query("click_id", STRING), query("status", STRING), *PAGING],
        ),
    },
    "/api/v1/conversions/{conversion_id}": {
        "parameters": [path_id("conversion_id", "conversion")],
        "get": operation("A conversion, with its history", answers(200, ref("Conversion"), 401, 404)),
    },
    "/api/v1/postbacks": {
        "get": operation(
            "The inbound log: every /postback and /api/v1/events request, accepted or refused",
            answers(200, page_of("InboundRequest"), *AUTHED),
            [
                FLOW_ID,
                query("accepted", BOOL_ARG),
                query("endpoint", {"type": "string", "enum": ["postback", "events"]}),
                query("click_id", STRING),
                *PAGING,
            ],
        ),
    },
    "/api/v1/postbacks/{inbound_id}": {
        "parameters": [path_id("inbound_id", "inbound log entry")],
        "get": operation("An inbound log entry", answers(200, ref("InboundRequest"), 401, 404)),
    },
    "/api/v1/postbacks/preview": {
        "post": operation(
            "The exact request a postback template would send",
            {
                **answers(200, ref("PreviewRequest"), *AUTHED, 404, 413),
                "422": {
                    "description": "The template cannot be rendered",
                    "content": {"application/json": {"schema": ref("TemplateError")}},
                },
            },
            request_body=body("PreviewInput"),
        ),
    },
    "/api/v1/postbacks/test": {
        "post": operation(
            "Queue a real delivery of a template, marked test",
            answers(201, ref("Delivery"), *AUTHED, 404, 413, 422, description="Queued"),
            request_body=body("PreviewInput"),
        ),
    },
    "/api/v1/postbacks/presets": {
        "get": operation(
            "The postback presets of the editor",
            answers(200, obj(["items", "next"], {"items": {"type": "array", "items": ref("Preset")}}), 401),
        ),
    },
    "/api/v1/postbacks/presets/{preset_id}": {
        "parameters": [
            {
                "name": "preset_id",
                "in": "path",
                "required": True,
                "schema": STRING,
                "example": "generic_get",
            }
        ],
        "post": operation(
            "A preset's postback, filled with the body's fields",
            answers(200, ref("BuiltPostback"), *AUTHED, 404, 413, 422),
            request_body=body("PresetFields", example={"url": "https://tracking.example/pb"}),
        ),
    },
    "/api/v1/deliveries": {
        "get": operation(
            "Outgoing deliveries with their attempts, newest first",
            answers(200, page_of("Delivery"), *AUTHED),
            [
                FLOW_ID,
                query("conversion_id", ID),
                query("click_id", STRING),
                query("status", {"type": "string", "enum": list(DELIVERY_STATUSES)}),
                query("test", BOOL_ARG),
                *PAGING,
            ],
        ),
    },
    "/api/v1/deliveries/{delivery_id}": {
        "parameters": [path_id("delivery_id", "delivery")],
        "get": operation("A delivery with its attempts", answers(200, ref("Delivery"), 401, 404)),
    },
    "/api/v1/deliveries/{delivery_id}/retry": {
        "parameters": [path_id("delivery_id", "delivery")],
        "post": operation(
            "Send a delivery again (same request, fresh schedule)",
            answers(200, ref("Delivery"), 401, 404, 422),
        ),
    },
    "/api/v1/stats": {
        "get": operation(
            "Report rows by up to three dimensions, with totals of every row",
            answers(200, ref("Stats"), *AUTHED),
            [
                query(
                    "group_by",
                    STRING,
                    "day (default), hour, flow, country, os, sub1, …; up to three, comma-separated "
                    "(country,os,sub1)",
                ),
                query("from", {"type": "string", "format": "date"}, "YYYY-MM-DD in tz, inclusive"),
                query("to", {"type": "string", "format": "date"}, "YYYY-MM-DD in tz, inclusive"),
                query("tz", STRING, "IANA zone, default TRACKER_TIMEZONE"),
                query("basis", {"type": "string", "enum": ["click", "conversion"]}),
                FLOW_ID,
                query("traffic_source_id", ID),
                query("country", STRING, "a two-letter ISO code"),
                query("route_id", ID),
                query("lander_id", ID),
                query("offer_id", ID),
                query("f.country", STRING, "a filter on any dimension: f.<dimension>=<value>, repeatable"),
                query("include_bots", {"type": "string", "enum": ["1", "0", "true", "false"]}),
                query("compare", {"type": "string", "enum": ["previous"]}),
                query(
                    "order",
                    STRING,
                    "a metric, descending (default clicks), or key (the order of the values). By "
                    "external_id or ip, key pages along an index (fast at any size); ordered by a "
                    "metric they group every click of the period",
                ),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                    "rows a page (default 100 for the dimensions of many values: sub ids, UTMs, region, "
                    "city, isp, external_id, ip)",
                ),
                query("cursor", STRING, "the next of the previous page (opaque)"),
            ],
        ),
    },
    "/api/v1/costs": {
        "post": operation(
            "Spread a period's spend evenly over its clicks (replacing their cost)",
            answers(200, ref("CostAnswer"), *AUTHED, 404, 413, 422),
            request_body=body("CostInput"),
        ),
    },
    "/api/v1/currency-rates": {
        "get": operation("The stored currency rates", answers(200, ref("CurrencyRates"), 401)),
        "put": operation(
            "Replace the stored currency rates",
            answers(200, ref("CurrencyRates"), *AUTHED, 413),
            request_body=body("CurrencyRatesInput"),
        ),
    },
    "/api/v1/events": {
        "post": operation(
            "The event API (Pingtree's contract): no bearer token; the postback secret and allowed "
            "addresses apply",
            {
                **answers(200, ref("ConversionAnswer"), description="Fired"),
                **{
                    str(code): {
                        "description": REASONS[code],
                        "content": {"application/json": {"schema": ref("ConversionAnswer")}},
                    }
                    for code in (400, 403, 405, 413, 503)
                },
            },
            request_body={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": EVENT_BODY,
                        "example": {
                            "cid": "k3J9xQ0aBc",
                            "event_id": "lead",
                            "transaction_id": "0mk1w2x3a9f0c1d2e3f4g5h6i",
                            "pid": "organic",
                            "revenue": 12.5,
                        },
                    },
                    "application/x-www-form-urlencoded": {"schema": EVENT_BODY},
                },
            },
            tag="conversions",
            public=True,
        ),
    },
}


for kind, title in (("offer", "Offer"), ("lander", "Lander")):
    PATHS["/api/v1/%ss" % kind] = {
        "get": operation("%ss, newest first" % title, answers(200, page_of(title), *AUTHED), PAGING),
        "post": operation(
            "Create a%s %s" % ("n" if kind == "offer" else "", kind),
            answers(201, ref(title), *AUTHED, 413, 422, description="Created"),
            request_body=body(title + "Input"),
        ),
    }
    PATHS["/api/v1/%ss/{%s_id}" % (kind, kind)] = {
        "parameters": [path_id(kind + "_id", kind)],
        "get": operation(
            "A%s %s" % ("n" if kind == "offer" else "", kind), answers(200, ref(title), 401, 404)
        ),
        "patch": operation(
            "Change a%s %s" % ("n" if kind == "offer" else "", kind),
            answers(200, ref(title), *AUTHED, 404, 413, 422),
            request_body=body(title + "Input", example={"name": "Renamed"}),
        ),
        "delete": operation(
            "Delete it (refused while a route sends clicks to it; its clicks keep its name)",
            answers(204, None, 401, 404, 409),
        ),
    }
PATHS["/api/v1/bot-rules"] = {
    "get": operation("The bot lists", answers(200, ref("BotRules"), 401)),
    "put": operation(
        "Replace the bot lists",
        answers(200, ref("BotRules"), *AUTHED, 413, 422),
        request_body=body("BotRules"),
    ),
}
PATHS["/api/v1/flows/{flow_id}/clone"] = {
    "parameters": [path_id("flow_id", "flow")],
    "post": operation(
        "A new flow (its own key and link) with the flow's settings, routes, events and postbacks",
        answers(201, ref("Flow"), 401, 404, description="Created"),
    ),
}


def conversion_answers():
    answer = {"content": {"application/json": {"schema": ref("ConversionAnswer")}}}
    out = {"200": {"description": "ok, duplicate or updated", **answer}}
    for code in CONVERSION_ERRORS:
        out[str(code)] = {"description": REASONS[code], **answer}
    return out


PATHS["/postback"] = {
    "get": operation(
        "The advertiser's S2S postback: a conversion for our click id",
        conversion_answers(),
        POSTBACK_PARAMS,
        tag="conversions",
        public=True,
    ),
    "post": operation(
        "The same, with the parameters in the query, a form body or a JSON body",
        conversion_answers(),
        POSTBACK_PARAMS,
        request_body={
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": OBJECT},
                "application/json": {"schema": OBJECT},
            },
        },
        tag="conversions",
        public=True,
    ),
}
PATHS["/r/{key}"] = {
    "get": operation(
        "A click on a tracking link: recorded, then 302 to the offer",
        {
            "302": {"description": "To the offer (or a fallback URL)"},
            "404": {
                "description": "No active flow for this key (a reason), or a route that answers 404",
                "content": {
                    "application/json": {
                        "schema": obj(["error"], {"error": STRING, "reason": {"enum": ["unknown", "paused"]}})
                    }
                },
            },
        },
        [{"name": "key", "in": "path", "required": True, "schema": STRING}],
        tag="clicks",
        public=True,
    ),
}
LANDER_CLICK = {
    "302": {"description": "To the offer (or TRACKER_FALLBACK_URL for an unknown click)"},
    "404": {
        "description": "No such click, or no offer for it",
        "content": {"application/json": {"schema": ref("Error")}},
    },
    "503": {
        "description": "The click is not written yet (it may wait in a click spool): retry (Retry-After)",
        "content": {"application/json": {"schema": ref("Error")}},
    },
}
CLICK_ID_ARG = query("click_id", STRING, "our click id; without it, the tid cookie")
PATHS["/click"] = {
    "get": operation(
        "A lander's link on to the offer: the lander click noted once, then 302 to the click's offer",
        LANDER_CLICK,
        [CLICK_ID_ARG],
        tag="clicks",
        public=True,
    ),
}
PATHS["/click/{position}"] = {
    "get": operation(
        "The same, to the n-th offer (1-based) of the click's route, which becomes the click's offer",
        LANDER_CLICK,
        [
            {"name": "position", "in": "path", "required": True, "schema": STRING, "example": "2"},
            CLICK_ID_ARG,
        ],
        tag="clicks",
        public=True,
    ),
}
PATHS["/healthz"] = {
    "get": operation(
        "200 when the database answers; the depth of this node's click spool",
        {
            "200": {"description": "Healthy", "content": {"application/json": {"schema": ref("Health")}}},
            "503": {
                "description": "The database is away",
                "content": {"application/json": {"schema": ref("Health")}},
            },
        },
        tag="operations",
        public=True,
    ),
}
PATHS["/metrics"] = {
    "get": operation(
        "Figures in the Prometheus text format (public when TRACKER_METRICS_PUBLIC=1)",
        {
            "200": {
                "description": "Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": STRING}},
            },
            "401": {"description": REASONS[401], "content": {"application/json": {"schema": ref("Error")}}},
        },
        tag="operations",
    ),
}

# Every operation behind the bearer token shows secrets masked (DESIGN §4.8) unless asked
# with ?reveal=1 by a token that may: TRACKER_API_TOKEN, or one made with --reveal.
REVEAL = query(
    "reveal",
    {"type": "string", "enum": ["1", "0", "true"]},
    "1: show secret-looking query parameters, body fields and headers unmasked (403 for a token "
    "that may not: only TRACKER_API_TOKEN and tokens made with `tracker token create NAME --reveal`)",
)
for _path, _item in PATHS.items():
    for _operation in _item.values():
        if (
            not isinstance(_operation, dict)
            or _operation.get("security") == []
            or not _path.startswith("/api/")
        ):
            continue
        _operation.setdefault("parameters", []).append(REVEAL)
        _operation["responses"].setdefault(
            "403",
            {
                "description": "This token may not reveal secrets (?reveal=1)",
                "content": {"application/json": {"schema": ref("Error")}},
            },
        )
for _path in ("/postback", "/api/v1/events"):
    for _operation in (o for o in PATHS[_path].values() if isinstance(o, dict)):
        _operation["description"] = (
            "Any other method (PUT, DELETE, PATCH, OPTIONS, HEAD, and GET on the event API) is "
            "answered 405 with the reason and an Allow header, and is kept in the inbound log."
        )

SCHEMAS["PresetFields"] = {
    "type": "object",
    "additionalProperties": STRING,
    "description": "the preset's fields by name (pixel_id, access_token, url, …)",
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "tracker",
        "version": "1",
        "description": "The management API (/api/v1, bearer token), the conversion endpoints "
        "(/postback, /api/v1/events) and the click-in (/r/{key}) of a self-hosted click tracker. "
        "Secret-looking values (access_token, api_key, Authorization, …) in the URLs, bodies and "
        "headers the API shows are masked as *** unless ?reveal=1; a *** sent back keeps the "
        "stored secret. JSON nested deeper than 64 levels is refused with 400.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an API token"}},
    },
}


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI 3.1 description (no token needed: it names routes, not data)."""
    return jsonify(DOCUMENT)
