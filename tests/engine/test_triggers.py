"""Triggers other than events: segment broadcasts (bulk and per-journey), date triggers, enrolment,
re-entry policies, and schedules on the real dev server."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import flows as flowsvc
from engine.broadcast import date_matches
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.nodes.base import stable_fraction
from engine.nodes.logic_split import SplitBranch, pick_branch
from engine.nodes.wait_until import next_local_time
from engine.router import EnrollError, Router
from engine.runtime import BROADCAST_WORKFLOW, BroadcastInput
from engine.text import Msg
from engine.worker import build_worker
from tests.engine.flowkit import flow, publish


def customers(db_url: str, n: int, **attributes: Any) -> list[str]:
    with transaction(db_url) as db:
        return [resolve(db, {"external_id": f"{uuid.uuid4().hex}"}, f"客户{i}", {**attributes, "i": i})
                for i in range(n)]


def count_messages(db_url: str, flow_id: str) -> int:
    with session_factory(db_url)() as db:
        return int(db.scalar(select(func.count()).select_from(models.Message)
                             .where(models.Message.flow_id == flow_id)) or 0)


SEGMENT = flow(
    "win-back",
    [("start", "trigger.segment", {"audience": "customer.days_since_interaction >= 30", "batch_size": 7}),
     ("vip", "logic.condition", {"expr": "customer.i % 2 == 0"}),
     ("even", "action.send_message", {"template": "{{ customer.name }}，好久不见"}),
     ("odd", "action.tag", {"add": ["沉默"]})],
    [("start", "out", "vip"), ("vip", "yes", "even"), ("vip", "no", "odd")],
)


async def test_broadcast_without_waits_runs_in_bulk(time_env: Any, db_url: str) -> None:
    compiled = publish(db_url, SEGMENT)
    customers(db_url, 20, days_since_interaction=45)
    customers(db_url, 5, days_since_interaction=3)
    queue = f"b-{uuid.uuid4().hex[:6]}"
    async with build_worker(time_env.client, queue, db_url):
        result = await time_env.client.execute_workflow(
            BROADCAST_WORKFLOW, BroadcastInput(flow=compiled, run_key="r1"), id="broadcast/win-back/r1",
            task_queue=queue)
        assert result == {"customers": 20}
        # the same run again sends nothing twice, and a later run honours re-entry 'never'
        await time_env.client.execute_workflow(
            BROADCAST_WORKFLOW, BroadcastInput(flow=compiled, run_key="r1"), id="broadcast/win-back/r1-again",
            task_queue=queue)
        await time_env.client.execute_workflow(
            BROADCAST_WORKFLOW, BroadcastInput(flow=compiled, run_key="r2"), id="broadcast/win-back/r2",
            task_queue=queue)
    assert count_messages(db_url, "win-back") == 10
    with session_factory(db_url)() as db:
        stats = flowsvc.stats(db, "win-back")["nodes"]
        journeys = list(db.scalars(select(models.Journey.workflow_id)))
    assert stats["vip"]["left"] == {"yes": 10, "no": 10}
    assert len(journeys) == 20
    assert all(j.startswith("broadcast/win-back/r1/") for j in journeys), \
        "a broadcast without waits records journeys but starts no workflow per customer"


async def test_broadcast_with_waits_starts_one_journey_each(time_env: Any, db_url: str) -> None:
    document = flow(
        "nudge-twice",
        [("start", "trigger.segment", {"audience": "true"}),
         ("first", "action.send_message", {"template": "一"}),
         ("later", "wait.delay", {"duration": "P2D"}),
         ("second", "action.send_message", {"template": "二"})],
        [("start", "out", "first"), ("first", "out", "later"), ("later", "out", "second")])
    compiled = publish(db_url, document)
    ids = customers(db_url, 4)
    queue = f"b-{uuid.uuid4().hex[:6]}"
    async with build_worker(time_env.client, queue, db_url):
        await time_env.client.execute_workflow(BROADCAST_WORKFLOW, BroadcastInput(flow=compiled, run_key="once"),
                                               id="broadcast/nudge/once", task_queue=queue)
        # journeys started by an activity are not this client's handles: skip time explicitly
        await time_env.sleep(timedelta(days=3))
        for cid in ids:
            result = await time_env.client.get_workflow_handle(f"journey/nudge-twice/{cid}").result()
            assert result["status"] == "completed"
    assert count_messages(db_url, "nudge-twice") == 8


async def test_enroll_and_reentry(time_env: Any, db_url: str) -> None:
    target = flow("vip-care", [("start", "trigger.api", {}), ("hi", "action.send_message", {"template": "VIP"})],
                  [("start", "out", "hi")], entry={"reentry": "always"})
    source = flow("upgrade", [("start", "trigger.api", {}), ("go", "action.enroll", {"flow": "vip-care"})],
                  [("start", "out", "go")])
    publish(db_url, target)
    publish(db_url, source)
    (cid,) = customers(db_url, 1)
    queue = f"e-{uuid.uuid4().hex[:6]}"
    router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url):
        wid = await router.enroll("upgrade", cid)
        assert wid == f"journey/upgrade/{cid}"
        await time_env.client.get_workflow_handle(wid).result()
        assert await router.enroll("upgrade", cid) is None  # re-entry 'never'
        again = await router.enroll("vip-care", cid, entry_id="manual-2")  # re-entry 'always'
        assert again == f"journey/vip-care/{cid}/manual-2"
        await time_env.client.get_workflow_handle(again).result()
    assert count_messages(db_url, "vip-care") == 2


async def test_enrolment_refusals_name_the_field_and_the_fix(time_env: Any, db_url: str) -> None:
    """Each refusal is a translatable Msg with its field, fix and HTTP status (the API answers ApiError.of)."""
    publish(db_url, flow("by-cron", [("start", "trigger.schedule", {"cron": "0 9 * * 1"}),
                                      ("hi", "action.send_message", {"template": "hi"})], [("start", "out", "hi")]))
    publish(db_url, flow("by-api", [("start", "trigger.api", {}), ("hi", "action.send_message", {"template": "hi"})],
                         [("start", "out", "hi")]))
    (cid,) = customers(db_url, 1)
    router = Router(time_env.client, db_url, f"e-{uuid.uuid4().hex[:6]}")
    cases = [(("nope", cid), "flow", 404, "flow '%(flow)s' does not exist"),
             (("by-cron", cid), "flow", 409, "flow '%(flow)s' starts with %(trigger)s; only trigger.api flows "
                                              "take enrolments"),
             (("by-api", "c_missing"), "customer", 409, "customer '%(customer)s' does not exist")]
    for args, field, status, template in cases:
        with pytest.raises(EnrollError) as caught:
            await router.enroll(*args)
        assert (caught.value.field, caught.value.status, caught.value.message.template) == (field, status, template)
        assert caught.value.fix and isinstance(caught.value.fix, Msg)


async def test_schedules_follow_published_flows(dev_env: Any, db_url: str) -> None:
    from engine.scheduling import schedule_id, sync_schedules

    birthday = flow("birthday", [("start", "trigger.date", {"attribute": "birthday", "at": "10:00"}),
                                 ("hi", "action.send_message", {"template": "生日快乐"})], [("start", "out", "hi")])
    report = flow("weekly-report", [("start", "trigger.schedule", {"cron": "0 9 * * 1"}),
                                    ("hi", "action.send_message", {"template": "周报"})], [("start", "out", "hi")])
    publish(db_url, birthday)
    publish(db_url, report)
    assert await sync_schedules(dev_env.client, db_url, "q") == {"birthday": "created", "weekly-report": "created"}
    desc = await dev_env.client.get_schedule_handle(schedule_id("birthday")).describe()
    assert desc.schedule.spec.time_zone_name == "Asia/Shanghai"
    assert await sync_schedules(dev_env.client, db_url, "q") == {"birthday": "updated", "weekly-report": "updated"}
    with transaction(db_url) as db:
        flowsvc.set_status(db, "birthday", "paused", "test")
    assert (await sync_schedules(dev_env.client, db_url, "q"))["birthday"] == "deleted"


def test_date_trigger_matches_birthdays_with_offsets_and_leap_days() -> None:
    flow_ = {"settings": {"timezone": "Asia/Shanghai"}}
    config = {"attribute": "birthday", "offset_days": 0, "yearly": True}
    assert date_matches({"birthday": "1990-11-23"}, config, flow_, date(2026, 11, 23))
    assert not date_matches({"birthday": "1990-11-24"}, config, flow_, date(2026, 11, 23))
    assert date_matches({"birthday": "1992-02-29"}, config, flow_, date(2026, 2, 28))
    assert date_matches({"birthday": "1990-11-26"}, {**config, "offset_days": -3}, flow_, date(2026, 11, 23))
    assert not date_matches({"birthday": "not a date"}, config, flow_, date(2026, 11, 23))
    expiry = {"attribute": "member_until", "offset_days": -7, "yearly": False}
    assert date_matches({"member_until": "2026-11-30"}, expiry, flow_, date(2026, 11, 23))


def test_wait_until_local_time_and_weekday() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Monday 11:00 in Shanghai
    assert next_local_time(now, "Asia/Shanghai", "10:00", []) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert next_local_time(now, "Asia/Shanghai", "12:00", []) == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert next_local_time(now, "Asia/Shanghai", "10:00", [5]) == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_split_is_deterministic_and_follows_weights() -> None:
    branches = [SplitBranch(port="A", weight=45), SplitBranch(port="B", weight=45),
                SplitBranch(port="control", weight=10)]
    picks = [pick_branch(branches, stable_fraction(f"journey/f/c{i}", "split")) for i in range(4000)]
    assert picks == [pick_branch(branches, stable_fraction(f"journey/f/c{i}", "split")) for i in range(4000)]
    share = {p: picks.count(p) / len(picks) for p in ("A", "B", "control")}
    assert share["A"] == pytest.approx(0.45, abs=0.03) and share["control"] == pytest.approx(0.10, abs=0.02)
