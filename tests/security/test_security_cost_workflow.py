"""Inside a journey, an expression past its bound fails the node with the reason — it never holds a
workflow task near Temporal's deadlock detector, never retries forever, and cancel keeps working.

The conditions here are cheap on validation's sample data (3 order lines), so the flows publish, and
quadratic on a real order of a few hundred lines: the realistic way a costly condition reaches a
running journey. Runs on Temporal's time-skipping server.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle

from engine.db import models
from engine.db.session import session_factory
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import record
from tests.security.cost_kit import QUADRATIC, order
from wording.stored import stored_english


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def _start(env: Any, queue: str, compiled: dict[str, Any], cid: str,
                 entry: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid, entry_event=entry),
        id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)


async def _task_failures(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


def _journey(db_url: str, wid: str) -> models.Journey:
    with session_factory(db_url)() as db:
        journey = db.get(models.Journey, wid)
        assert journey is not None
        return journey


async def test_a_condition_past_its_bound_fails_the_node_with_the_reason(time_env: Any, db_url: str,
                                                                        queue: str) -> None:
    document = flow("big-orders", [("start", "trigger.event", {"event": "order.paid"}),
                                   ("check", "logic.condition", {"expr": QUADRATIC.format(n=0)}),
                                   ("tag", "action.tag", {"add": ["big"]})],
                    [("start", "out", "check"), ("check", "yes", "tag")])
    compiled = publish(db_url, document)  # cheap on the sample order: it validates
    cid = customer(db_url)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid, order(400))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        state = await handle.query("state")
        await record(handle, "expression_too_costly")
        assert await _task_failures(handle) == 0  # failed once, cleanly: no workflow task retried
    reason = str(failure.value.cause)
    assert "node 'check'" in reason and "operations" in reason
    assert state["status"] == "failed" and "node 'check'" in state["error"]
    assert [s["node"] for s in state["timeline"] if s["what"] == "failed"] == ["check"]
    journey = _journey(db_url, handle.id)
    assert journey.status == "failed" and journey.error is not None
    assert "node 'check'" in stored_english(journey.error) and "operations" in stored_english(journey.error)


async def test_a_wait_filter_past_its_bound_fails_the_journey(time_env: Any, db_url: str, queue: str) -> None:
    document = flow("wait-big", [("start", "trigger.event", {"event": "customer.created"}),
                                 ("wait", "wait.event", {"event": "order.paid", "filter": QUADRATIC.format(n=0),
                                                         "timeout": "P7D"}),
                                 ("tag", "action.tag", {"add": ["bought"]})],
                    [("start", "out", "wait"), ("wait", "event", "tag")])
    compiled = publish(db_url, document)
    cid = customer(db_url)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid, {"id": "c1", "type": "customer.created", "payload": {}})
        await time_env.sleep(timedelta(hours=1))  # the journey waits: an event before the wait is not its event
        await handle.signal("event", order(400))
        result = await handle.result()
        assert await _task_failures(handle) == 0
    assert result["status"] == "failed", result["timeline"]
    journey = _journey(db_url, handle.id)
    assert journey.status == "failed" and journey.error is not None
    assert "node 'wait': filter" in stored_english(journey.error) and "operations" in stored_english(journey.error)


async def test_cancel_works_while_costly_filters_run(time_env: Any, db_url: str, queue: str) -> None:
    # each event costs a good part of the bound (200 lines: ~40,000 operations) and matches nothing
    document = flow("wait-cancel", [("start", "trigger.event", {"event": "customer.created"}),
                                    ("wait", "wait.event", {"event": "order.paid",
                                                            "filter": QUADRATIC.format(n=100_000), "timeout": "P7D"}),
                                    ("tag", "action.tag", {"add": ["bought"]})],
                    [("start", "out", "wait"), ("wait", "event", "tag")],
                    exit_on=[{"event": "order.paid", "filter": QUADRATIC.format(n=100_000)}])
    compiled = publish(db_url, document)
    cid = customer(db_url)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid, {"id": "c1", "type": "customer.created", "payload": {}})
        for i in range(5):
            await handle.signal("event", order(200, f"o{i}"))
        await handle.signal("cancel", "by test")
        result = await handle.result()
        assert await _task_failures(handle) == 0
    assert result["status"] == "cancelled"
