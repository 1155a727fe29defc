"""Eager workflow start (web and worker in one process): the router starts journeys without the start signal,
and the interpreter takes the entry event the way the signal delivered it — so a journey behaves the same
whichever way it was started. The eager history is kept for the replay test (tests/engine/test_replay.py)."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType

from engine.router import Router
from engine.worker import build_worker
from tests.engine.flowkit import WELCOME, customer, flow, messages, publish
from tests.engine.historykit import keep


def contact_added(event_id: str, cid: str) -> dict[str, Any]:
    return {"id": event_id, "type": "wecom.contact_added", "customer_id": cid, "payload": {}}


async def test_an_eager_journey_dedupes_redeliveries_and_exits_like_a_signalled_one(time_env: Any,
                                                                                    db_url: str) -> None:
    compiled = publish(db_url, WELCOME)
    cid = customer(db_url, orders_count=0)
    queue = f"eager-{uuid.uuid4().hex[:6]}"
    router = Router(time_env.client, db_url, queue, eager=True)
    async with build_worker(time_env.client, queue, db_url):
        # remember=False: as in the routing pipeline, the journeys row is written later (group commit)
        first = await router.route_event(contact_added("e-1", cid), remember=False)
        wid = f"journey/{compiled['flow_id']}/{cid}"
        assert first.started == [wid]
        handle = time_env.client.get_workflow_handle(wid)
        # the same event again before that row exists (a platform's redelivery): the eager start is refused, so
        # the event goes to the running journey with signal-with-start, where it is recognised and dropped
        again = await router.route_event(contact_added("e-1", cid), remember=False)
        assert again.started == [wid]
        await handle.signal("event", {"id": "u-1", "type": "customer.unsubscribed", "payload": {}})
        result = await handle.result()
        history = await handle.fetch_history()
    assert result["status"] == "exited"
    assert messages(db_url, cid) == ["你好 张三"]  # once, though the entry event came twice
    events = list(history.events)
    started = events[0].workflow_execution_started_event_attributes
    assert events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    # started without a signal: the entry event came in the input only, and the patch marker says so
    assert events[1].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED and started.input.payloads
    markers = [e.marker_recorded_event_attributes.details["patch_data"] for e in events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               and e.marker_recorded_event_attributes.marker_name == "core_patch"]
    assert markers, "the eager start's entry-event patch marker is missing"
    keep(history, "eager_start_redelivery_exit")


async def test_an_entry_event_that_meets_the_goal_converts_however_the_journey_was_started(
        time_env: Any, db_url: str) -> None:
    # a flow whose goal is its own trigger event: the signal used to deliver the entry event before the first
    # step, so the journey converted at once; an eagerly started one must do the same
    document = flow("paid-goal", [("start", "trigger.event", {"event": "order.paid"}),
                                  ("hello", "action.send_message", {"template": "谢谢"})],
                    [("start", "out", "hello")], goal={"event": "order.paid", "within": "P1D"})
    publish(db_url, document)
    queue = f"eager-{uuid.uuid4().hex[:6]}"
    outcomes = []
    async with build_worker(time_env.client, queue, db_url):
        for eager in (False, True):
            cid = customer(db_url)
            router = Router(time_env.client, db_url, queue, eager=eager)
            routed = await router.route_event({"id": f"o-{eager}", "type": "order.paid", "customer_id": cid,
                                               "payload": {}}, remember=True)
            result = await time_env.client.get_workflow_handle(routed.started[0]).result()
            outcomes.append((result["status"], messages(db_url, cid)))
    assert outcomes[0] == outcomes[1] == ("converted", [])


async def test_a_journey_started_eagerly_waits_for_its_first_step_where_admission_sees_it(
        dev_env: Any, db_url: str, monkeypatch: Any) -> None:
    import engine.router
    import engine.worker
    from engine.metrics import PickupTracker

    class Recording(PickupTracker):
        def __init__(self) -> None:
            super().__init__()
            self.noted: list[str] = []
            self.picks: list[str] = []

        def started(self, workflow_id: str, at: float) -> None:
            self.noted.append(workflow_id)
            super().started(workflow_id, at)

        def picked(self, workflow_id: str) -> None:
            self.picks.append(workflow_id)
            super().picked(workflow_id)

    pickup = Recording()
    monkeypatch.setattr(engine.router, "PICKUP", pickup)
    monkeypatch.setattr(engine.worker, "PICKUP", pickup)
    compiled = publish(db_url, WELCOME)
    queue = f"eager-{uuid.uuid4().hex[:6]}"
    async with build_worker(dev_env.client, queue, db_url):
        # the worker in this process: the dev server hands the first workflow task back with the start's answer,
        # so the router notes the journey as waiting here (Temporal's task queue never holds it) …
        cid = customer(db_url, orders_count=0)
        eager = await Router(dev_env.client, db_url, queue, eager=True).route_event(
            contact_added("p-1", cid), remember=False)
        wid = f"journey/{compiled['flow_id']}/{cid}"
        assert eager.started == [wid] and pickup.noted == [wid]
        # … until its first step starts in the worker (its greeting, or the checkpoint of its leaving: the
        # journey would wait a day after the greeting, so it is told to leave)
        await _leave(dev_env.client.get_workflow_handle(wid))
        assert wid in pickup.picks and len(pickup) == 0
        # started the usual way (workers elsewhere): nothing is noted, the task queue holds it
        other = customer(db_url, orders_count=0)
        plain = await Router(dev_env.client, db_url, queue).route_event(contact_added("p-2", other), remember=False)
        await _leave(dev_env.client.get_workflow_handle(plain.started[0]))
    assert pickup.noted == [wid]


async def _leave(handle: Any) -> None:
    await handle.signal("event", {"id": f"u-{uuid.uuid4().hex[:6]}", "type": "customer.unsubscribed", "payload": {}})
    assert (await handle.result())["status"] == "exited"
