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
Case = dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    from engine.db.session import upgrade

    db_url = f"sqlite:///{tmp_path_factory.mktemp('read') / 'tideflow.db'}"
    upgrade(db_url)
    hasher = auth._hasher
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
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
    app = create_app(db_url, connect=False)
    yield {"app": app, "tokens": tokens, "cid": cid, "db_url": db_url}
    auth._hasher = hasher


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
