"""SLA notices on the ``wecom`` channel reach staff as WeCom app messages (message/send from the connector's
AgentId app), on Temporal's time-skipping server against the loopback WeCom: the warning to the assignee (an
agent whose contact names their member), the breach to the supervisor (a Tideflow user linked to a WeCom member);
a busy WeCom is tried again, and nothing goes through the customers' mass-send path."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from activities.tickets import service
from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import transaction
from engine.tickets_workflow import start_ticket
from engine.worker import build_worker
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, fake_wecom
from tests.engine import ticketkit as kit
from tests.waiting import until

__all__ = ["fake_wecom"]
ALWAYS = {"timezone": "Asia/Shanghai", "working_days": [1, 2, 3, 4, 5, 6, 7],
          "working_hours": [{"start": "00:00", "end": "24:00"}]}
SLA_FLOW = kit.ticket_flow("support-wecom-sla", [
    ("start", "trigger.ticket", {}),
    ("assign", "ticket.assign", {}),
    ("sla", "ticket.sla", {"targets": {"P3": {"resolution": "PT1H"}}, "warn_before": "PT20M",
                           "escalation": ["notify_supervisor"]}),
], [("start", "out", "assign"), ("assign", "assigned", "sla"), ("assign", "queued", "sla")])


@pytest.fixture
def wecom(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    for member in ("agent-wx", "lead-wx"):
        fake_wecom.add_staff(member)
    with transaction(db_url) as db:
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                              "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    return fake_wecom


async def test_an_sla_breach_reaches_the_supervisor_as_a_wecom_app_message(time_env: Any, db_url: str,
                                                                          wecom: FakeWeCom) -> None:
    supervisor, agent = kit.user(db_url, "lead", "ops"), kit.user(db_url, "a1")
    kit.group(db_url, "support", "round_robin", supervisor, calendar=ALWAYS)
    with transaction(db_url) as db:
        db.get(models.AgentGroup, "support").notify_channel = "wecom"  # type: ignore[union-attr]
        db.merge(models.Agent(user_id=agent, groups=["support"], skills=[], availability="online",
                              working_hours={}, contact={"wecom_userid": "agent-wx"}))
        # the supervisor works no tickets: their WeCom member is linked to their user (workforce › staff)
        db.add(wf.WeComStaff(connector_id="wecom-main", userid="lead-wx", name="组长", status="active",
                             user_id=supervisor))
    kit.publish_ticket_flow(db_url, SLA_FLOW)
    kit.ticket_type(db_url, "support", "support-wecom-sla", "support")
    with transaction(db_url) as db:
        made, _ = service.create_ticket(db, type_key="support", subject="退款未到账",
                                        now=await time_env.get_current_time())
        ticket_id = made.id
    wecom.fail_next("message/send", -1)  # WeCom is busy once: the warning goes out on the next attempt
    queue = f"tickets-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        await start_ticket(time_env.client, db_url, queue, ticket_id)
        await until(lambda: kit.events(db_url, ticket_id, "sla_started"), "SLA started")
        await time_env.sleep(timedelta(minutes=70))
        await until(lambda: len([e for e in kit.events(db_url, ticket_id, "notified")
                                     if e.data.get("delivery")]) == 2, "both notices delivered")
    notified = {e.data["to"]: e.data["delivery"] for e in kit.events(db_url, ticket_id, "notified")}
    assert notified == {agent: "sent", supervisor: "sent"}
    sent = [(m["to"], m["agentid"], m["text"]) for m in wecom.gstate.app_messages]
    assert sent == [(["agent-wx"], 1000002, f"工单 #{ticket_id} resolution SLA 即将超时 will breach soon: 退款未到账"),
                    (["lead-wx"], 1000002, f"工单 #{ticket_id} resolution SLA 已超时 breached: 退款未到账")]
    assert len(wecom.calls("message/send")) == 3  # the busy answer, then each notice once
    assert wecom.calls("add_msg_template") == [] and wecom.problems == []


def test_a_notice_to_a_user_without_a_wecom_member_says_so(db_url: str, wecom: FakeWeCom) -> None:
    nobody = kit.user(db_url, "nobody", "ops")
    status = service.deliver_notice({"key": "k", "channel": "wecom", "to": nobody, "text": "t", "contact": {},
                                     "name": "nobody"}, db_url)
    assert status.startswith("skipped: nobody has no WeCom userid") and wecom.calls("message/send") == []
