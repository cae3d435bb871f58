"""Property-based: schemathesis generates requests from /openapi.json, valid and invalid ones, for every
operation. No response may be a 5xx, and every response must match the document (status, content type,
schema); invalid requests must be refused with a 4xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from api.testing import NO_LIMITS, copy_home
from critic.keys import create_key
from critic.service import Service

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 8}
# Refusals an invalid request may get; 413 too: a string within maxLength can still overflow the body limit
# once JSON-escaped (an astral character is 12 bytes as \uXXXX\uXXXX).
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "429"]
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("fuzz") / "home"), log=lambda _: None)


@pytest.fixture(scope="module")
def app(service):
    return create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service)


@pytest.fixture(scope="module")
def key(service):
    return create_key(service.home, "schemathesis")


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda mode: mode.value)
def test_every_operation_conforms(app, service, key, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=CONFIG)
    known_id = service.store.ids()[1]
    operations = [result.ok() for result in schema.get_all_operations()]
    # DELETE last, so the known artwork is still there for the other operations.
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        strategies = [operation.as_strategy(generation_mode=mode)]
        if "{artwork_id}" in operation.path:
            # Random ids only ever meet the 404 path; also aim at an artwork that exists.
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters={"artwork_id": known_id}))
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES[mode], deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            def check(case):
                case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid (a bare GET, a free-form path id): no negative case exists.
                assert mode is GenerationMode.NEGATIVE, operation.label
