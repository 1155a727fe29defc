"""/customers and /customers/{id}: search, masked identities, tags, journeys and messages; roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI

from engine.customers import mask_identity, resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.dbtemplate import seeded_sqlite
from tests.designer.pages_kit import Browser, add_users, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    seeded_sqlite(db_url, add_users)
    return build_app(db_url)


@pytest.fixture
def customer(db_url: str) -> str:
    """王芳: phone 139 0000 0001, an email, a WeCom id, two tags, a journey, a sent and a capped message."""
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13900000001", "email": "alice@example.com",
                           "wecom_external_userid": "wmABCDEFGH123456", "youzan_buyer": "yz-778899"},
                      "王芳", {"vip_level": 3, "note": "备用电话 13912345678"})
        db.get(models.Customer, cid).timezone = "Asia/Urumqi"  # type: ignore[union-attr]
        db.add_all([models.CustomerTag(customer_id=cid, tag="尝鲜客"), models.CustomerTag(customer_id=cid, tag="VIP")])
        now = utcnow()
        db.add(models.Journey(workflow_id=f"journey/welcome-new-contact/{cid}", flow_id="welcome-new-contact",
                              version=1, customer_id=cid, status="waiting", current_node="wait1",
                              started_at=now - timedelta(hours=5)))
        db.add(models.Message(idempotency_key="k1", customer_id=cid, channel="wecom", content="你好 王芳",
                              status="sent", flow_id="welcome-new-contact", node_id="hello",
                              workflow_id=f"journey/welcome-new-contact/{cid}", created_at=now - timedelta(hours=5)))
        db.add(models.Message(idempotency_key="k2", customer_id=cid, channel="sms", content="限时折扣",
                              status="skipped: capped", flow_id="browse-3-no-order", node_id="offer",
                              created_at=now - timedelta(hours=1)))
    return cid


def test_identities_are_masked() -> None:
    assert mask_identity("phone", "+8613900000001") == "139****0001"
    assert mask_identity("email", "alice@example.com") == "a***@example.com"
    assert mask_identity("wecom_external_userid", "wmABCDEFGH123456") == "wmAB****3456"
    assert mask_identity("youzan_buyer", "yz-778899") == "yz****99"
    assert mask_identity("wechat_openid", "abc") == "****"


def test_customer_list_searches_by_name_id_phone_and_email(app: FastAPI, customer: str) -> None:
    ops = Browser(app, "ops")
    listing = ops.get("/customers").text
    assert "王芳" in listing and "李雷" in listing and "139****0001" in listing and "a***@example.com" in listing
    assert "13900000001" not in listing and "alice@" not in listing
    for q in ("王芳", "王", customer, "13900000001", "+8613900000001", "ALICE@example.com"):
        found = ops.get("/customers", params={"q": q}).text
        assert f'href="/customers/{customer}"' in found and "李雷" not in found, q
    assert "没有符合条件的客户" in ops.get("/customers", params={"q": "nobody"}).text
    assert "No customers match." in ops.get("/customers", params={"q": "nobody", "lang": "en"}).text


def test_customer_profile_in_both_languages(app: FastAPI, customer: str) -> None:
    marketer = Browser(app, "marketer")
    page = marketer.get(f"/customers/{customer}")
    assert page.status_code == 200
    text = page.text
    # a marketer reads the journey's messages but the customer's own name is masked (the read policy)
    assert "<h1>王* " in text
    for shown in ("王芳", "Asia/Urumqi", "vip_level", "139****0001", "a***@example.com", "wmAB****3456",
                  "有赞 买家 ID", "尝鲜客", "VIP", "新客欢迎旅程", "等待中", "wait1", "你好 王芳", "已发送",
                  "已跳过：超出频次上限", "skipped: capped", "139****5678"):
        assert shown in text, shown
    for hidden in ("13900000001", "alice@", "wmABCDEFGH123456", "yz-778899", "13912345678"):
        assert hidden not in text, hidden
    assert f'href="/journeys/journey/welcome-new-contact/{customer}"' in text  # marketers may open journeys
    # newest message first
    assert text.index("限时折扣") < text.index("你好 王芳")

    en = marketer.get(f"/customers/{customer}?lang=en").text
    for shown in ("Identities", "Tags", "Journeys", "Messages received", "Waiting", "skipped: capped", "Phone"):
        assert shown in en, shown


def test_an_agent_sees_customers_but_not_journey_pages(app: FastAPI, customer: str) -> None:
    agent = Browser(app, "agent")
    page = agent.get(f"/customers/{customer}").text
    assert "新客欢迎旅程" in page and 'href="/journeys/' not in page
    assert agent.get("/journeys").status_code == 403


@pytest.mark.parametrize("role", ["finance", "developer"])
def test_roles_without_customer_access_get_403(app: FastAPI, customer: str, role: str) -> None:
    user = Browser(app, role)
    for path in ("/customers", f"/customers/{customer}"):
        r = user.get(path)
        assert r.status_code == 403 and "没有权限" in r.text and "139****" not in r.text


def test_unknown_and_merged_customers(app: FastAPI, db_url: str, customer: str) -> None:
    ops = Browser(app, "ops")
    r = ops.get("/customers/c_nobody")
    assert r.status_code == 404 and "找不到客户" in r.text
    with transaction(db_url) as db:
        other = resolve(db, {"wechat_openid": "o-merge-me"}, "王芳 (公众号)")
        resolve(db, {"wechat_openid": "o-merge-me", "phone": "13900000001"})  # links the two: a merge
    r = ops.get(f"/customers/{other}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{customer}"
    profile = ops.get(f"/customers/{customer}").text
    assert "公众号 openid" in profile and other in profile
    assert "o-****me" in profile and "o-merge-me" not in profile
