"""The ticket workflow's SLA timers on Temporal's time-skipping server: business hours across a
weekend and a holiday, a customer-wait pause, a warning once, a breach once with escalation
(supervisor notified, priority raised, reassigned), recomputed on priority change."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.tickets import service
from engine.db.session import transaction
from engine.tickets_workflow import signal_changed, start_ticket
from engine.worker import PASSTHROUGH, build_worker, workflows
from tests.engine import ticketkit as kit
from tests.engine.historykit import keep
from tests.waiting import until

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def queue() -> str:
    return f"tickets-{uuid.uuid4().hex[:8]}"


def next_friday(now: datetime) -> date:
    local = now.astimezone(SHANGHAI).date()
    return local + timedelta(days=(4 - local.weekday()) % 7 or 7)


async def sleep_until(env: Any, moment: datetime) -> None:
    delta = moment - await env.get_current_time()
    assert delta > timedelta(0), f"{moment} is already past"
    await env.sleep(delta)


SLA_FLOW = kit.ticket_flow("support-sla", [
    ("start", "trigger.ticket", {}),
    ("assign", "ticket.assign", {}),
    ("sla", "ticket.sla", {"targets": {"P3": {"resolution": "PT4H"}, "P2": {"resolution": "PT2H"}},
                           "warn_before": "PT30M",
                           "escalation": ["notify_supervisor", "raise_priority", "reassign"]}),
], [("start", "out", "assign"), ("assign", "assigned", "sla"), ("assign", "queued", "sla")])


async def test_sla_across_weekend_and_holiday_with_pause_warns_and_escalates_once(
        time_env: Any, db_url: str, queue: str) -> None:
    friday = next_friday(await time_env.get_current_time())
    holiday = friday + timedelta(days=3)  # the Monday after
    tuesday = friday + timedelta(days=4)

    def at(day: date, hh: int, mm: int = 0) -> datetime:
        return datetime.combine(day, time(hh, mm), SHANGHAI)

    supervisor = kit.user(db_url, "lead", "ops")
    first, second = kit.user(db_url, "a1"), kit.user(db_url, "a2")
    kit.group(db_url, "support", "least_loaded", supervisor, calendar={
        "timezone": "Asia/Shanghai", "working_days": [1, 2, 3, 4, 5],
        "working_hours": [{"start": "09:00", "end": "18:00"}], "holidays": [holiday.isoformat()]})
    kit.agent(db_url, first, ["support"])
    kit.agent(db_url, second, ["support"])
    kit.publish_ticket_flow(db_url, SLA_FLOW)
    kit.ticket_type(db_url, "support", "support-sla", "support")

    await sleep_until(time_env, at(friday, 17, 0))
    with transaction(db_url) as db:
        made, _ = service.create_ticket(db, type_key="support", subject="退款未到账",
                                        now=await time_env.get_current_time())
        ticket_id = made.id
    client = time_env.client
    async with build_worker(client, queue, db_url):
        wid = await start_ticket(client, db_url, queue, ticket_id)
        assert wid == f"ticket/{ticket_id}"
        assert await start_ticket(client, db_url, queue, ticket_id) == wid  # once
        await until(lambda: kit.events(db_url, ticket_id, "sla_started"), "SLA started")
        owner = kit.ticket(db_url, ticket_id).assignee_id
        assert owner in (first, second)

        # Fri 17:30 the agent waits on the customer (0.5 h used); the customer answers Tue 10:00
        await sleep_until(time_env, at(friday, 17, 30))
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, ticket_id), "pending", await time_env.get_current_time(),
                               "test")
        await signal_changed(client, ticket_id)
        await sleep_until(time_env, at(tuesday, 10, 0))
        assert not kit.events(db_url, ticket_id, "sla_warning"), "no warning while paused, weekend or holiday"
        with transaction(db_url) as db:
            service.customer_message(db, service.get_ticket(db, ticket_id), "还没到账",
                                     await time_env.get_current_time())
        await signal_changed(client, ticket_id)

        # 3.5 h left from Tue 10:00 → warning at 13:00, breach at 13:30 (Shanghai)
        await sleep_until(time_env, at(tuesday, 13, 10))
        warnings = await until(lambda: kit.events(db_url, ticket_id, "sla_warning"), "the warning")
        assert kit.events(db_url, ticket_id, "sla_breach") == []
        # (the test's own steps take a few real milliseconds on the server's clock: allow a minute)
        assert at(tuesday, 12, 59) <= warnings[0].at.astimezone(SHANGHAI) < at(tuesday, 13, 10)

        await sleep_until(time_env, at(tuesday, 13, 40))
        breaches = await until(lambda: kit.events(db_url, ticket_id, "sla_breach"), "the breach")
        breach_at = breaches[0].at.astimezone(SHANGHAI)
        assert at(tuesday, 13, 29) <= breach_at < at(tuesday, 14, 0)
        await until(lambda: kit.events(db_url, ticket_id, "escalated"), "the escalation")
        after = kit.ticket(db_url, ticket_id)
        assert after.priority == "P2"
        assert after.assignee_id not in (None, owner)
        notified = [e.data for e in kit.events(db_url, ticket_id, "notified")]
        assert [n["to"] for n in notified] == [owner, supervisor]  # warning → assignee, breach → supervisor
        assert all(n["channel"] == "dry-run" for n in notified)
        await until(lambda: all(e.data.get("delivery") == "sent"
                                    for e in kit.events(db_url, ticket_id, "notified")), "notices delivered")

        # P2's shorter target and a day passing never fire the same checkpoint again
        await time_env.sleep(timedelta(days=1))
        with transaction(db_url) as db:
            service.set_status(db, service.get_ticket(db, ticket_id), "resolved", await time_env.get_current_time(),
                               "test")
        await signal_changed(client, ticket_id)
        handle = client.get_workflow_handle(wid)
        result = await handle.result()
        assert result["status"] == "resolved"
        # the whole run replays deterministically (timers, signals, the concurrent walk and watch)
        replayer = Replayer(workflows=workflows(), workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)))
        history = await handle.fetch_history()
        await replayer.replay_workflow(history)
        keep(history, "ticket_sla_weekend_holiday")
    assert len(kit.events(db_url, ticket_id, "sla_warning")) == 1
    assert len(kit.events(db_url, ticket_id, "sla_breach")) == 1
    assert len(kit.events(db_url, ticket_id, "escalated")) == 1
