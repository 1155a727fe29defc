"""A journey waiting on its customer's staff member continues with the new owner after a handover: the
``wecom.owner_changed`` event updates the context a waiting filter reads (``customer.wecom_follow_user``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, messages, publish
from tests.engine.historykit import record

WAIT_FOR_OWNER = flow(
    "owner-reply",
    [("start", "trigger.event", {"event": "wecom.contact_added"}),
     ("wait", "wait.event", {"event": "custom.staff_replied", "timeout": "P3D",
                             "filter": "event.payload.user_id == customer.wecom_follow_user"}),
     ("thanks", "action.send_message", {"channel": "dry-run", "template": "{{ event.payload.user_id }} 已回复"}),
     ("late", "action.send_message", {"channel": "dry-run", "template": "超时未回复"})],
    [("start", "out", "wait"), ("wait", "event", "thanks"), ("wait", "timeout", "late")])


async def test_a_waiting_journey_follows_the_new_owner(time_env: Any, db_url: str) -> None:
    compiled = publish(db_url, WAIT_FOR_OWNER)
    cid = customer(db_url, wecom_follow_user="zhangsan")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        handle = await time_env.client.start_workflow(
            JOURNEY_WORKFLOW,
            JourneyInput(flow=compiled, customer_id=cid,
                         entry_event={"id": f"t:{cid}", "type": "wecom.contact_added", "payload": {}}),
            id=f"journey/owner-reply/{cid}", task_queue=queue)
        await time_env.sleep(timedelta(hours=2))
        await handle.signal("event", {"id": "h1", "type": "wecom.owner_changed",
                                      "payload": {"from": "zhangsan", "to": "lisi"}})
        await handle.signal("event", {"id": "r0", "type": "custom.staff_replied", "payload": {"user_id": "zhangsan"}})
        await handle.signal("event", {"id": "r1", "type": "custom.staff_replied", "payload": {"user_id": "lisi"}})
        result = await handle.result()
        await record(handle, "owner_changed_wait")
    assert result["status"] == "completed"
    # after the handover the old owner's reply no longer counts; the new owner's does
    assert messages(db_url, cid) == ["lisi 已回复"]
    ports = [(s["node"], s.get("port")) for s in result["timeline"] if s["what"] == "step"]
    assert ("wait", "event") in ports
