"""A ticket's workflow starts right after the commit that created it, in the process that committed it
(engine/follow_ups.py, the ticket kind): a refund sent to ``POST /api/events`` has its ticket routed with no
re-router pass; the immediate start racing the re-router's ``start_pending`` starts each workflow once; a
rollback starts nothing, a savepoint released is not a commit.

On real Temporal (time-skipping test server) and a real SQLite file. "At once" is shown by switching the
re-router off (no timing asserts): on main the ticket keeps ``workflow_id`` NULL until ``start_pending`` runs."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client, WorkflowExecutionStatus

from activities.tickets import service
from engine import auth, follow_ups
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.settings import get_settings
from engine.tickets_workflow import start_pending
from tests.engine import ticketkit as kit
from tests.engine.flowkit import publish
from tests.waiting import until

FLOWS = Path(__file__).resolve().parents[3] / "flows"


def refund_desk(db_url: str) -> None:
    """The shipped 退款工单 flow published for the shipped ``refund`` type, its two queues, one agent."""
    lead, agent = kit.user(db_url, "lead", "ops"), kit.user(db_url, "agent")
    kit.group(db_url, "refund", "least_loaded", lead)
    kit.group(db_url, "refund-vip", "least_loaded", lead)
    kit.agent(db_url, agent, ["refund", "refund-vip"])
    publish(db_url, json.loads((FLOWS / "refund-ticket.json").read_text(encoding="utf-8")))


def refund_tickets(db_url: str) -> list[models.Ticket]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Ticket).where(models.Ticket.source == "refund")))


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Workflows really started (Client.start_workflow calls that did not find one running), by id."""
    seen: collections.Counter[str] = collections.Counter()
    start_workflow = Client.start_workflow

    async def counting(self: Client, *args: Any, **kwargs: Any) -> Any:
        handle = await start_workflow(self, *args, **kwargs)
        seen[str(kwargs.get("id"))] += 1
        return handle

    monkeypatch.setattr(Client, "start_workflow", counting)
    return seen


async def test_a_refund_sent_to_the_events_api_has_its_ticket_routed_without_the_re_router(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, starts: collections.Counter[str]) -> None:
    from designer.app import create_app
    from engine.worker import build_worker

    queue = f"at-once-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    monkeypatch.setenv("TIDEFLOW_REROUTE_EVERY_SECONDS", "3600")  # the re-router (and start_pending) is off
    get_settings.cache_clear()
    refund_desk(db_url)
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "shop-bot", "a-long-password", "admin"), "test")
    app = create_app(db_url, client=time_env.client)
    async with build_worker(time_env.client, queue, db_url), app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        answer = await http.post("/api/events", json={
            "id": "youzan:s1:refund:R-1:requested", "type": "refund.requested", "source": "youzan",
            "customer": {"phone": "13800138000"},
            "payload": {"refund_id": "R-1", "order_id": "O-9", "shop": "s1", "channel": "youzan",
                        "amount_fen": 680000, "reason": "不想要了"}})
        assert answer.status_code == 202, answer.text
        [ticket] = refund_tickets(db_url)
        wid = f"ticket/{ticket.id}"
        started = await until(lambda: kit.ticket(db_url, ticket.id).workflow_id == wid,
                                  "the ticket's workflow to start (it waits for a re-router that is off)")
        routed = await until(lambda: kit.events(db_url, ticket.id, "routed"), "the ticket to be routed")
        described = await time_env.client.get_workflow_handle(wid).describe()
    assert started and routed
    assert described.status == WorkflowExecutionStatus.RUNNING  # SLA timers and the review wait in it
    assert kit.ticket(db_url, ticket.id).group_key == "refund-vip"  # ¥6,800: the big-refund queue
    assert starts[wid] == 1
    get_settings.cache_clear()


async def test_the_immediate_start_and_start_pending_race_and_start_each_workflow_once(
        time_env: Any, db_url: str, starts: collections.Counter[str]) -> None:
    from engine.pipeline import follow_ups_routed

    queue = f"race-{uuid.uuid4().hex[:8]}"
    refund_desk(db_url)
    client = time_env.client
    stop = asyncio.Event()

    async def start_pending_hard() -> int:  # another process's re-router, looking all the time
        passes = 0
        while not stop.is_set():
            await start_pending(client, db_url, queue)
            passes += 1
            await asyncio.sleep(0)
        return passes

    def create(n: int) -> int:
        with transaction(db_url) as db:
            ticket, _ = service.create_ticket(db, type_key="refund", subject=f"退款 {n}", amount_fen=100 * n,
                                              source="refund", now=utcnow())
            return ticket.id

    async with follow_ups_routed(Router(client, db_url, queue)):
        racing = asyncio.create_task(start_pending_hard())
        ids = await asyncio.gather(*[asyncio.to_thread(create, n) for n in range(8)])
        done = await until(lambda: all(kit.ticket(db_url, i).workflow_id == f"ticket/{i}" for i in ids),
                               "every ticket's workflow to start")
        stop.set()
        passes = await racing
        assert await start_pending(client, db_url, queue) == []  # and nothing left once everything is done
    assert done and passes > 0
    assert {wid: starts[wid] for wid in starts} == {f"ticket/{i}": 1 for i in ids}


class Recorder:
    """An installed ticket starter that only records what it is handed."""

    def __init__(self) -> None:
        self.handed: list[list[int]] = []

    def install(self, db_url: str) -> Any:
        return follow_ups.install(db_url, follow_ups.FollowUpRouter(
            ready=lambda: True, route=lambda ids: None, start_tickets=self.handed.append))


def new_ticket(db: Any, subject: str) -> int:
    ticket, _ = service.create_ticket(db, type_key="refund", subject=subject, now=utcnow())
    return ticket.id


def test_a_rollback_starts_nothing_and_a_savepoint_is_not_the_commit(db_url: str) -> None:
    publish(db_url, json.loads((FLOWS / "refund-ticket.json").read_text(encoding="utf-8")))
    recorder = Recorder()
    uninstall = recorder.install(db_url)
    try:
        with pytest.raises(RuntimeError), transaction(db_url) as db:
            new_ticket(db, "rolled back")
            raise RuntimeError("the request failed after the ticket was created")
        assert recorder.handed == []
        with transaction(db_url) as db:
            kept = new_ticket(db, "kept")
            with db.begin_nested():  # a savepoint released: not committed yet
                inner = new_ticket(db, "in a savepoint")
            assert recorder.handed == []
            with pytest.raises(RuntimeError), db.begin_nested():  # its ticket is gone; the starter reads back
                new_ticket(db, "savepoint rolled back")
                raise RuntimeError("a hook failed")
        assert recorder.handed[0][:2] == [kept, inner] and len(recorder.handed) == 1
        with session_factory(db_url)() as db:
            assert [t.subject for t in db.scalars(select(models.Ticket).order_by(models.Ticket.id))] == [
                "kept", "in a savepoint"]
    finally:
        uninstall()


def test_without_a_starter_tickets_wait_for_start_pending(db_url: str) -> None:
    publish(db_url, json.loads((FLOWS / "refund-ticket.json").read_text(encoding="utf-8")))
    with transaction(db_url) as db:  # nothing installed (a script, Temporal unreachable): stored as before
        tid = new_ticket(db, "later")
    assert kit.ticket(db_url, tid).workflow_id is None
