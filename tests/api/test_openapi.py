"""``GET /api/v1/openapi.json``: a valid OpenAPI 3.1 document that describes every route of the
app (a route added without a description fails here, by name) and whose examples validate."""

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tracker.api.openapi import DOCUMENT

METHODS = {"get", "post", "put", "patch", "delete"}
# The dashboard's pages and its static files are for people, not for API clients.
UNDESCRIBED_BLUEPRINTS = ("dashboard.", "static")


def openapi_path(rule):
    """``/api/v1/flows/<int:flow_id>`` → ``/api/v1/flows/{flow_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def described_routes(app):
    """``(method, path)`` of every machine-facing route of the app."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(UNDESCRIBED_BLUEPRINTS):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, openapi_path(rule.rule)


def test_openapi_json_is_public_and_is_the_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == DOCUMENT
    assert DOCUMENT["openapi"] == "3.1.0"


def test_the_document_is_valid_openapi_3_1():
    validate(DOCUMENT)


def undescribed(app):
    """``"METHOD /path"`` of every route of ``app`` that the document lacks."""
    return [
        "%s %s" % (method, path)
        for method, path in described_routes(app)
        if method.lower() not in DOCUMENT["paths"].get(path, {})
    ]


def test_every_route_of_the_app_is_described(app):
    missing = undescribed(app)
    assert not missing, (
        "routes missing from the OpenAPI description (tracker/api/openapi.py PATHS): describe "
        "their parameters, body and answers there: " + ", ".join(missing)
    )


def test_a_route_added_without_a_description_is_named(make_app):
    app = make_app()
    app.add_url_rule(
        "/api/v1/widgets/<int:widget_id>", "widget", lambda widget_id: "", methods=["GET", "PATCH"]
    )
    assert undescribed(app) == ["GET /api/v1/widgets/{widget_id}", "PATCH /api/v1/widgets/{widget_id}"]


def test_every_described_route_exists(app):
    routes = set(described_routes(app))
    stale = [
        "%s %s" % (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in METHODS & set(item)
        if (method.upper(), path) not in routes
    ]
    assert not stale, "described but not served: " + ", ".join(stale)


def examples(node, schema=None, where="#"):
    """Every ``(where, example, schema)`` of the document: on schemas, media types, parameters."""
    if isinstance(node, dict):
        own_schema = node.get("schema", node if "type" in node or "$ref" in node else schema)
        if "example" in node:
            yield where, node["example"], own_schema
        for key, value in node.items():
            if key != "example":
                yield from examples(value, own_schema, where + "/" + str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from examples(value, schema, "%s/%d" % (where, i))


def test_the_document_has_examples():
    found = {where for where, _, _ in examples(DOCUMENT)}
    assert len(found) >= 10, sorted(found)


@pytest.mark.parametrize(
    "where, example, schema", [pytest.param(*found, id=found[0]) for found in examples(DOCUMENT)]
)
def test_every_example_validates_against_its_schema(where, example, schema):
    assert schema is not None, where
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    errors = [
        "%s: %s" % ("/".join(map(str, e.absolute_path)), e.message) for e in validator.iter_errors(example)
    ]
    assert not errors, "%s: %s" % (where, errors)


def test_an_example_that_breaks_its_schema_is_caught():
    flow = dict(DOCUMENT["components"]["schemas"]["Flow"]["example"], payout=1.5)
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/Flow", "components": DOCUMENT["components"]}
    )
    assert [e.message for e in validator.iter_errors(flow)] == ["1.5 is not of type 'string'"]


def test_the_documented_flow_example_creates_the_documented_flow(api):
    schemas = DOCUMENT["components"]["schemas"]
    status, flow = api.post("/api/v1/flows", json=schemas["FlowInput"]["example"])
    assert status == 201
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/Flow", "components": DOCUMENT["components"]}
    )
    assert list(validator.iter_errors(flow)) == []
    assert set(flow) >= set(schemas["Flow"]["example"])
