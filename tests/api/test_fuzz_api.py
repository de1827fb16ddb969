"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis, in-process
through WSGI): signed in with a bearer token and anonymously, every generated request must get
no 5xx and a response the document describes (status, content type, body schema).

Bounded: a few examples per operation (MAX_EXAMPLES); the whole module runs in well under a
minute. The database is a throwaway SQLite copy with one application under publicity, so
ids, tasks and notices that exist are found too, not only 404s.
"""
from __future__ import annotations

import os
import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.driver import Driver
from webapp import create_app, openapi

from .conftest import PASSWORD

MAX_EXAMPLES = 10
# No 5xx, and only what the document promises: status codes, content types, headers, bodies.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, seeded_template, request):
    if os.environ.get("GRANTS_FUZZ_POSTGRES"):  # one-off runs on PostgreSQL (slower to seed)
        from tests.conftest import _postgres_db, _seeded_sessions
        url, drop = _postgres_db(request.getfixturevalue("postgres_template"))
        request.addfinalizer(drop)
        seeding = _seeded_sessions(url)
        next(seeding)
        # a module fixture whose teardown depends on the branch taken: yield cannot express it
        request.addfinalizer(lambda: next(seeding, None))  # noqa: PT021 (disposes its engine)
    else:
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        shutil.copy(seeded_template, path)
        url = f"sqlite:///{path}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "fuzz-secret"})
    driver = Driver(app.extensions["grants_sessions"])
    driver.to_publicity()
    driver.start()
    yield app
    app.extensions["grants_engine"].dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def bearer(fuzz_app) -> dict[str, str]:
    response = fuzz_app.test_client().post("/api/v1/tokens", json={"username": "tto1", "password": PASSWORD})
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


OPERATIONS = [(path, method.upper()) for path, item in openapi.document()["paths"].items() for method in item]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
@pytest.mark.parametrize("who", ["signed_in", "anonymous"])
def test_fuzz(api_schema, bearer, who, path, method):
    """Valid and invalid inputs (positive and negative generation) for one operation."""
    operation = api_schema[path][method]
    headers = bearer if who == "signed_in" else {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            case.call_and_validate(headers=headers, checks=CHECKS)
        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
