"""A staff handover end to end on Temporal's time-skipping server against the fake WeCom on 127.0.0.1:

plan (who goes where, who cannot move and until when) → the workflow sends the calls, the member's open
tickets move at once → the 24 h takeover passes (the fake's clock and Temporal's timers) → transfer_result
says done / refused → the done customers' owner attribute changes, their journeys get
``wecom.owner_changed`` and a journey waiting on it greets them from the new owner.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from activities.tickets import service as tickets
from activities.workforce import handovers
from activities.workforce.common import wecom_client
from activities.workforce.handover import Strategy
from activities.workforce.runtime import start_handover
from activities.workforce.workflows import handover_workflow_id
from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine import flows as flowsvc
from engine.auth import create_user
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from engine.pipeline import follow_ups_routed
from engine.router import Router
from engine.worker import build_worker
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, fake_wecom
from tests.waiting import until

__all__ = ["fake_wecom"]
DAY = 86_400
CONNECTOR = "wecom-main"

GREETING_FLOW = {
    "schema": "tideflow/flow@1", "id": "new-owner-hello", "name": "新跟进人问候", "kind": "journey",
    "settings": {"timezone": "Asia/Shanghai", "entry": {"reentry": "always"}},
    "nodes": [
        {"id": "start", "type": "trigger.event", "config": {"event": "wecom.owner_changed"}},
        {"id": "hi", "type": "action.send_message",
         "config": {"channel": "dry-run", "category": "transactional",
                    "template": "您好，我是{{ customer.wecom_follow_user }}，以后由我为您服务"}},
    ],
    "edges": [{"from": "start", "to": "hi"}],
}


@dataclass
class Corp:
    time_env: Any
    db_url: str
    fake: FakeWeCom
    queue: str

    def q(self, query: Any) -> Any:
        with session_factory(self.db_url)() as db:
            return db.execute(query).all()



@pytest.fixture
async def corp(time_env: Any, db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[Corp]:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    for userid, dept in (("zhangsan", 7), ("lisi", 7), ("wangwu", 7), ("zhaoliu", 9)):
        fake_wecom.add_staff(userid, departments=(dept,), direct_leader=("boss",))
    with transaction(db_url) as db:
        configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                            "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        for userid, dept in (("lisi", 7), ("wangwu", 7), ("zhaoliu", 9)):
            db.add(wf.WeComStaff(connector_id=CONNECTOR, userid=userid, name=userid, departments=[dept], leaders=[],
                                 status="active", last_active_at=utcnow() - timedelta(days=3)))
        flowsvc.save_draft(db, GREETING_FLOW, "test")
        flowsvc.publish(db, "new-owner-hello", "test")
    queue = f"handover-{uuid.uuid4().hex[:8]}"
    # as `tideflow worker` runs it: the events its activities store (owner changed) are routed on commit
    async with follow_ups_routed(Router(time_env.client, db_url, queue)), build_worker(time_env.client, queue, db_url):
        yield Corp(time_env, db_url, fake_wecom, queue)


def customer(db_url: str, external: str) -> str:
    _status, payload, _ = store(EventIn(id=f"seed-{external}", type="wecom.contact_added",
                                       customer={"wecom_external_userid": external},
                                       profile={"attributes": {"wecom_follow_user": "zhangsan"}}), db_url)
    return str(payload["customer_id"])


async def test_a_departed_members_customers_tickets_and_journeys_move(corp: Corp) -> None:
    fake, url = corp.fake, corp.db_url
    externals = [f"wmC{i:03d}" for i in range(6)]
    for external in externals:
        fake.add_contact(external, "zhangsan")
    fake.add_group("wrVIP", "zhangsan", "VIP 群", members=("wmC000",))
    ids = {e: customer(url, e) for e in externals}
    now = utcnow()
    with transaction(url) as db:  # zhangsan and lisi work tickets; wmC005 was moved twice this quarter
        zs = create_user(db, "zs", "password-zs-1", "agent")
        ls = create_user(db, "ls", "password-ls-1", "agent")
        db.add(models.AgentGroup(key="service", name="售后"))
        db.add(models.Agent(user_id=zs.id, groups=["service"], availability="online", contact={"wecom_userid":
                                                                                               "zhangsan"}))
        db.add(models.Agent(user_id=ls.id, groups=["service"], availability="online", contact={"wecom_userid": "lisi"}))
        db.add(models.TicketType(key="after-sale", name="售后", default_group="service"))
        db.flush()
        own, _ = tickets.create_ticket(db, type_key="after-sale", subject="退货", now=now, customer_id=ids["wmC000"])
        other, _ = tickets.create_ticket(db, type_key="after-sale", subject="发票", now=now)
        own.assignee_id = other.assignee_id = zs.id
        for days in (40, 10):
            old = wf.Handover(connector_id=CONNECTOR, handover_userid="someone", mode="onjob", status="done")
            db.add(old)
            db.flush()
            db.add(wf.HandoverItem(handover_id=old.id, kind="customer", external_id="wmC005", status="done",
                                   sent_at=now - timedelta(days=days), takeover_userid="x"))
        own_id, other_id, ls_id = own.id, other.id, ls.id
    fake.resign("zhangsan")
    fake.refuse("wmC001")

    client, _ = wecom_client(url, CONNECTOR)
    handover_id = await asyncio.to_thread(
        handovers.create_plan, url, CONNECTOR, client, "zhangsan", strategy=Strategy(kind="round_robin"),
        now=utcnow(), created_by="admin")
    with session_factory(url)() as db:
        plan = handovers.view(db, handovers.get(db, handover_id))
    assert plan["mode"] == "resigned" and plan["status"] == "planned"
    by_id = {i["id"]: i for i in plan["items"]}
    assert {k: by_id[k]["to"] for k in externals[:5]} == {"wmC000": "lisi", "wmC001": "wangwu", "wmC002": "lisi",
                                                          "wmC003": "wangwu", "wmC004": "lisi"}
    assert by_id["wmC005"]["status"] == "blocked" and by_id["wmC005"]["reason"] == "transferred_twice"
    assert by_id["wmC005"]["movable_from"].startswith((now + timedelta(days=50)).date().isoformat())
    assert by_id["wrVIP"]["to"] == "lisi" and plan["summary"]["calls"] == 3
    assert fake.calls("resigned/transfer_customer") == []  # nothing is sent before execution

    await start_handover(corp.time_env.client, url, corp.queue, handover_id)
    handle = corp.time_env.client.get_workflow_handle(handover_workflow_id(handover_id))

    async def phase() -> str:
        return str((await handle.query("state"))["phase"])

    async def waiting_for_takeovers() -> bool:
        return (await phase()).startswith("waiting for takeovers")

    await until(waiting_for_takeovers, "the handover waiting for takeovers")
    # the tickets moved at once: the customer's ticket to the colleague who takes the customer, the other one
    # back through the group's assignment (the departed agent excluded and offline)
    rows = dict(corp.q(select(models.Ticket.id, models.Ticket.assignee_id)))
    assert rows[own_id] == ls_id and rows[other_id] == ls_id
    assert corp.q(select(models.Agent.availability).where(models.Agent.user_id != ls_id)) == [("offline",)]
    assert fake.groups["wrVIP"]["owner"] == "lisi"  # group owners change at once
    [(status,)] = corp.q(select(wf.Handover.status).where(wf.Handover.id == handover_id))
    assert status == "waiting"

    fake.advance(DAY + 60)  # the 24 h pass at WeCom …
    await corp.time_env.sleep(timedelta(days=1, hours=1))  # … and on Temporal's timers
    result = await handle.result()
    assert result["customer"] == {"blocked": 1, "done": 4, "refused": 1} and result["group"] == {"done": 1}
    assert fake.owner_of("wmC000") == ["lisi"] and fake.owner_of("wmC003") == ["wangwu"]
    with session_factory(url)() as db:
        owners = {c.id: c.attributes.get("wecom_follow_user") for c in db.scalars(select(models.Customer))}
        refused = db.scalar(select(wf.HandoverItem).where(wf.HandoverItem.external_id == "wmC001"))
    assert owners[ids["wmC000"]] == "lisi" and owners[ids["wmC003"]] == "wangwu"
    assert owners[ids["wmC001"]] == "zhangsan" and refused.reason == "customer_refused"
    async def greetings() -> list[Any] | None:  # all four journeys greet: one found is not yet the answer
        rows = await asyncio.to_thread(corp.q, select(models.Message.customer_id, models.Message.content)
                                       .where(models.Message.flow_id == "new-owner-hello"))
        return rows if len(rows) >= 4 else None

    greeted = await until(greetings, "the four new owners' greetings")
    assert sorted(greeted) == sorted([(ids["wmC000"], "您好，我是lisi，以后由我为您服务"),
                                      (ids["wmC002"], "您好，我是lisi，以后由我为您服务"),
                                      (ids["wmC003"], "您好，我是wangwu，以后由我为您服务"),
                                      (ids["wmC004"], "您好，我是lisi，以后由我为您服务")])
    assert len(fake.calls("resigned/transfer_customer")) == 2 and fake.problems == []
