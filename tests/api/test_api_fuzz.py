"""A Schemathesis run over every operation of the OpenAPI description, against the app on a
database holding one of everything: no answer is a 5xx, every status code is documented, and
every answer matches its schema. It runs on SQLite and, with TRACKER_TEST_DATABASE_URL, on
PostgreSQL, like the rest of the suite."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_TOKEN, IN_CI, examples, seed_one_of_everything

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# In CI every phase runs: the schema's examples, the coverage phase (each parameter's boundary
# and invalid values, about half of the run) and 30 random requests per operation. In the fast
# loop on a developer's machine, where the coverage phase alone would be a sixth of
# `pytest -m "not e2e"`, it is left to CI and 10 random requests per operation are made.
EXAMPLES = examples(30)
PHASES = schemathesis.config.SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": IN_CI}}})


@pytest.fixture
def api_schema(app, client, api):
    seed_one_of_everything(client, api)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=PHASES)
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
