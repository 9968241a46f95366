"""A Schemathesis run over every operation of the OpenAPI description, against the app on a
database holding one of everything: no answer is a 5xx, every status code is documented, and
every answer matches its schema. It runs on SQLite and, with TRACKER_TEST_DATABASE_URL, on
PostgreSQL, like the rest of the suite."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_TOKEN, seed_one_of_everything

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Examples per operation: 30 in CI (about 25 s on 2 cores), 10 in the fast loop on a developer's
# machine, where this one test would otherwise be a third of `pytest -m "not e2e"`.
EXAMPLES = 30 if os.environ.get("CI") else 10


@pytest.fixture
def api_schema(app, client, api):
    seed_one_of_everything(client, api)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_answers_match_the_description(case):
    case.call_and_validate(headers={"Authorization": "Bearer " + API_TOKEN}, checks=CHECKS)
