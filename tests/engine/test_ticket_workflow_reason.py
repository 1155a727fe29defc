"""A ticket flow that reaches a node type this worker does not have: its timeline says why in the reader's
language, like a journey's (docs/i18n.md) — the same Msg as the journey interpreter's, kept beside the English as
``stored_error``. Runs that failed so before replay with the same commands (recorded histories)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.tickets import service
from designer.i18n import translate
from engine.db import models
from engine.db.session import transaction
from engine.tickets_workflow import signal_changed, start_ticket
from engine.worker import PASSTHROUGH, build_worker, workflows
from tests.engine import ticketkit as kit
from tests.engine.historykit import HISTORIES, record
from tests.waiting import until
from wording.stored import read_stored

ENGLISH = "node type 'plugin.gone' is not installed on this worker"
CHINESE = "此 worker 上未安装节点类型「plugin.gone」"

GONE_FLOW = kit.ticket_flow("gone-plugin", [
    ("start", "trigger.ticket", {}),
    ("assign", "ticket.assign", {}),
], [("start", "out", "assign")])


@pytest.fixture
def queue() -> str:
    return f"gone-{uuid.uuid4().hex[:8]}"


def _failed_steps(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in result["timeline"] if s["what"] == "failed"]


async def test_a_missing_node_type_is_on_the_tickets_timeline_in_each_language(
        time_env: Any, db_url: str, queue: str) -> None:
    kit.publish_ticket_flow(db_url, GONE_FLOW)
    with transaction(db_url) as db:  # the plugin was removed since the flow was published
        version = db.scalar(select(models.FlowVersion).where(models.FlowVersion.flow_id == "gone-plugin"))
        assert version is not None
        compiled = dict(version.compiled)
        compiled["nodes"] = {**compiled["nodes"], "assign": {**compiled["nodes"]["assign"], "type": "plugin.gone"}}
        version.compiled = compiled
    kit.ticket_type(db_url, "gone", "gone-plugin")
    with transaction(db_url) as db:
        made, _ = service.create_ticket(db, type_key="gone", subject="空调不制冷",
                                        now=await time_env.get_current_time())
        ticket_id = made.id
    client = time_env.client
    async with build_worker(client, queue, db_url):
        wid = await start_ticket(client, db_url, queue, ticket_id)
        assert wid is not None
        handle = client.get_workflow_handle(wid)

        async def walked() -> bool:
            state = await handle.query("state")
            return bool(state["walk_done"] and _failed_steps(state))

        await until(walked, "the walk failing at the missing node type")
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, ticket_id), "resolved", await time_env.get_current_time(),
                               "test")
        await signal_changed(client, ticket_id)
        result = await handle.result()
        await record(handle, "ticket_node_type_missing_msg")
    [step] = _failed_steps(result)
    assert step["node"] == "assign" and step["error"] == ENGLISH  # the English, as before
    reason = read_stored(step["stored_error"])
    assert translate(reason, "zh-CN") == CHINESE and translate(reason, "en") == ENGLISH


async def test_tickets_that_failed_at_a_missing_node_type_before_replay() -> None:
    """A ticket whose flow failed so before the Msg (``ticket_node_type_missing_before_msg``) replays on this code
    without nondeterminism — the change is data on the timeline, no command — and so does one since."""
    replayer = Replayer(workflows=workflows(), workflow_runner=SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)))
    for name in ("ticket_node_type_missing_before_msg", "ticket_node_type_missing_msg"):
        path: Path = HISTORIES / f"{name}.json"
        result = await replayer.replay_workflow(WorkflowHistory.from_json(name, path.read_text()))
        assert result.replay_failure is None, name
