"""抖店 pushes: parsing and normalising (pure), then through the real app at /hooks/<id> with a fake
抖店 open API on 127.0.0.1 answering order.orderDetail (every message needs it for the buyer)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.douyin.connector import DouyinConnector
from connectors.douyin.inbound import ORDER_TAGS, REFUND_TAGS, Message, event_from_message, parse_messages
from connectors.douyin.signing import compute_event_sign
from connectors.errors import ConnectorProtocolError
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.fake_shops import (
    DY_APP_KEY,
    DY_SECRET,
    DY_SHOP,
    FakeDouyin,
    add_through_settings_page,
    book,
    douyin_detail,
    fake_douyin,
    hook_client,
    stored,
)

__all__ = ["fake_douyin"]
HOOK = "/hooks/doudian"
P_ID = "6920000000000001234"
PAID = {"p_id": int(P_ID), "s_ids": [int(P_ID + "1")], "shop_id": int(DY_SHOP), "order_status": 2, "pay_type": 1,
        "pay_time": 1795413690, "pay_amount": 9900, "biz": 2}


def test_parse_messages() -> None:
    body, _ = FakeDouyin.push(("101", "m-1", PAID), ("0", "m-0", {}))
    paid, test = parse_messages(body)
    assert paid == Message("101", "m-1", PAID) and paid.order_id == P_ID and paid.relevant
    assert test.tag == "0" and not test.relevant


@pytest.mark.parametrize(("body", "problem"), [
    (b"{", "not JSON"), (b"[]", "JSON array"), (b'[{"msg_id": "1"}]', "no tag"),
    (b'[{"tag": "101", "data": "{oops"}]', "data is not a JSON string"), (b'[{"tag": "101", "data": "[1]"}]',
                                                                         "JSON object"),
])
def test_pushes_that_do_not_parse(body: bytes, problem: str) -> None:
    with pytest.raises(ConnectorProtocolError, match=problem):
        parse_messages(body)


def test_a_paid_message_with_its_detail_becomes_order_paid() -> None:
    event = event_from_message(Message("101", "m-1", PAID), douyin_detail(P_ID))
    assert event == {
        "id": f"douyin:{DY_SHOP}:{P_ID}:paid", "type": "order.paid", "occurred_at": "2026-11-23T06:01:30+00:00",
        "customer": {"douyin_buyer": "1@#dyOpenBuyer001"},
        "payload": {"order_id": P_ID, "shop": DY_SHOP, "channel": "douyin", "status": "paid", "amount_fen": 9900,
                    "currency": "CNY", "created_at": "2026-11-23T06:00:00Z",
                    "paid_at": "2026-11-23T06:01:30Z", "attribution": {},
                    "items": [{"sku": "1730001", "name": "冷萃咖啡 12 支装", "quantity": 1, "price_fen": 9900,
                               "category": ""}]}}


@pytest.mark.parametrize(("tag", "status"), sorted(ORDER_TAGS.items()))
def test_order_tags(tag: str, status: str) -> None:
    event = event_from_message(Message(tag, "m", {"p_id": P_ID, "shop_id": DY_SHOP}), douyin_detail(P_ID))
    assert event["type"] == f"order.{status}"


@pytest.mark.parametrize(("tag", "status"), sorted(REFUND_TAGS.items()))
def test_refund_tags(tag: str, status: str) -> None:
    data = {"p_id": P_ID, "s_id": P_ID + "1", "shop_id": DY_SHOP, "aftersale_id": 7000000000000001,
            "refund_amount": 4950, "aftersale_type": 1, "reason_code": 6, "success_time": 1795500000}
    event = event_from_message(Message(tag, "m", data), douyin_detail(P_ID))
    assert event["type"] == f"refund.{status}" and event["id"] == f"douyin:{DY_SHOP}:refund:7000000000000001:{status}"
    assert event["payload"]["amount_fen"] == 4950 and event["payload"]["items"][0]["sku"] == "1730001"


def test_a_clear_phone_is_an_identity_and_a_buyerless_order_refused() -> None:
    event = event_from_message(Message("100", "m", {"p_id": P_ID}), douyin_detail(P_ID, post_tel="13700137000"))
    assert event["customer"] == {"phone": "13700137000", "douyin_buyer": "1@#dyOpenBuyer001"}
    with pytest.raises(ConnectorProtocolError, match="no buyer"):
        event_from_message(Message("100", "m", {"p_id": P_ID}), douyin_detail(P_ID, open_id=""))
    with pytest.raises(ConnectorProtocolError, match="no p_id"):
        event_from_message(Message("100", "m", {}), douyin_detail(P_ID))


# --- through the app ------------------------------------------------------------------------------------

@pytest.fixture
def hooks(db_url: str, monkeypatch: pytest.MonkeyPatch, fake_douyin: FakeDouyin) -> TestClient:
    return hook_client(db_url, monkeypatch, "doudian", DouyinConnector,
                       {"app_key": DY_APP_KEY, "shop_id": DY_SHOP, "api_base": fake_douyin.url},
                       {"app_secret": DY_SECRET})


def test_a_push_is_completed_with_the_order_detail_and_stored_once(hooks: TestClient, db_url: str,
                                                                    fake_douyin: FakeDouyin) -> None:
    fake_douyin.details[P_ID] = douyin_detail(P_ID)
    body, headers = fake_douyin.push(("100", "m-100", {"p_id": P_ID, "shop_id": DY_SHOP, "create_time": 1795413600}),
                                     ("101", "m-101", PAID), ("105", "m-105", {"p_id": P_ID}))
    for _ in range(2):  # 抖店 pushed it again
        r = hooks.post(HOOK, content=body, headers=headers)
        assert r.status_code == 200 and r.json() == {"code": 0, "msg": "success"}
    events = stored(db_url, "doudian")
    assert [e.type for e in events] == ["order.created", "order.paid"]
    [order], _ = book(db_url)
    assert (order.channel, order.shop, order.order_id, order.status, order.amount_fen) == (
        "douyin", DY_SHOP, P_ID, "paid", 9900)
    assert len(fake_douyin.calls("/token/create")) == 1
    [first, *_] = fake_douyin.calls("/order/orderDetail")
    assert json.loads(first.body) == {"shop_order_id": P_ID} and first.query["access_token"] == "dy-token-1"
    assert fake_douyin.problems == []


def test_a_bad_sign_or_another_app_is_refused_and_nothing_stored(hooks: TestClient, db_url: str,
                                                                 fake_douyin: FakeDouyin) -> None:
    fake_douyin.details[P_ID] = douyin_detail(P_ID)
    for secret, app_id in (("forged-secret", DY_APP_KEY), (DY_SECRET, "999")):
        body, headers = fake_douyin.push(("101", "m-1", PAID), secret=secret, app_id=app_id)
        r = hooks.post(HOOK, content=body, headers=headers)
        assert r.status_code == 401 and DY_SECRET not in r.text
    body, headers = fake_douyin.push(("101", "m-1", PAID))
    del headers["event-sign"]
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 401
    assert hooks.post(HOOK, content=body, headers={**headers, "event-sign": "x",
                                                   "event-sign-method": "sha1"}).status_code == 401
    assert stored(db_url, "doudian") == [] and fake_douyin.requests == []


def test_hmac_signed_pushes_and_test_messages(hooks: TestClient, db_url: str, fake_douyin: FakeDouyin) -> None:
    body, headers = fake_douyin.push(("0", "test", {}))
    assert hooks.post(HOOK, content=body, headers=headers).json() == {"code": 0, "msg": "success"}
    headers = {**headers, "event-sign-method": "hmac-sha256",
               "event-sign": compute_event_sign(DY_APP_KEY, DY_SECRET, body, "hmac-sha256")}
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    assert stored(db_url, "doudian") == [] and fake_douyin.requests == []


def test_bad_pushes_are_400_and_an_unreachable_api_503(hooks: TestClient, db_url: str,
                                                        fake_douyin: FakeDouyin) -> None:
    bad = b'[{"tag": "101", "msg_id": "1", "data": "{broken"}]'
    r = hooks.post(HOOK, content=bad, headers={"app-id": DY_APP_KEY,
                                                "event-sign": compute_event_sign(DY_APP_KEY, DY_SECRET, bad)})
    assert r.status_code == 400 and "data is not a JSON string" in r.json()["detail"]["message"]
    fake_douyin.details[P_ID] = douyin_detail(P_ID)
    other = "6920000000000009999"
    body, headers = fake_douyin.push(("101", "m-1", PAID), ("101", "m-2", {**PAID, "p_id": int(other)}))
    r = hooks.post(HOOK, content=body, headers=headers)  # the second order is unknown to 抖店 (yet)
    assert r.status_code == 503 and "success" not in r.text
    assert [e.external_id for e in stored(db_url, "doudian")] == [f"douyin:{DY_SHOP}:{P_ID}:paid"]
    fake_douyin.details[other] = douyin_detail(other, open_id="1@#dyOpenBuyer002")
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200  # 抖店's next try
    assert len(stored(db_url, "doudian")) == 2


def test_a_message_for_a_payload_that_fails_validation(hooks: TestClient, fake_douyin: FakeDouyin) -> None:
    detail: dict[str, Any] = {**douyin_detail(P_ID), "pay_amount": -5}
    fake_douyin.details[P_ID] = detail
    body, headers = fake_douyin.push(("101", "m-1", PAID))
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 400 and "pay_amount" in r.json()["detail"]["message"]


@pytest.mark.usefixtures("cheap_passwords")
def test_the_settings_page_adds_a_douyin_connector(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_through_settings_page(db_url, monkeypatch, DouyinConnector, "doudian", {
        "settings.app_key": DY_APP_KEY, "settings.shop_id": DY_SHOP,
        "settings.api_base": "https://openapi-fxg.jinritemai.com", "settings.api_timeout_seconds": "3",
        "secrets.app_secret": DY_SECRET})
    with session_factory(db_url)() as db:
        row = db.get(models.ConnectorConfig, "doudian")
        assert row is not None and row.settings["shop_id"] == DY_SHOP and DY_SECRET not in row.secrets
