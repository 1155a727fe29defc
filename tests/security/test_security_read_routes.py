"""Each role reads only what it needs (issue 18, item 4): every route and page that returns messages,
customers or audit rows, walked once as each role, on one set of data:

- customer 韩梅梅 (phone 13812345678 as an identity, typed again into a profile attribute and a note),
  with a ticket in the agent's group ``refunds`` and one in group ``vip`` (the agent does not work vip);
- a journey message, a reply in each ticket, an inbound message from the customer;
- audit rows with personal data in their details.

Each answer is checked for what must and must not be in it for that role (engine/read_policy.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from activities.tickets import service
from designer.app import create_app
from engine import auth
from engine.customers import resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction

ROLES = ("admin", "auditor", "ops", "agent", "marketer", "finance", "developer")
PHONE, NAME = "13812345678", "韩梅梅"
JOURNEY_TEXT, OWN_REPLY, OTHER_REPLY, INBOUND = "欢迎新客礼包", "退款已处理完毕", "VIP专线回复内容", "我想退货"
AUDIT_SECRET = "13955556666"
EXTERNAL_ID = "wmHanMeiMei0001"
Case = dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    from cryptography.fernet import Fernet

    from tests.dbtemplate import migrated_sqlite

    patch = pytest.MonkeyPatch()  # one instance key for the module (the WeCom connector's secrets)
    patch.setenv("TIDEFLOW_SECRET_KEY", Fernet.generate_key().decode())
    db_url = f"sqlite:///{tmp_path_factory.mktemp('read') / 'tideflow.db'}"
    migrated_sqlite(db_url)
    # cheap_passwords' hasher, set by hand: a module-scoped fixture cannot ask for that function-scoped fixture
    patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    tokens: dict[str, str] = {}
    with transaction(db_url) as db:
        users = {role: auth.create_user(db, role, "a-long-password", role) for role in ROLES}
        tokens = {role: auth.create_token(db, users[role], "t") for role in ROLES}
        for key in ("refunds", "vip"):
            db.add(models.AgentGroup(key=key, name=key, strategy="least_loaded", calendar={}, capacity=5,
                                     notify_channel="dry-run", rr_last=0))
        db.flush()
        db.add(models.Agent(user_id=users["agent"].id, groups=["refunds"], skills=[], capacity=None,
                            availability="online", working_hours={}, contact={}))
        db.add(models.TicketType(key="sec_refund", name="退款", default_group="refunds", default_priority="P3",
                                 fields=[], auto_events=[]))
        cid = resolve(db, {"phone": PHONE}, NAME, {"mobile": PHONE, "note": f"客户说 {PHONE} 是新号"})
        now = utcnow()
        tickets = {}
        for group in ("refunds", "vip"):
            ticket, _ = service.create_ticket(db, type_key="sec_refund", subject=f"{group} 工单", group=group, now=now,
                                              customer_id=cid, channel="dry-run")
            tickets[group] = ticket.id
        db.flush()
        rows = [("journey/welcome/" + cid + "/hello/1", JOURNEY_TEXT, "out", f"journey/welcome/{cid}", "welcome"),
                (f"ticket/{tickets['refunds']}/reply/1", OWN_REPLY, "out", None, None),
                (f"ticket/{tickets['vip']}/reply/1", OTHER_REPLY, "out", None, None),
                (f"in/wecom:{cid}", INBOUND, "in", None, None)]
        for key, text, direction, workflow, flow in rows:
            db.add(models.Message(idempotency_key=key, customer_id=cid, channel="wecom", content=text,
                                  status="sent" if direction == "out" else "received", direction=direction,
                                  workflow_id=workflow, flow_id=flow, created_at=now))
        db.add(models.Journey(workflow_id=f"journey/welcome/{cid}", flow_id="welcome", version=1, customer_id=cid,
                              status="running", started_at=now))
        auth.audit(db, users["admin"], "customer.updated", f"customer:{cid}", {"phone": AUDIT_SECRET})
        more = _more_world(db, users, cid, tickets, now)
    app = create_app(db_url, connect=False)
    yield {"app": app, "tokens": tokens, "cid": cid, "db_url": db_url, "tickets": tickets, **more}
    patch.undo()


def _more_world(db: Any, users: dict[str, models.User], cid: str, tickets: dict[str, int], now: Any) -> Case:
    """What the newer routes show about the same customer: a failed journey, the tickets' timelines (the
    customer's message, a reply in each) and a review of the vip ticket waiting for finance, a channel code
    the customer came through, a referral campaign they take part in (and an invite of theirs waiting for
    review), a blocklist entry with their phone, a mass send to them, an archived chat of theirs."""
    from engine.db import workforce_models as wf
    from engine.db.failure_models import JourneyFailure
    from engine.db.growth_models import (
        ChannelAdd,
        GrowthBlock,
        GrowthChannel,
        ReferralCampaign,
        ReferralInvite,
        ReferralParticipant,
    )

    failed = f"journey/welcome/{cid}/failed"
    db.add(models.Journey(workflow_id=failed, flow_id="welcome", version=1, customer_id=cid, status="failed",
                          started_at=now, error="send failed"))
    db.add(JourneyFailure(workflow_id=failed, run_id="r1", flow_id="welcome", node_id="hello",
                          node_type="action.send_message", kind="activity", error="send failed", attempts=3,
                          failed_at=now))
    for group, reply in (("refunds", OWN_REPLY), ("vip", OTHER_REPLY)):
        ticket = db.get(models.Ticket, tickets[group])
        service.customer_message(db, ticket, f"{INBOUND}（{group}）", now)
        service.reply(db, ticket, reply, now, f"user:{users['ops'].id}")
    db.add(models.TicketReview(ticket_id=tickets["vip"], chain="refund", round=1, step=1, name="财务复核",
                               approver="role:finance", status="waiting", started_at=now))
    channel = GrowthChannel(key="store-code", name="门店码", state="tfc1", created_by="marketer")
    db.add(channel)
    campaign = ReferralCampaign(id="invite-3", no=1, name="邀请有礼", status="active", created_by="marketer")
    db.add(campaign)
    db.flush()
    db.add(ChannelAdd(channel_id=channel.id, event_key="add-1", customer_id=cid, kind="add", added_at=now))
    participant = ReferralParticipant(campaign_id=campaign.id, customer_id=cid)
    db.add(participant)
    db.flush()
    db.add(ReferralInvite(campaign_id=campaign.id, participant_id=participant.id, invitee_id=cid, event_key="inv-1",
                          status="review", reason="shared device", added_at=now))
    db.add(GrowthBlock(kind="phone", value=PHONE, reason="羊毛党", created_by="marketer"))
    send = wf.MassSend(connector_id="wecom-main", chat_type="single", name="双11预告", text="活动预告",
                       created_by="marketer")
    db.add(send)
    db.flush()
    db.add(wf.MassSendRecipient(mass_send_id=send.id, recipient=EXTERNAL_ID, connector_id="wecom-main",
                                sender="zhangsan", customer_id=cid, status="queued"))
    db.add(wf.ArchivedMessage(connector_id="wecom-main", msgid="m-1", seq=1, sender=EXTERNAL_ID, tolist=["zhangsan"],
                              msgtype="text", direction="customer", staff_userid="zhangsan", customer_id=cid,
                              text=f"{INBOUND}，电话 {PHONE}", msgtime=now))
    resolve(db, {"wecom_external_userid": EXTERNAL_ID, "phone": PHONE})
    from engine import connectors
    from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN

    connectors.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                           "api_base": "http://127.0.0.1:9"},
                    {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    return {"mass_send": send.id}


def _get(world: Case, role: str, path: str) -> Any:
    client = TestClient(world["app"], headers={"Authorization": f"Bearer {world['tokens'][role]}"})
    return client.get(path, follow_redirects=False)


def _routes(cid: str) -> list[str]:
    return [f"/api/messages?customer_id={cid}", f"/api/customers/{cid}", "/api/customers",
            f"/api/customers/{cid}/archive", f"/customers/{cid}", "/customers", f"/journeys/journey/welcome/{cid}",
            "/", "/api/audit", "/audit"]


# what each role may see: (reads customers, reads journeys, reads audit, clear PII, texts it may read)
ALL_TEXTS = {JOURNEY_TEXT, OWN_REPLY, OTHER_REPLY, INBOUND}
MAY = {
    "admin": (True, True, True, True, ALL_TEXTS),
    "ops": (True, True, False, True, ALL_TEXTS),
    "agent": (True, False, False, True, {OWN_REPLY, INBOUND}),  # the customer has a ticket in their group
    "marketer": (True, True, False, False, {JOURNEY_TEXT, INBOUND}),
    "auditor": (False, False, True, False, set()),
    "finance": (False, True, False, False, set()),
    "developer": (False, True, False, False, set()),
}


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_with_what_it_may_read(world: Case, role: str) -> None:
    customers, journeys, audit, clear_pii, texts = MAY[role]
    answered = 0
    for path in _routes(world["cid"]):
        r = _get(world, role, path)
        allowed = {"/api/audit": audit, "/audit": audit}.get(path, journeys if path.startswith("/journeys") else
                                                          True if path == "/" else customers)
        if not allowed:
            assert r.status_code == 403, (role, path, r.status_code)
            assert PHONE not in r.text and OWN_REPLY not in r.text
            continue
        assert r.status_code == 200, (role, path, r.status_code, r.text[:300])
        answered += 1
        body = r.text
        for text in ALL_TEXTS:
            if text not in texts:
                assert text not in body, (role, path, text)
        if (path.startswith(("/api/customers/", "/customers/")) and "archive" not in path) or path.startswith(
                "/api/messages"):
            for text in texts:
                assert text in body, (role, path, text)
        if not clear_pii:
            assert PHONE not in body and NAME not in body, (role, path)
            assert AUDIT_SECRET not in body, (role, path)
        elif path == f"/api/customers/{world['cid']}":
            assert NAME in body and PHONE in body, (role, path)  # the attribute typed in clear
        elif path == f"/customers/{world['cid']}":
            assert NAME in body, (role, path)  # (pages mask phones in attributes for everyone)
    assert answered >= 1


def test_an_agent_without_a_ticket_of_the_customer_sees_personal_data_masked(world: Case) -> None:
    with transaction(world["db_url"]) as db:
        agent = db.scalar(select(models.User).where(models.User.username == "agent"))
        assert agent is not None
        db.get(models.Agent, agent.id).groups = ["other"]  # type: ignore[union-attr]
    try:
        body = _get(world, "agent", f"/api/customers/{world['cid']}").text
        assert PHONE not in body and NAME not in body and OWN_REPLY not in body and INBOUND not in body
    finally:
        with transaction(world["db_url"]) as db:
            agent = db.scalar(select(models.User).where(models.User.username == "agent"))
            db.get(models.Agent, agent.id).groups = ["refunds"]  # type: ignore[union-attr]


# -- every other route that shows messages, customers or audit rows -------------------------------------------
ADMIN_ONLY = {"admin"}
CUSTOMER_READERS = {"admin", "ops", "agent", "marketer"}
FLOW_READERS = {"admin", "marketer", "ops", "finance", "developer"}
TICKET_CONSOLE = {"admin", "ops", "agent", "finance"}
GROWTH_EDITORS = {"admin", "marketer"}
GROWTH_REVIEWERS = {"admin", "marketer", "ops"}
MASS_SENDERS = {"admin", "marketer", "ops"}
OFFICERS = {"admin", "ops"}


def _walk(world: Case) -> list[tuple[str, str, Any, set[str]]]:
    """(method, path, JSON body, the roles that get 200: everyone else 403, or 404 where an id is probed)."""
    cid, refunds, vip, send = world["cid"], world["tickets"]["refunds"], world["tickets"]["vip"], world["mass_send"]
    return [
        ("GET", "/journeys", None, FLOW_READERS),
        ("GET", "/journeys/failures", None, FLOW_READERS),
        ("GET", "/api/journeys", None, FLOW_READERS),
        ("GET", "/api/journeys/failed", None, FLOW_READERS),
        ("GET", f"/api/journeys/journey/welcome/{cid}/failed", None, FLOW_READERS),
        ("GET", "/audit.csv", None, {"admin", "auditor"}),
        ("GET", "/api/audit?target=customer:", None, {"admin", "auditor"}),
        ("GET", "/api/dashboards/marketer", None, {"admin", "marketer"}),
        ("GET", "/api/dashboards/ops", None, {"admin", "ops"}),
        ("GET", "/api/dashboards/finance", None, {"admin", "finance"}),
        ("GET", "/dashboard/marketer", None, {"admin", "marketer"}),
        ("GET", "/dashboard/ops", None, {"admin", "ops"}),
        ("GET", "/tickets", None, TICKET_CONSOLE),
        ("GET", f"/tickets/{refunds}", None, {"admin", "ops", "agent"}),
        ("GET", f"/tickets/{vip}", None, {"admin", "ops", "finance"}),  # finance reviews it
        ("GET", "/tickets/supervisor", None, {"admin", "ops"}),
        ("GET", "/api/tickets", None, {"admin", "ops", "agent"}),
        ("GET", f"/api/tickets/{refunds}", None, {"admin", "ops", "agent"}),
        ("GET", f"/api/tickets/{vip}", None, {"admin", "ops"}),
        ("GET", "/growth/channels/store-code", None, GROWTH_EDITORS),
        ("GET", "/api/growth/channels/store-code/adds", None, GROWTH_EDITORS),
        ("GET", "/api/growth/campaigns/invite-3", None, GROWTH_EDITORS),
        ("GET", "/api/growth/campaigns/invite-3/leaderboard", None, GROWTH_EDITORS),
        ("GET", "/growth/campaigns/invite-3", None, GROWTH_EDITORS),
        ("GET", "/growth/review", None, GROWTH_REVIEWERS),
        ("GET", "/api/growth/review", None, GROWTH_REVIEWERS),
        ("GET", "/api/growth/blocklist", None, GROWTH_REVIEWERS),
        ("GET", f"/api/loyalty/members/{cid}", None, {"admin", "marketer", "ops", "agent", "developer"}),
        ("GET", f"/api/workforce/mass-sends/{send}", None, MASS_SENDERS),
        ("GET", f"/workforce/mass-sends/{send}", None, MASS_SENDERS),
        ("GET", f"/api/workforce/archive?connector_id=wecom-main&customer_id={cid}", None, OFFICERS),
        ("GET", f"/workforce/archive?connector_id=wecom-main&customer_id={cid}", None, OFFICERS),
        ("POST", "/api/sidebar/context", {"external_userid": EXTERNAL_ID}, CUSTOMER_READERS),
        ("POST", "/sidebar/view", {"external_userid": EXTERNAL_ID}, CUSTOMER_READERS),
        ("GET", "/flows/preview-customers?_pv_q=", None, FLOW_READERS),
        ("GET", "/api/quarantine", None, ADMIN_ONLY),
        ("GET", "/api/users", None, ADMIN_ONLY),
        ("GET", "/settings/users", None, ADMIN_ONLY),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_newer_route_answers_each_role_with_what_it_may_read(world: Case, role: str) -> None:
    """Journeys (the failures page too), the audit export, dashboards, tickets (as staff, as a reviewer),
    growth and loyalty, workforce (mass sends, the archive), the sidebar, the preview picker, people: each
    answers this role what the read policy lets it read, or 403 / 404."""
    _customers, _journeys, _audit, clear_pii, texts = MAY[role]
    client = TestClient(world["app"], headers={"Authorization": f"Bearer {world['tokens'][role]}"})
    answered = 0
    for method, path, body, allowed in _walk(world):
        r = client.request(method, path, json=body, follow_redirects=False)
        if role not in allowed:
            assert r.status_code in (403, 404), (role, path, r.status_code, r.text[:300])
            assert PHONE not in r.text and NAME not in r.text and OWN_REPLY not in r.text, (role, path)
            continue
        assert r.status_code == 200, (role, path, r.status_code, r.text[:300])
        answered += 1
        seen = r.text
        for text in ALL_TEXTS:
            if text not in texts:
                assert text not in seen, (role, path, text)
        if not clear_pii:
            for secret in (PHONE, NAME, AUDIT_SECRET, EXTERNAL_ID):
                assert secret not in seen, (role, path, secret)
    assert answered >= 2, role  # (the auditor reads the audit log only)


def test_the_newer_routes_show_clear_readers_what_they_need(world: Case) -> None:
    """The walk above could pass by showing nothing: the roles that may read see the customer and messages."""
    def get(role: str, path: str, body: Any = None) -> str:
        client = TestClient(world["app"], headers={"Authorization": f"Bearer {world['tokens'][role]}"})
        r = client.request("POST" if body else "GET", path, json=body)
        assert r.status_code == 200, (role, path, r.text[:300])
        return r.text

    cid, refunds = world["cid"], world["tickets"]["refunds"]
    assert NAME in get("ops", "/journeys") and NAME in get("ops", "/journeys/failures")
    assert "韩*" in get("marketer", "/journeys") and "韩*" in get("finance", "/journeys/failures")
    assert NAME in get("agent", f"/tickets/{refunds}") and OWN_REPLY in get("agent", f"/tickets/{refunds}")
    reviewed = get("finance", f"/tickets/{world['tickets']['vip']}")
    assert "韩*" in reviewed and "你的角色不能查看消息内容" in reviewed  # the approver: messages hidden, said so
    channel = "/growth/channels/store-code"
    assert NAME in get("admin", channel) and "韩*" in get("marketer", channel)
    assert NAME in get("ops", "/growth/review") and "韩*" in get("marketer", "/growth/review")
    assert NAME in get("ops", "/api/sidebar/context", {"external_userid": EXTERNAL_ID})
    assert AUDIT_SECRET in get("admin", "/audit.csv") and "139****6666" in get("auditor", "/audit.csv")
    assert PHONE in get("ops", "/api/growth/blocklist") and EXTERNAL_ID in get("ops", f"/api/workforce/mass-sends/"
                                                                                        f"{world['mass_send']}")
    assert cid in get("marketer", "/api/growth/campaigns/invite-3/leaderboard")
