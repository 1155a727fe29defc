"""The interpreter on Temporal's time-skipping server: month-long journeys in well under a second."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle

from engine import flows as flowsvc
from engine.db import models
from engine.db.session import session_factory
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import WELCOME, customer, flow, messages, publish
from tests.engine.historykit import record


async def start(env: Any, queue: str, compiled: dict[str, Any], cid: str, entry: str = "wecom.contact_added",
                wid: str | None = None) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        JOURNEY_WORKFLOW,
        JourneyInput(flow=compiled, customer_id=cid, entry_event={"id": f"t:{cid}", "type": entry, "payload": {}}),
        id=wid or f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def test_welcome_no_order_takes_the_coupon_path_and_times_out(time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, WELCOME)
    cid = customer(db_url, orders_count=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await start(time_env, queue, compiled, cid)
        result = await handle.result()
        await record(handle, "welcome_timeout")
    assert result["status"] == "completed"
    assert messages(db_url, cid) == ["你好 张三", "送你一张券"]
    ports = [(s["node"], s.get("port")) for s in result["timeline"] if s["what"] == "step"]
    assert ("bought", "no") in ports and ("waitorder", "timeout") in ports
    with session_factory(db_url)() as db:
        stats = flowsvc.stats(db, "welcome")["nodes"]
        journey = db.get(models.Journey, f"journey/welcome/{cid}")
    assert stats["waitorder"]["left"] == {"timeout": 1} and stats["waitorder"]["waiting"] == 0
    assert stats["hello"]["entered"] == 1 and stats["tag"] if "tag" in stats else True
    assert journey is not None and journey.status == "completed" and journey.version == 1


async def test_welcome_buyer_is_tagged(time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, WELCOME)
    cid = customer(db_url, "李四", orders_count=2)
    async with build_worker(time_env.client, queue, db_url):
        result = await (await start(time_env, queue, compiled, cid)).result()
    assert result["status"] == "completed"
    with session_factory(db_url)() as db:
        tags = list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == cid)))
    assert tags == ["尝鲜客"]
    assert messages(db_url, cid) == ["你好 李四"]


async def test_wait_event_takes_the_event_port(time_env: Any, db_url: str, queue: str) -> None:
    from datetime import timedelta

    compiled = publish(db_url, WELCOME)
    cid = customer(db_url, orders_count=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await start(time_env, queue, compiled, cid)
        await time_env.sleep(timedelta(days=3))
        await handle.signal("event", {"id": "o1", "type": "order.paid", "payload": {"amount": 9900}})
        await handle.signal("event", {"id": "o1", "type": "order.paid", "payload": {"amount": 9900}})  # redelivery
        result = await handle.result()
        await record(handle, "welcome_event")
    assert result["status"] == "completed"
    assert messages(db_url, cid) == ["你好 张三", "送你一张券", "谢谢惠顾"]


async def test_exit_event_ends_the_journey_during_a_wait(time_env: Any, db_url: str, queue: str) -> None:
    from datetime import timedelta

    compiled = publish(db_url, WELCOME)
    cid = customer(db_url, orders_count=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await start(time_env, queue, compiled, cid)
        await time_env.sleep(timedelta(hours=5))
        await handle.signal("event", {"id": "u1", "type": "customer.unsubscribed", "payload": {}})
        result = await handle.result()
        await record(handle, "welcome_exit")
    assert result["status"] == "exited"
    assert messages(db_url, cid) == ["你好 张三"]
    with session_factory(db_url)() as db:
        stats = flowsvc.stats(db, "welcome")["nodes"]
    assert stats["wait1"]["waiting"] == 0 and stats["wait1"]["entered"] == 1 and stats["wait1"]["left"] == {}


async def test_goal_event_converts_within_the_window(time_env: Any, db_url: str, queue: str) -> None:
    from datetime import timedelta

    document = {**WELCOME, "id": "welcome-goal", "settings": {"goal": {"event": "order.paid", "within": "P14D"}}}
    compiled = publish(db_url, document)
    cid = customer(db_url, orders_count=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await start(time_env, queue, compiled, cid)
        await time_env.sleep(timedelta(days=2))
        await handle.signal("event", {"id": "o9", "type": "order.paid", "payload": {}})
        result = await handle.result()
    assert result["status"] == "converted"
    with session_factory(db_url)() as db:
        assert flowsvc.stats(db, "welcome-goal")["nodes"]["__flow__"]["converted"] == 1


async def test_switch_and_event_filter(time_env: Any, db_url: str, queue: str) -> None:
    document = flow(
        "vip-switch",
        [("start", "trigger.event", {"event": "order.paid"}),
         ("route", "logic.switch", {"cases": [{"port": "big", "expr": "event.payload.amount >= 100000"},
                                              {"port": "vip", "expr": "customer.vip_level >= 3"}]}),
         ("big", "action.send_message", {"template": "大单 {{ event.payload.amount / 100 }} 元"}),
         ("vip", "action.send_message", {"template": "VIP {{ customer.vip_level }}"}),
         ("other", "action.send_message", {"template": "普通"})],
        [("start", "out", "route"), ("route", "big", "big"), ("route", "vip", "vip"), ("route", "default", "other")])
    compiled = publish(db_url, document)
    vip, plain = customer(db_url, vip_level=3), customer(db_url, vip_level=1)
    async with build_worker(time_env.client, queue, db_url):
        for cid in (vip, plain):
            await (await start(time_env, queue, compiled, cid, "order.paid")).result()
        rich = customer(db_url, vip_level=0)
        await (await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=rich, entry_event={
                "id": "big", "type": "order.paid", "payload": {"amount": 250000}}),
            id=f"journey/vip-switch/{rich}", task_queue=queue)).result()
    assert messages(db_url, vip) == ["VIP 3"]
    assert messages(db_url, plain) == ["普通"]
    assert messages(db_url, rich) == ["大单 2500.0 元"]


async def test_long_loop_continues_as_new(time_env: Any, db_url: str, queue: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from engine import interpreter

    monkeypatch.setattr(interpreter, "HISTORY_LIMIT", 40)
    document = flow(
        "daily-loop",
        [("start", "trigger.api", {}),
         ("nudge", "action.send_message", {"template": "第 {{ journey.id[-1:] }} 条", "category": "transactional"}),
         ("sleep", "wait.delay", {"duration": "P1D"})],
        [("start", "out", "nudge"), ("nudge", "out", "sleep"), ("sleep", "out", "nudge")],
        exit_on=[{"event": "customer.unsubscribed"}])
    compiled = publish(db_url, document)
    cid = customer(db_url)
    async with build_worker(time_env.client, queue, db_url):
        handle = await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid), id=f"journey/daily-loop/{cid}",
            task_queue=queue)
        first_run = (await handle.describe()).run_id
        await time_env.sleep(timedelta(days=12, hours=1))
        await time_env.client.get_workflow_handle(handle.id).signal(
            "event", {"id": "bye", "type": "customer.unsubscribed", "payload": {}})
        result = await time_env.client.get_workflow_handle(handle.id).result()
        last_run = (await time_env.client.get_workflow_handle(handle.id).describe()).run_id
    assert result["status"] == "exited"
    assert last_run != first_run, "the journey should have continued as new"
    with session_factory(db_url)() as db:
        keys = list(db.scalars(select(models.Message.idempotency_key).where(models.Message.customer_id == cid)))
    assert len(keys) == 13 and len(set(keys)) == 13  # day 0..12, one key per visit, none twice


async def test_preview_shows_the_timeline() -> None:
    from engine.simulate import PreviewCustomer, ScriptedEvent, preview

    document = {**WELCOME, "settings": {"goal": {"event": "order.paid", "within": "P14D"}}}
    result = await preview(document, PreviewCustomer(name="王五", attributes={"orders_count": 0}),
                           [ScriptedEvent(at="day 3", type="order.paid")], days=30)
    assert result["status"] == "converted"
    assert [m["content"] for m in result["messages"]] == ["你好 王五", "送你一张券"]
    assert result["timeline"][-1]["what"] == "goal" and result["timeline"][-1]["day"] == pytest.approx(3, abs=0.01)
