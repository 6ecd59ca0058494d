"""Schema fuzzing with schemathesis against the real server's OpenAPI 3.1 schema: a bounded number of generated
requests per operation, each sent with a key of the role the operation admits; no 5xx, and every response
conforms to the schema (status code documented, content type, body).

Operations are driven through schemathesis's strategies with Hypothesis directly (one parametrised test per
operation): its pytest plugin (``schemathesis.pytest.from_fixture``) does not run under pytest 9 here."""

from __future__ import annotations

import pytest
import schemathesis
from api_helpers import ROLE_OF_TEMPLATE
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

pytestmark = pytest.mark.slow
EXAMPLES = 12  # per operation; ~25 operations: the whole fuzz takes about a minute here
# every keyed route (/v1, the FHIR intake /fhir/r4 with its application/fhir+json OperationOutcomes, the
# reconciliation endpoints) from the route x role table, and the operations routes
OPERATIONS = sorted(ROLE_OF_TEMPLATE) + [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@pytest.fixture(scope="session")
def api_schema(api):
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(api, api_schema, method, path):
    operation = api_schema[path][method]
    role = ROLE_OF_TEMPLATE.get((method, path))
    headers = {"X-API-Key": api.keys[role]} if role else {}

    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case):
        case.call_and_validate(base_url=api.url, headers=headers, timeout=120, checks=CHECKS)

    fuzz()


def test_the_schema_lists_every_operation(api_schema):
    served = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)
