"""action.create_ticket in a journey: the customer gets one ticket (even if the action is retried)
and the ticket's own workflow starts — once, right after the ticket's commit (engine/follow_ups.py, as a
``tideflow worker`` runs: tideflow/stack.py worker_running) — and runs its flow."""

from __future__ import annotations

import collections
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import Client

from engine.db import models
from engine.db.session import session_factory
from engine.pipeline import follow_ups_routed
from engine.router import Router
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine import ticketkit as kit
from tests.engine.flowkit import customer, flow, publish
from tests.waiting import until


async def test_a_journey_creates_a_ticket_that_runs_its_flow(time_env: Any, db_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: collections.Counter[str] = collections.Counter()  # every start asked of Temporal, by workflow id
    start_workflow = Client.start_workflow

    async def counting(self: Client, *args: Any, **kwargs: Any) -> Any:
        attempts[str(kwargs.get("id"))] += 1
        return await start_workflow(self, *args, **kwargs)

    monkeypatch.setattr(Client, "start_workflow", counting)
    queue = f"create-{uuid.uuid4().hex[:8]}"
    agent = kit.user(db_url, "ann")
    kit.group(db_url, "care", "round_robin")
    kit.agent(db_url, agent, ["care"])
    publish(db_url, kit.ticket_flow("care-flow", [("start", "trigger.ticket", {}), ("assign", "ticket.assign", {})],
                                    [("start", "out", "assign")]))
    kit.ticket_type(db_url, "care", "care-flow", "care",
                    fields=[{"key": "reason", "type": "text", "required": True}])
    journey = publish(db_url, flow("complaints", [
        ("start", "trigger.api", {}),
        ("ticket", "action.create_ticket", {"ticket_type": "care", "subject": "{{ customer.name }} 的回访",
                                            "fields": {"reason": "差评 {{ vars.stars }} 星"}, "channel": "dry-run"}),
    ], [("start", "out", "ticket")]))
    cid = customer(db_url, "王五")
    async with follow_ups_routed(Router(time_env.client, db_url, queue)), build_worker(time_env.client, queue, db_url):
        result = await (await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=journey, customer_id=cid, variables={"stars": 1}),
            id=f"journey/complaints/{cid}", task_queue=queue)).result()
        ticket_id = result["variables"]["ticket_id"]
        made = await until(lambda: kit.ticket(db_url, ticket_id).assignee_id, "the ticket's flow to assign it")
        assert made == agent
    assert attempts[f"ticket/{ticket_id}"] == 1, f"the ticket's workflow was started {attempts} times"
    with session_factory(db_url)() as db:
        tickets = db.scalars(select(models.Ticket)).all()
        assert len(tickets) == 1
        assert (tickets[0].customer_id, tickets[0].subject) == (cid, "王五 的回访")
        assert tickets[0].fields == {"reason": "差评 1 星"}
        assert tickets[0].workflow_id == f"ticket/{ticket_id}" and tickets[0].source == "flow"
