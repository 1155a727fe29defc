"""The 退款工单 template end to end on the time-skipping server: a refund event (redelivered, and
reported twice) → exactly one ticket → routed by amount → least-loaded agent → SLA → escalation on
breach → three-level review (with a send-back) → approved, the customer told → resolved."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from activities.tickets import service
from engine import events as ingest
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.tickets_workflow import signal_changed, start_pending
from engine.worker import build_worker
from tests.engine import ticketkit as kit
from tests.engine.flowkit import publish
from tests.waiting import until

SHANGHAI = ZoneInfo("Asia/Shanghai")
FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
def queue() -> str:
    return f"refund-{uuid.uuid4().hex[:8]}"


def next_monday(now: datetime) -> date:
    local = now.astimezone(SHANGHAI).date()
    return local + timedelta(days=(0 - local.weekday()) % 7 or 7)


def refund(event_id: str, at: datetime, amount_fen: int = 680000) -> ingest.EventIn:
    return ingest.EventIn(id=event_id, type="refund.requested", source="youzan",
                          customer={"phone": "13800138000", "youzan_buyer": "b-1"},
                          occurred_at=at, payload={"refund_id": "R-1", "order_id": "O-9", "shop": "s1",
                                                   "channel": "youzan", "status": "requested",
                                                   "amount_fen": amount_fen, "reason": "不想要了"})


def decide(db_url: str, ticket_id: int, step: int, decision: str, who: int, at: datetime, reason: str = "") -> None:
    with transaction(db_url) as db:
        user = db.get(models.User, who)
        assert user is not None
        service.decide_review(db, service.get_ticket(db, ticket_id, lock=True), step, decision, reason, user, at)


async def test_refund_template_end_to_end(time_env: Any, db_url: str, queue: str) -> None:
    monday = next_monday(await time_env.get_current_time())
    lead, head = kit.user(db_url, "lead", "ops"), kit.user(db_url, "head", "ops")
    fin = kit.user(db_url, "fin", "finance")
    busy, idle = kit.user(db_url, "busy"), kit.user(db_url, "idle")
    kit.group(db_url, "refund", "least_loaded", lead)
    kit.group(db_url, "refund-vip", "least_loaded", lead)
    kit.agent(db_url, busy, ["refund-vip"])
    kit.agent(db_url, idle, ["refund-vip"])
    with transaction(db_url) as db:  # busy already has two open tickets
        for n in range(2):
            t, _ = service.create_ticket(db, type_key="refund", subject=f"old {n}", group="refund-vip",
                                         now=datetime.now(SHANGHAI))
            t.assignee_id, t.workflow_id = busy, ""
    publish(db_url, json.loads((FLOWS / "refund-ticket.json").read_text(encoding="utf-8")))

    start = datetime.combine(monday, time(9, 0), SHANGHAI)
    await time_env.sleep(start - await time_env.get_current_time())
    now = await time_env.get_current_time()
    assert ingest.store(refund("youzan:s1:refund:R-1:requested", now), db_url)[0] == "accepted"
    assert ingest.store(refund("youzan:s1:refund:R-1:requested", now), db_url)[0] == "duplicate"
    assert ingest.store(refund("push-2", now), db_url)[0] == "accepted"  # the same refund under another id
    with session_factory(db_url)() as db:
        tickets = db.scalars(select(models.Ticket).where(models.Ticket.source == "refund")).all()
        assert len(tickets) == 1
        ticket_id = tickets[0].id
        assert (tickets[0].order_id, tickets[0].order_shop, tickets[0].refund_id) == ("O-9", "s1", "R-1")
        assert tickets[0].customer_id is not None and tickets[0].amount_fen == 680000

    client = time_env.client
    async with build_worker(client, queue, db_url):
        assert await start_pending(client, db_url, queue) == [f"ticket/{ticket_id}"]
        assert await start_pending(client, db_url, queue) == []
        await until(lambda: service_review(db_url, ticket_id), "the review to open")
        made = kit.ticket(db_url, ticket_id)
        assert (made.group_key, made.priority, made.assignee_id) == ("refund-vip", "P2", idle)

        # nobody answers: the first-response SLA (P2: 1 h) breaches at 10:00 and escalates
        await time_env.sleep(timedelta(hours=1, minutes=10))
        await until(lambda: kit.events(db_url, ticket_id, "escalated"), "the escalation")
        escalated = kit.ticket(db_url, ticket_id)
        assert escalated.priority == "P1"
        assert escalated.assignee_id == busy  # reassigned away from idle
        assert lead in [e.data["to"] for e in kit.events(db_url, ticket_id, "notified")]

        # three-level review: lead approves, head sends back, lead approves again, head and finance approve
        at = await time_env.get_current_time()
        decide(db_url, ticket_id, 0, "approve", lead, at)
        decide(db_url, ticket_id, 1, "send_back", head, at, "缺少凭证")
        with pytest.raises(service.TicketError):
            decide(db_url, ticket_id, 1, "approve", head, at)  # step 2 is not waiting any more
        decide(db_url, ticket_id, 0, "approve", lead, at)
        decide(db_url, ticket_id, 1, "approve", head, at)
        with pytest.raises(service.TicketError) as refused:
            decide(db_url, ticket_id, 2, "approve", busy, at)  # an agent is not finance
        assert refused.value.status == 403
        decide(db_url, ticket_id, 2, "approve", fin, at)
        await signal_changed(client, ticket_id)
        await until(lambda: kit.events(db_url, ticket_id, "reply"), "the approval reply")
        reply = kit.events(db_url, ticket_id, "reply")[0]
        assert reply.public and "审核通过" in reply.body
        await until(lambda: kit.events(db_url, ticket_id, "reply")[0].data.get("delivery") is not None
                        and kit.events(db_url, ticket_id, "reply")[0].data["delivery"] != "queued", "delivery")

        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, ticket_id), "resolved", await time_env.get_current_time(),
                               "test")
        await signal_changed(client, ticket_id)
        result = await client.get_workflow_handle(f"ticket/{ticket_id}").result()
        assert result["status"] == "resolved"
    fired = [e.data["checkpoint"] for e in kit.events(db_url, ticket_id) if e.kind in ("sla_warning", "sla_breach")]
    assert len(fired) == len(set(fired))  # every checkpoint fired once
    with session_factory(db_url)() as db:
        outcome = [e.data["outcome"] for e in kit.events(db_url, ticket_id, "review_outcome")]
        assert outcome == ["approved"]
        assert db.scalar(select(func.count()).select_from(models.TicketReview)
                         .where(models.TicketReview.ticket_id == ticket_id)) == 3


def service_review(db_url: str, ticket_id: int) -> bool:
    with session_factory(db_url)() as db:
        return bool(service.review_rows(db, ticket_id))
