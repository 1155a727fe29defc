"""The profile API: archive (masked, paginated), tag rule CRUD, manual profile edits (audited)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from designer.app import create_app
from designer.auth import unguarded_routes
from engine import auth
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction

ROLES = ("admin", "marketer", "ops", "agent", "developer")


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    built = create_app(db_url, connect=False)
    return built


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def as_role(db_url: str, app: FastAPI) -> dict[str, dict[str, str]]:
    headers = {}
    with transaction(db_url) as db:
        for role in ROLES:
            user = auth.create_user(db, f"{role}-user", "a-long-password", role)
            headers[role] = {"Authorization": f"Bearer {auth.create_token(db, user, 't')}"}
    return headers


def new_customer(db_url: str, **identities: str) -> str:
    with transaction(db_url) as db:
        return resolve(db, identities or {"external_id": uuid.uuid4().hex}, "张三")


def add_message(db_url: str, customer_id: str, content: str, direction: str = "out") -> int:
    with transaction(db_url) as db:
        row = models.Message(idempotency_key=uuid.uuid4().hex, customer_id=customer_id, channel="wecom",
                             content=content, status="sent" if direction == "out" else "received",
                             direction=direction, category="promotional" if direction == "out" else "inbound",
                             flow_id="welcome" if direction == "out" else None)
        db.add(row)
        db.flush()
        return row.id


def test_every_profile_route_is_guarded(app: FastAPI) -> None:
    assert unguarded_routes(app) == []
    paths = set(app.openapi()["paths"])
    assert {"/api/customers/{customer_id}/archive", "/api/tag-rules", "/api/tag-rules/{rule_id}",
            "/api/customers/{customer_id}/profile"} <= paths


# -- archive ------------------------------------------------------------------------------------------------------
def test_archive_pages_newest_first_and_masks(client: TestClient, db_url: str, as_role: Any) -> None:
    cid = new_customer(db_url)
    other = new_customer(db_url)
    ids = [add_message(db_url, cid, "你好 张三"),
           add_message(db_url, cid, "我的电话 13800138000", "in"),
           add_message(db_url, cid, "卡号 4111 1111 1111 1111 已登记"),  # stored before masking existed
           add_message(db_url, cid, "谢谢", "in")]
    add_message(db_url, other, "别人的")
    # ops reads every message (an agent only those of customers with tickets in their groups: the read
    # policy, tests/security/test_security_read_routes.py)
    r = client.get(f"/api/customers/{cid}/archive?limit=3", headers=as_role["ops"])
    assert r.status_code == 200, r.text
    page = r.json()
    assert [m["id"] for m in page["messages"]] == ids[::-1][:3] and page["next_before"] == ids[1]
    assert [m["content"] for m in page["messages"]] == ["谢谢", "卡号 **** **** **** 1111 已登记",
                                                        "我的电话 138****8000"]
    assert page["messages"][0]["direction"] == "in" and page["messages"][1]["flow"] == "welcome"
    rest = client.get(f"/api/customers/{cid}/archive?limit=3&before={page['next_before']}",
                      headers=as_role["ops"]).json()
    assert [m["id"] for m in rest["messages"]] == [ids[0]] and rest["next_before"] is None
    inbound = client.get(f"/api/customers/{cid}/archive?direction=in", headers=as_role["marketer"]).json()
    assert [m["id"] for m in inbound["messages"]] == [ids[3], ids[1]]


def test_archive_follows_merged_customers_and_refuses_strangers(client: TestClient, db_url: str,
                                                                 as_role: Any) -> None:
    old = new_customer(db_url, phone="13800138000")
    new = new_customer(db_url, email="z@example.com")
    add_message(db_url, old, "old")
    add_message(db_url, new, "new")
    assert new_customer(db_url, phone="13800138000", email="z@example.com") == old
    for asked in (old, new):
        page = client.get(f"/api/customers/{asked}/archive", headers=as_role["ops"]).json()
        assert page["customer_id"] == old and [m["content"] for m in page["messages"]] == ["new", "old"]
    missing = client.get("/api/customers/c_nope/archive", headers=as_role["agent"])
    assert missing.status_code == 404 and missing.json()["detail"]["field"] == "id"
    assert client.get(f"/api/customers/{old}/archive", headers=as_role["developer"]).status_code == 403
    assert client.get(f"/api/customers/{old}/archive").status_code == 401
    assert client.get(f"/api/customers/{old}/archive?limit=500", headers=as_role["agent"]).status_code == 422


# -- tag rules -------------------------------------------------------------------------------------------------------
RULE = {"name": "首单", "event_type": "order.paid", "condition": "customer.orders_count == 1", "add_tags": ["尝鲜客"]}


def test_tag_rule_crud(client: TestClient, db_url: str, as_role: Any) -> None:
    h = as_role["marketer"]
    created = client.post("/api/tag-rules", json=RULE, headers=h)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["enabled"] is True and rule["remove_tags"] == [] and rule["id"] > 0
    assert [r["name"] for r in client.get("/api/tag-rules", headers=h).json()] == ["首单"]
    assert client.get("/api/tag-rules?event_type=refund.completed", headers=h).json() == []
    changed = client.put(f"/api/tag-rules/{rule['id']}", headers=h,
                         json={**RULE, "enabled": False, "remove_tags": ["沉默唤醒"]})
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["remove_tags"] == ["沉默唤醒"]
    assert client.delete(f"/api/tag-rules/{rule['id']}", headers=h).json() == {"id": rule["id"], "deleted": True}
    assert client.delete(f"/api/tag-rules/{rule['id']}", headers=h).status_code == 404
    assert client.put(f"/api/tag-rules/{rule['id']}", headers=h, json=RULE).status_code == 404
    with session_factory(db_url)() as db:
        actions = [a.action for a in db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id))
                   if a.action.startswith("tag_rule.")]
    assert actions == ["tag_rule.created", "tag_rule.updated", "tag_rule.deleted"]


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"condition": "customer.orders_count =="}, "condition", "syntax error"),
    ({"condition": "shop.level > 1"}, "condition", "unknown name 'shop'"),
    ({"event_type": "order.payed"}, "event_type", "order.paid"),
    ({"add_tags": []}, "body", "at least one tag"),
    ({"name": ""}, "name", "at least 1"),
])
def test_tag_rule_mistakes_are_422_naming_the_field(client: TestClient, as_role: Any, change: dict[str, Any],
                                                     field: str, words: str) -> None:
    r = client.post("/api/tag-rules", json={**RULE, **change}, headers=as_role["marketer"])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["field"] == field and words in detail["message"], detail


def test_tag_rules_are_for_marketers(client: TestClient, as_role: Any) -> None:
    for role in ("ops", "agent", "developer"):
        assert client.get("/api/tag-rules", headers=as_role[role]).status_code == 403
        assert client.post("/api/tag-rules", json=RULE, headers=as_role[role]).status_code == 403
    assert client.post("/api/tag-rules", json=RULE, headers=as_role["admin"]).status_code == 201


def test_default_rules_install_once(client: TestClient, as_role: Any) -> None:
    first = client.post("/api/tag-rules/defaults", headers=as_role["marketer"])
    assert first.status_code == 200 and [r["add_tags"] for r in first.json()] == [["尝鲜客"], ["品质敏感"]]
    assert client.post("/api/tag-rules/defaults", headers=as_role["marketer"]).json() == []


# -- manual profile edits ----------------------------------------------------------------------------------------------
def test_manual_profile_update_is_audited_with_masked_values(client: TestClient, db_url: str, as_role: Any) -> None:
    cid = new_customer(db_url)
    r = client.post(f"/api/customers/{cid}/profile", headers=as_role["marketer"], json={
        "set": {"vip_level": 3, "backup_phone": "13800138000", "birthday": {"value": "1990-02-03", "type": "date"},
                "note": "{{ not rendered }}", "timezone": "Asia/Shanghai"},
        "increment": {"visits": 2}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["attributes"] == {"vip_level": 3, "backup_phone": "13800138000", "birthday": "1990-02-03",
                                  "note": "{{ not rendered }}", "visits": 2}
    assert body["timezone"] == "Asia/Shanghai" and body["changed"]["incremented"] == ["visits"]
    with session_factory(db_url)() as db:
        entry = db.scalar(select(models.AuditEntry).where(models.AuditEntry.action == "customer.profile_updated"))
    assert entry is not None and entry.actor == "marketer-user" and entry.target == cid
    assert entry.detail["set"]["backup_phone"] == "138****8000" and entry.detail["incremented"] == {"visits": 2}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"set": {"price": 9.9}}, "set", "is a float"),
    ({"set": {"id": "x"}}, "body", "reserved"),
    ({"increment": {"note": 1}}, "increment.note", "not a whole number"),
    ({"set": {"timezone": "Mars/Olympus"}}, "set.timezone", "not an IANA time zone"),
])
def test_manual_profile_mistakes_are_422(client: TestClient, db_url: str, as_role: Any, body: dict[str, Any],
                                         field: str, words: str) -> None:
    cid = new_customer(db_url)
    with transaction(db_url) as db:
        row = db.get(models.Customer, cid)
        assert row is not None
        row.attributes = {"note": "hello"}
    r = client.post(f"/api/customers/{cid}/profile", headers=as_role["admin"], json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field and words in r.json()["detail"]["message"]


def test_manual_profile_roles_and_missing_customers(client: TestClient, db_url: str, as_role: Any) -> None:
    cid = new_customer(db_url)
    for role in ("ops", "agent", "developer"):
        assert client.post(f"/api/customers/{cid}/profile", headers=as_role[role],
                           json={"set": {"a": 1}}).status_code == 403
    assert client.post("/api/customers/c_nope/profile", headers=as_role["marketer"],
                       json={"set": {"a": 1}}).status_code == 404
