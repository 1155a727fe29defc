"""The OpenAPI schema, fuzzed with schemathesis: no generated request gets a 5xx.

The app runs in process (ASGI) on a fresh SQLite database with demo data, as an admin with an API
token, so every operation is reachable past authentication. Each operation gets a bounded number
of generated requests (``TIDEFLOW_FUZZ_EXAMPLES``, default 8; CI may raise it), derandomized and
without Hypothesis' example database, so a run does not depend on earlier ones. Every operation
is tried even when one fails; the failure lists them all with a curl command to reproduce.

(schemathesis' own pytest integration needs a pytest-subtests API that pytest 9 changed, so the
operations are driven here with Hypothesis directly.)
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from designer.app import create_app
from engine import auth
from engine.db.session import transaction
from tideflow.demo import seed

EXAMPLES = int(os.environ.get("TIDEFLOW_FUZZ_EXAMPLES", "8"))
READINESS = ("/readyz", "/api/ready")


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
def test_no_generated_request_gets_a_server_error(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    seed(db_url)
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
