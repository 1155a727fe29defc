"""The OpenAPI schema, fuzzed with schemathesis: no generated request gets a 5xx — and the explicit
examples of issue 18 (item 5: the requests that once gave a 500) each get a 4xx naming the problem.

The app runs in process (ASGI) on a fresh SQLite database with demo data, as an admin with an API
token, so every operation is reachable past authentication. Each operation gets a bounded number
of generated requests (``TIDEFLOW_FUZZ_EXAMPLES``, default 8; CI may raise it), derandomized and
without Hypothesis' example database, so a run does not depend on earlier ones. Every operation
is tried even when one fails; the failure lists them all with a curl command to reproduce.

(schemathesis' own pytest integration needs a pytest-subtests API that pytest 9 changed, so the
operations are driven here with Hypothesis directly.)
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from connectors.webhook.signing import SIGNATURE_HEADER, sign_payload
from designer.app import create_app
from engine import auth, connectors
from engine.db.session import transaction
from tests.dbtemplate import seeded_sqlite

EXAMPLES = int(os.environ.get("TIDEFLOW_FUZZ_EXAMPLES", "8"))
READINESS = ("/readyz", "/api/ready")
HOOK_SECRET = "a-shared-secret-for-the-hook-0001"


def _fuzz(operation: Any, headers: dict[str, str]) -> str | None:
    """Run one operation's generated requests; the first 5xx (after shrinking), or None."""
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        response = case.call(headers=headers)
        if operation.path in READINESS and response.status_code == 503:
            return  # "not ready" is the answer there: this app runs without Temporal
        if response.status_code == 503 and response.headers.get("retry-after") and "message" in response.text:
            return  # a deliberate "come back later" (this app runs without Temporal), not a crash
        assert response.status_code < 500, (
            f"{label} → {response.status_code}\n  {case.as_curl_command()}\n  {response.text[:500]}")

    try:
        fuzz()
    except AssertionError as exc:
        return str(exc).split("\n\nFalsifying")[0]
    except Exception as exc:  # the app raised out of the ASGI call: a server error too
        return f"{label} raised {type(exc).__name__}: {exc}"[:800]
    return None


@pytest.mark.fuzz
def test_no_generated_request_gets_a_server_error(db_url: str, cheap_passwords: None) -> None:
    seeded_sqlite(db_url)
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "fuzzer", "a-long-password", "admin"), "fuzz")
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(db_url, connect=False), headers=headers)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation of the schema does not load: {result}"
        operations.append(result.ok())
    assert len(operations) > 50, "the schema lists the API's operations"
    failures = [found for op in operations if (found := _fuzz(op, headers)) is not None]
    assert not failures, f"{len(failures)} operations answered 5xx:\n" + "\n".join(failures)


# -- the explicit examples: every request of issue 18, item 5 that once gave a 500 ---------------------------
DEEP_PAYLOAD = json.dumps({"id": "d1", "type": "order.paid", "customer": {"phone": "13700000009"},
                           "payload": {}}).encode().replace(b'"payload": {}', b'"payload": ' + b'{"a": ' * 900 + b"1"
                                                            + b"}" * 900)
EXPLICIT: list[tuple[str, str, str, bytes, int, str]] = [
    ("100,000-deep array", "/api/events", "POST", b"[" * 100_000 + b"]" * 100_000, 400, "nested deeper"),
    ("900-deep payload (RecursionError in routing)", "/api/events", "POST", DEEP_PAYLOAD, 400, "nested deeper"),
    ("occurred_at 0001-01-01T00:00:00+14:00 (OverflowError)", "/api/events", "POST", json.dumps({
        "id": "o1", "type": "order.paid", "customer": {"phone": "13700000009"},
        "occurred_at": "0001-01-01T00:00:00+14:00"}).encode(), 422, "range"),
    ("an unknown customer_id", "/api/events", "POST", json.dumps({
        "id": "u1", "type": "order.paid", "customer": {"customer_id": "c_does_not_exist"}}).encode(), 422,
     "does not exist"),
    ("a lone surrogate", "/api/events", "POST", b'{"id": "s1", "type": "order.paid", "customer": {"phone": '
                                                b'"13700000009"}, "payload": {"note": "\\ud800"}}', 400, "surrogate"),
    ("a non-UTF-8 body on /api/decisions", "/api/decisions", "POST", '{"xml": "决策"}'.encode("gbk"), 400, "UTF-8"),
]


@pytest.mark.fuzz
def test_the_explicit_examples_of_the_issue_get_a_4xx_naming_the_problem(db_url: str,
                                                                         cheap_passwords: None) -> None:
    """Through schemathesis' own cases on the same in-process app as the fuzzing above, so the explicit
    examples run wherever the fuzzing runs (and against the real stack in test_security_stack.py)."""
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "fuzzer", "a-long-password", "admin"), "fuzz")
        connectors.save(db, "atk-hook", "webhook", "atk", {}, {"secret": HOOK_SECRET})
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(db_url, connect=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
    for what, path, method, body, status, says in EXPLICIT:
        case = schema[path][method].Case(body=body, media_type="application/octet-stream")
        r = case.call(headers={**headers, "content-type": "application/json"})
        assert r.status_code == status and says in r.text, (what, r.status_code, r.text[:300])
    # /hooks is not in the API schema (platforms call it, signed): the same app, a correctly signed deep body
    deep = json.dumps({"id": "h1", "type": "order.paid", "customer": {"phone": "13700000008"},
                       "payload": {}}).encode().replace(b'"payload": {}', b'"payload": ' + b"[" * 5000 + b"]" * 5000)
    signed = {SIGNATURE_HEADER: sign_payload(HOOK_SECRET, deep, int(time.time())), "content-type": "application/json"}
    r = TestClient(app).post("/hooks/atk-hook", content=deep, headers=signed)
    assert r.status_code == 400 and "nested deeper" in r.text, r.text[:300]
