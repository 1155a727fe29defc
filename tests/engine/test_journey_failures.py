"""Why a journey failed, read from Temporal's history on the real dev server (the time-skipping server has
no ResetWorkflowExecution), and Retry / Cancel: the failed step runs again with the same idempotency key,
a journey retrying an outside system can be given up, every action is audited before → after."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from engine import auth, connectors, journey_failures
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.session import session_factory, transaction
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import record
from tests.waiting import until

#: a template a customer's own data can break: a division by their bag count
SPLIT = flow("split-bill", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("hello", "action.send_message", {"template": "每袋 {{ 100 // customer.bags }} 元"}),
    ("done", "logic.exit", {})],
    [("start", "out", "hello"), ("hello", "out", "done")])

#: a message over the webhook channel (the outside receiver may be down)
NOTIFY = flow("notify-crm", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("tell", "action.send_message", {"template": "hi {{ customer.name }}", "channel": "webhook"}),
    ("done", "logic.exit", {})],
    [("start", "out", "tell"), ("tell", "out", "done")])


class Receiver(BaseHTTPRequestHandler):
    status = 503
    hits: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(self.headers.get("Idempotency-Key") or "")
        body = b'{"error":"maintenance"}' if type(self).status >= 400 else b'{"id":"m-1"}'
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.status, Receiver.hits = 503, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/crm"
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin(db_url: str) -> models.User:
    with transaction(db_url) as db:
        user = auth.create_user(db, "ops-lead", "password-123", "marketer")
        db.expunge(user)
        return user


async def _start(env: Any, queue: str, compiled: dict[str, Any], cid: str, db_url: str) -> str:
    """Start a journey as the router does: its row first, then the workflow."""
    wid = f"journey/{compiled['flow_id']}/{cid}"
    with transaction(db_url) as db:
        db.add(models.Journey(workflow_id=wid, flow_id=compiled["flow_id"], version=compiled["version"],
                              customer_id=cid, status="running"))
    await env.client.start_workflow(JOURNEY_WORKFLOW, JourneyInput(
        flow=compiled, customer_id=cid, entry_event={"id": f"e-{cid}", "type": "custom.bill", "payload": {}}),
        id=wid, task_queue=queue)
    return wid


def _journey(db_url: str, wid: str) -> models.Journey:
    with session_factory(db_url)() as db:
        found = db.get(models.Journey, wid)
        assert found is not None
        return found


async def test_a_failed_step_says_why_and_runs_again_after_the_data_is_fixed(dev_env: Any, db_url: str,
                                                                             admin: models.User) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    compiled = publish(db_url, SPLIT)
    cid = customer(db_url, "王五", bags=0)
    async with build_worker(dev_env.client, queue, db_url):
        wid = await _start(dev_env, queue, compiled, cid, db_url)
        result = await dev_env.client.get_workflow_handle(wid).result()
        assert result["status"] == "failed"

        failure = await journey_failures.read_failure(dev_env.client, wid)
        assert failure is not None
        assert (failure.node_id, failure.node_type, failure.kind, failure.attempts) == \
            ("hello", "action.send_message", "action", 1)
        assert "division or modulo by zero" in failure.error and "Traceback" not in failure.error
        assert failure.retryable is False and failure.reset_event_id

        assert await journey_failures.record_new_failures(dev_env.client, db_url) == 1
        assert await journey_failures.record_new_failures(dev_env.client, db_url) == 0  # kept once
        with session_factory(db_url)() as db:
            kept = db.get(JourneyFailure, wid)
            assert kept is not None and kept.node_id == "hello" and kept.flow_id == "split-bill"

        with transaction(db_url) as db:
            row = db.get(models.Customer, cid)
            assert row is not None
            row.attributes = {**row.attributes, "bags": 4}
        run_id = await journey_failures.retry(dev_env.client, db_url, wid, admin)
        assert run_id != failure.run_id
        done = await dev_env.client.get_workflow_handle(wid, run_id=run_id).result()
        assert done["status"] == "exited", done
        await until(lambda: _journey(db_url, wid).status == "exited", "the retried journey's checkpoint",
                    timeout=60, interval=0.1)
    with session_factory(db_url)() as db:
        sent = db.scalars(select(models.Message.content).where(models.Message.customer_id == cid)).all()
        assert sent == ["每袋 25 元"]  # sent once, by the retried step
        assert db.get(JourneyFailure, wid) is None
        entry = db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == "journey.retried")).one()
        assert entry.actor == "ops-lead" and entry.target == wid
        assert entry.before is not None and entry.before["status"] == "failed" and entry.before["node"] == "hello"
        assert entry.after == {"status": "running", "node": "hello"}

    # a journey that is not failed cannot be retried
    with pytest.raises(journey_failures.JourneyActionError):
        await journey_failures.retry(dev_env.client, db_url, wid, admin)


async def test_an_outside_system_down_shows_the_attempts_and_can_be_given_up(dev_env: Any, db_url: str,
                                                                            admin: models.User, receiver: str) -> None:
    with transaction(db_url) as db:
        connectors.save(db, "crm", "webhook", "CRM", {"url": receiver}, {"secret": "s" * 32})
    queue = f"q-{uuid.uuid4().hex[:8]}"
    compiled = publish(db_url, NOTIFY)
    cid = customer(db_url, "赵六")
    async with build_worker(dev_env.client, queue, db_url):
        wid = await _start(dev_env, queue, compiled, cid, db_url)

        async def retrying() -> journey_failures.Trouble | None:
            found = await journey_failures.read_trouble(dev_env.client, wid)
            return found

        trouble = await until(retrying, "the first failed try", timeout=60, interval=0.1)
        assert (trouble.state, trouble.node_id, trouble.max_attempts) == ("retrying", "tell", 5)
        assert "HTTP 503" in trouble.error and "maintenance" in trouble.error

        status = await journey_failures.give_up(dev_env.client, db_url, wid, admin)
        assert status == "cancelled"
        description = await dev_env.client.get_workflow_handle(wid).describe()
        assert description.status is not None and description.status.name == "TERMINATED"
    assert _journey(db_url, wid).status == "cancelled"
    assert Receiver.hits and len(set(Receiver.hits)) == 1  # every attempt with the one idempotency key
    with session_factory(db_url)() as db:
        entry = db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == "journey.cancelled")).one()
        assert entry.before is not None and entry.before["node"] == "tell" and entry.before["attempts"] >= 1
        assert entry.after == {"status": "cancelled"}


async def test_the_receiver_down_for_every_attempt_fails_the_journey_with_the_count(
        dev_env: Any, db_url: str, admin: models.User, receiver: str) -> None:
    """Five attempts (1 + 2 + 4 + 8 s of back-off), then the journey fails; the receiver back up, Retry
    delivers the same message with the same key."""
    with transaction(db_url) as db:
        connectors.save(db, "crm", "webhook", "CRM", {"url": receiver}, {"secret": "s" * 32})
    queue = f"q-{uuid.uuid4().hex[:8]}"
    compiled = publish(db_url, NOTIFY)
    cid = customer(db_url, "孙七")
    async with build_worker(dev_env.client, queue, db_url):
        wid = await _start(dev_env, queue, compiled, cid, db_url)
        assert (await dev_env.client.get_workflow_handle(wid).result())["status"] == "failed"
        await record(dev_env.client.get_workflow_handle(wid), "send_local_try_then_activity_retries")
        failure = await journey_failures.read_failure(dev_env.client, wid)
        assert failure is not None
        assert (failure.node_id, failure.attempts, failure.retryable) == ("tell", 5, True)
        assert "HTTP 503" in failure.error
        Receiver.status = 200
        run_id = await journey_failures.retry(dev_env.client, db_url, wid, admin)
        assert (await dev_env.client.get_workflow_handle(wid, run_id=run_id).result())["status"] == "exited"
    # the node's 5 attempts (the first inside the workflow task, 4 as an activity), then the retry's one
    assert len(Receiver.hits) == 6 and len(set(Receiver.hits)) == 1
    with session_factory(db_url)() as db:
        statuses = db.scalars(select(models.Message.status).where(models.Message.customer_id == cid)).all()
    assert statuses == ["sent"]
