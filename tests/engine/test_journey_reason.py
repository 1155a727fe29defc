"""A journey that fails at a node says why: the interpreter's own reason (``Journey.error``, the ``state`` query,
the workflow's failure) — on Temporal's time-skipping server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from engine.db import models
from engine.db.session import session_factory
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import record

#: a condition a customer's own data can break: a division by their bag count
SPLIT_CHECK = flow("split-check", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("check", "logic.condition", {"expr": "100 // customer.bags > 10"}),
    ("tag", "action.tag", {"add": ["big"]})],
    [("start", "out", "check"), ("check", "yes", "tag")])

#: a message whose template the same data breaks: the action is refused for good
SPLIT_SEND = flow("split-send", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("hello", "action.send_message", {"template": "每袋 {{ 100 // customer.bags }} 元"}),
    ("done", "logic.exit", {})],
    [("start", "out", "hello"), ("hello", "out", "done")])


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def _start(env: Any, queue: str, compiled: dict[str, Any], cid: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid,
                                       entry_event={"id": f"e-{cid}", "type": "custom.bill", "payload": {}}),
        id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)


def _journey(db_url: str, wid: str) -> models.Journey:
    with session_factory(db_url)() as db:
        found = db.get(models.Journey, wid)
        assert found is not None
        return found


async def test_a_condition_that_cannot_be_evaluated_fails_the_journey_with_the_node(
        time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, SPLIT_CHECK)
    cid = customer(db_url, "王五", bags=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        state = await handle.query("state")
        await record(handle, "logic_failed_before_reason_msg")
    english = "node 'check': cannot evaluate '100 // customer.bags > 10': integer division or modulo by zero"
    assert str(failed.value.cause) == english
    assert state["error"] == english
    assert _journey(db_url, handle.id).error == english


async def test_an_action_refused_for_good_fails_the_journey_with_the_node(
        time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, SPLIT_SEND)
    cid = customer(db_url, "赵六", bags=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid)
        result = await handle.result()
        state = await handle.query("state")
        await record(handle, "action_failed_before_reason_msg")
    assert result["status"] == "failed"
    assert state["error"].startswith("node 'hello': ") and "division or modulo by zero" in state["error"]
    assert _journey(db_url, handle.id).error == state["error"]
