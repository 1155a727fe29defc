"""The baseline of the interpreter-overhead benchmark: a Temporal workflow written by hand.

It does the steps of the benchmark flow (send a message, tag, read the customer for the condition,
send a second message when the condition holds) by calling the *same* activities by name with the
*same* :class:`~engine.runtime.ActionRequest` and the same timeouts and retry policy as the
interpreter — and nothing else: no per-node statistics, no checkpoint, no timeline, no generic walk.
Like the interpreter, it runs these short, idempotent steps as local activities (``LOCAL``), so the
ratio measures the interpreter, not the choice of activity kind.

This module is imported inside the workflow sandbox, so it imports nothing but Temporal and the
engine's (pass-through) runtime dataclasses.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from engine.runtime import ActionRequest, JourneyInput

WORKFLOW_NAME = "BenchHandWrittenJourney"
#: the NodeType defaults the built-in actions use (engine/nodes/base.py)
TIMEOUT = timedelta(seconds=30)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=5), maximum_attempts=5)
TAG = "bench-tagged"
#: send_message and tag run as local activities in the interpreter (NodeType.runs_locally): the same here
LOCAL = True
#: newer engines pass the journey's clock with each action request; do the same when the field exists
_HAS_NOW = "now" in {f.name for f in dataclasses.fields(ActionRequest)}


@workflow.defn(name=WORKFLOW_NAME)
class HandWrittenJourney:
    """hello (action.send_message) → tag (action.tag) → is_tagged? (condition on the customer) → thanks."""

    @workflow.run
    async def run(self, inp: JourneyInput) -> dict[str, Any]:
        flow = inp.flow
        nodes: dict[str, dict[str, Any]] = flow["nodes"]
        wid = workflow.info().workflow_id

        async def act(node_id: str) -> dict[str, Any]:
            node = nodes[node_id]
            clock: dict[str, Any] = {"now": workflow.now().isoformat()} if _HAS_NOW else {}
            request = ActionRequest(
                key=f"{wid}/{node_id}/1", workflow_id=wid, flow_id=flow["flow_id"], version=flow["version"],
                node_id=node_id, node_type=node["type"], config=node["config"], customer_id=inp.customer_id,
                variables=inp.variables, event=inp.entry_event, settings=flow["settings"], **clock)
            if LOCAL:
                local: dict[str, Any] = await workflow.execute_local_activity(
                    f"node:{node['type']}", request, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
                return local
            result: dict[str, Any] = await workflow.execute_activity(
                f"node:{node['type']}", request, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            return result

        await act("hello")
        await act("tag")
        customer: dict[str, Any] = await workflow.execute_local_activity(
            "journey.customer", inp.customer_id, start_to_close_timeout=TIMEOUT)
        if TAG in (customer.get("tags") or []):
            await act("thanks")
            return {"status": "completed", "node": "thanks"}
        return {"status": "completed", "node": "is_tagged"}
