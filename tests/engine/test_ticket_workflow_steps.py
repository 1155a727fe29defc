"""Ticket flows waiting on people, on the time-skipping server: the 设备报修 template (skill-based
routing, the spare-part check step, a purchasing sub-task), and a review chain that times out."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from activities.tickets import service
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.tickets_workflow import signal_changed, start_ticket
from engine.worker import build_worker
from tests.engine import ticketkit as kit
from tests.engine.flowkit import publish
from tests.waiting import until

FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
def queue() -> str:
    return f"steps-{uuid.uuid4().hex[:8]}"


async def test_repair_template_routes_by_skill_and_waits_for_the_parts_check(
        time_env: Any, db_url: str, queue: str) -> None:
    lead = kit.user(db_url, "lead", "ops")
    fridge, aircon, buyer = kit.user(db_url, "fridge"), kit.user(db_url, "aircon"), kit.user(db_url, "buyer")
    kit.group(db_url, "repair", "skill_based", lead)
    kit.group(db_url, "purchasing", "round_robin")
    kit.agent(db_url, fridge, ["repair"], skills=["冰箱", "制冷"])
    kit.agent(db_url, aircon, ["repair"], skills=["空调", "制冷"], capacity=3)
    kit.agent(db_url, buyer, ["purchasing"])
    publish(db_url, json.loads((FLOWS / "repair-ticket.json").read_text(encoding="utf-8")))
    kit.ticket_type(db_url, "repair", "repair-ticket", "repair")
    tid = await new_ticket(time_env, db_url, "repair", "客厅空调不制冷")
    client = time_env.client
    async with build_worker(client, queue, db_url):
        await start_ticket(client, db_url, queue, tid)
        steps = await until(lambda: open_steps(db_url, tid), "the spare-part check")
        routed = kit.ticket(db_url, tid)
        assert routed.assignee_id == aircon and routed.needs == ["空调", "制冷"]
        assert steps[0]["outcomes"] == ["in_stock", "order_parts"]
        with transaction(db_url) as db, pytest.raises(service.TicketError):
            service.complete_step(db, service.get_ticket(db, tid), steps[0]["step_id"], "maybe", "", utcnow(), "t")
        with transaction(db_url) as db:
            service.complete_step(db, service.get_ticket(db, tid), steps[0]["step_id"], "order_parts", "缺压缩机",
                                  utcnow(), "t")
        await signal_changed(client, tid)
        children = await until(lambda: progress(db_url, tid)["subtasks"], "the purchasing sub-task")
        assert [(c["group"], c["assignee_id"]) for c in children] == [("purchasing", buyer)]
        assert not kit.events(db_url, tid, "reply")  # still waiting for the part
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, children[0]["id"]), "resolved", utcnow(), "t")
        await signal_changed(client, tid)
        await until(lambda: kit.events(db_url, tid, "reply"), "the visit reply")
        assert progress(db_url, tid)["percent"] == 100
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, tid), "resolved", utcnow(), "t")
        await signal_changed(client, tid)
        assert (await client.get_workflow_handle(f"ticket/{tid}").result())["status"] == "resolved"


REVIEW_FLOW = kit.ticket_flow("review-timeout", [
    ("start", "trigger.ticket", {}),
    ("review", "ticket.review", {"steps": [
        {"name": "组长", "approver": "supervisor", "timeout": "PT2H", "on_timeout": "skip"},
        {"name": "财务", "approver": "role:finance", "timeout": "PT1H", "on_timeout": "reject"}]}),
    ("no", "ticket.update", {"note": "复核超时驳回", "priority": "P1"}),
], [("start", "out", "review"), ("review", "rejected", "no")])


async def test_review_steps_time_out_by_their_rule(time_env: Any, db_url: str, queue: str) -> None:
    kit.group(db_url, "desk", "round_robin", kit.user(db_url, "lead", "ops"))
    publish(db_url, REVIEW_FLOW)
    kit.ticket_type(db_url, "claim", "review-timeout", "desk")
    tid = await new_ticket(time_env, db_url, "claim", "理赔")
    client = time_env.client
    async with build_worker(client, queue, db_url):
        await start_ticket(client, db_url, queue, tid)
        await until(lambda: reviews(db_url, tid), "the review")
        await time_env.sleep(timedelta(hours=4))
        await until(lambda: kit.events(db_url, tid, "note"), "the rejection note")
        assert kit.ticket(db_url, tid).priority == "P1"
    timeouts = [(e.data["step"], e.data["on_timeout"]) for e in kit.events(db_url, tid, "review_timeout")]
    assert timeouts == [(1, "skip"), (2, "reject")]
    assert [s["status"] for s in reviews(db_url, tid)["steps"]] == ["skipped", "timed_out"]
    assert reviews(db_url, tid)["outcome"] == "rejected"


async def new_ticket(time_env: Any, db_url: str, type_key: str, subject: str) -> int:
    """A ticket of ``type_key`` created at the test server's time (its workflow not started yet)."""
    with transaction(db_url) as db:
        made, _ = service.create_ticket(db, type_key=type_key, subject=subject, now=await time_env.get_current_time())
        return made.id


def open_steps(db_url: str, tid: int) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return service.open_steps(db, tid)


def progress(db_url: str, tid: int) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        return service.progress(db, tid)


def reviews(db_url: str, tid: int) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        rows = service.review_rows(db, tid)
        return service.review_view(rows) if rows else {}



async def test_resolving_while_the_flow_waits_ends_the_workflow(time_env: Any, db_url: str, queue: str) -> None:
    kit.group(db_url, "desk", "round_robin", kit.user(db_url, "lead", "ops"))
    publish(db_url, kit.ticket_flow("waits", [
        ("start", "trigger.ticket", {}),
        ("review", "ticket.review", {"steps": [{"name": "组长", "approver": "supervisor"}]})],
        [("start", "out", "review")]))
    kit.ticket_type(db_url, "claim", "waits", "desk")
    tid = await new_ticket(time_env, db_url, "claim", "理赔")
    client = time_env.client
    async with build_worker(client, queue, db_url):
        await start_ticket(client, db_url, queue, tid)
        await until(lambda: reviews(db_url, tid), "the review")
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, tid), "closed", utcnow(), "t")
        await signal_changed(client, tid)
        assert (await client.get_workflow_handle(f"ticket/{tid}").result())["status"] == "closed"
