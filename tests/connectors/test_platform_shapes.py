"""Platform messages in the shapes the platforms really send, checked against what their own SDKs and
published fixtures make — not only our encoders: 抖店's URL check and sign methods (with the ``doudian``
SDK's verifier), pay_time dating, Shopify's published refund objects, unmapped messages kept raw."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from doudian.core import DouDian  # type: ignore[import-untyped]
from fastapi.testclient import TestClient

from connectors.douyin.connector import DouyinConnector, push_sign_method
from connectors.douyin.inbound import Message, event_from_message, parse_messages
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.inbound import parse_body, refund_amount, refund_from_payload
from engine import connector_ops
from engine.db.session import session_factory
from tests.connectors.fake_shops import (
    DY_APP_KEY,
    DY_SECRET,
    DY_SHOP,
    SHOP,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeDouyin,
    FakeShopify,
    douyin_detail,
    fake_douyin,
    fake_shopify,
    hook_client,
    shopify_order,
    stored,
)

__all__ = ["fake_douyin", "fake_shopify"]
FIXTURES = Path(__file__).parent / "fixtures"
P_ID = "6920000000000001234"
URL_CHECK = b'[{"tag":"0","msg_id":"0","data":"2020-09-10T16:27:56.52842897+08:00"}]'


def sdk() -> Any:
    return DouDian(DY_APP_KEY, DY_SECRET, shop_id=DY_SHOP, test_mode=True)


def sdk_md5(body: bytes) -> str:
    """The event-sign the 抖店 SDK accepts (its callback() recomputes it; we check it accepts ours)."""
    sign = hashlib.md5(DY_APP_KEY.encode() + body + DY_SECRET.encode()).hexdigest()  # noqa: S324 - 抖店's method
    assert sdk().callback({"app-id": DY_APP_KEY, "event-sign": sign}, body) is not None
    return sign


@pytest.fixture
def douyin_hooks(db_url: str, monkeypatch: pytest.MonkeyPatch, fake_douyin: FakeDouyin) -> TestClient:
    return hook_client(db_url, monkeypatch, "doudian", DouyinConnector,
                       {"app_key": DY_APP_KEY, "shop_id": DY_SHOP, "api_base": fake_douyin.url},
                       {"app_secret": DY_SECRET})


def test_the_url_check_is_answered_as_the_platform_expects(douyin_hooks: TestClient, db_url: str,
                                                            fake_douyin: FakeDouyin) -> None:
    assert [m.tag for m in parse_messages(URL_CHECK)] == ["0"]
    signed = douyin_hooks.post("/hooks/doudian", content=URL_CHECK,
                               headers={"app-id": DY_APP_KEY, "event-sign": sdk_md5(URL_CHECK)})
    unsigned = douyin_hooks.post("/hooks/doudian", content=URL_CHECK)  # saved before the app key was known
    for answer in (signed, unsigned):
        assert (answer.status_code, answer.json()) == (200, {"code": 0, "msg": "success"})
    assert stored(db_url, "doudian") == [] and fake_douyin.requests == []
    forged = douyin_hooks.post("/hooks/doudian", content=b'[{"tag":"101","msg_id":"1","data":"{}"}]')
    assert forged.status_code == 401  # only the bare URL check goes unsigned


def test_each_push_is_verified_with_the_method_it_declares(douyin_hooks: TestClient, db_url: str,
                                                            fake_douyin: FakeDouyin) -> None:
    fake_douyin.details[P_ID] = douyin_detail(P_ID)
    body, _ = fake_douyin.push(("101", "m-1", {"p_id": int(P_ID), "shop_id": int(DY_SHOP)}))
    md5 = sdk_md5(body)
    sha = hmac.new(DY_SECRET.encode(), DY_APP_KEY.encode() + body + DY_SECRET.encode(), hashlib.sha256).hexdigest()
    assert push_sign_method({}, md5) == "md5" and push_sign_method({}, sha) == "hmac-sha256"
    assert push_sign_method({"sign-method": "HMAC-SHA256"}, md5) == "hmac-sha256"
    base = {"app-id": DY_APP_KEY}
    for extra in ({"event-sign": md5}, {"event-sign": sha}, {"event-sign": sha, "sign-method": "hmac-sha256"},
                  {"event-sign": md5, "event-sign-method": "md5"}):
        assert douyin_hooks.post("/hooks/doudian", content=body, headers={**base, **extra}).status_code == 200
    for wrong in ({"event-sign": md5, "sign-method": "hmac-sha256"}, {"event-sign": sha, "sign-method": "md5"},
                  {"event-sign": md5, "sign-method": "sha1"}):
        assert douyin_hooks.post("/hooks/doudian", content=body, headers={**base, **wrong}).status_code == 401
    assert len(stored(db_url, "doudian")) == 1  # four deliveries of one message: one event


def test_order_paid_is_dated_by_pay_time_not_by_arrival() -> None:
    detail = {**douyin_detail(P_ID), "pay_time": 1795413690}
    thin = Message("101", "m-1", {"p_id": int(P_ID), "shop_id": int(DY_SHOP), "order_status": 2})
    assert event_from_message(thin, detail)["occurred_at"] == "2026-11-23T06:01:30+00:00"
    as_text = Message("101", "m-2", {"p_id": int(P_ID), "shop_id": int(DY_SHOP), "pay_time": "2026-11-23 14:01:30"})
    assert event_from_message(as_text, {**detail, "pay_time": None})["occurred_at"] == "2026-11-23T14:01:30+08:00"


def test_tags_without_an_event_are_kept_raw_and_counted(douyin_hooks: TestClient, db_url: str,
                                                         fake_douyin: FakeDouyin) -> None:
    body, headers = fake_douyin.push(("108", "m-addr", {"p_id": int(P_ID), "shop_id": int(DY_SHOP)}))
    for _ in range(2):  # 抖店 redelivers
        assert douyin_hooks.post("/hooks/doudian", content=body, headers=headers).json()["code"] == 0
    with session_factory(db_url)() as db:
        total, by_kind, [message] = connector_ops.unmapped(db, "doudian")
    assert (total, by_kind, message.deliveries, message.message_id) == (1, {"108": 1}, 2, "m-addr")
    assert "tag 108" in message.reason and json.loads(message.raw)["data"]["p_id"] == int(P_ID)


# --- Shopify ---------------------------------------------------------------------------------------------

def fixture(name: str) -> dict[str, Any]:
    return parse_body((FIXTURES / "shopify" / name).read_bytes())


@pytest.mark.parametrize(("name", "transactions", "fen"), [
    ("refund_two_lines_2023-07.json", None, 20900),  # the transaction: the money that moved
    ("refund_two_lines_2023-07.json", [], 19566 + 398 + 19567 + 398),  # numbers, no transactions: the lines
    ("refund_shipping_only_2023-07.json", None, 500),
    ("refund_shipping_only_2023-07.json", [], 500),  # the shipping adjustment (sent negative)
])
def test_published_refund_objects_in_every_shape(name: str, transactions: list[Any] | None, fen: int) -> None:
    refund = fixture(name)
    if transactions is not None:
        refund["transactions"] = transactions
    assert refund_amount(refund, "USD") == fen
    event = refund_from_payload(refund, shopify_order(450789469, currency="USD"), SHOP, "completed", "wh", None)
    assert event["payload"]["amount_fen"] == fen and event["payload"]["order_id"] == "450789469"


def test_numbers_are_read_exactly_never_through_a_float() -> None:
    refund = parse_body(b'{"id": 1, "order_id": 2, "transactions": [], "refund_line_items": '
                        b'[{"line_item_id": 9, "quantity": 3, "subtotal": 0.1, "total_tax": 0.2}]}')
    assert refund_amount(refund, "USD") == 30
    event = refund_from_payload(refund, shopify_order(2, currency="USD"), SHOP, "completed", "wh", None)
    assert event["payload"]["items"] == [{"sku": "9", "name": "", "quantity": 3, "price_fen": 10, "category": ""}]


def test_a_numeric_refund_webhook_through_the_app_and_other_topics_kept(
        db_url: str, monkeypatch: pytest.MonkeyPatch, fake_shopify: FakeShopify) -> None:
    hooks = hook_client(db_url, monkeypatch, "shopify-us", ShopifyConnector,
                        {"shop_domain": SHOP, "api_base": fake_shopify.url},
                        {"webhook_secret": SHOPIFY_SECRET, "admin_access_token": SHOPIFY_TOKEN})
    fake_shopify.orders[450789469] = shopify_order(450789469, currency="USD")
    body = (FIXTURES / "shopify" / "refund_two_lines_2023-07.json").read_bytes().replace(
        b'"transactions": [{', b'"transactions": [], "was": [{')
    r = hooks.post("/hooks/shopify-us", content=body, headers=FakeShopify.webhook("refunds/create", {}, raw=body)[1])
    assert r.status_code == 200, r.text
    [event] = stored(db_url, "shopify-us")
    assert event.type == "refund.completed" and event.payload["amount_fen"] == 39929
    other = b'{"id": 5, "title": "Summer"}'
    r = hooks.post("/hooks/shopify-us", content=other, headers=FakeShopify.webhook("collections/create", {}, "wh-c",
                                                                                   raw=other)[1])
    assert r.status_code == 200
    with session_factory(db_url)() as db:
        assert connector_ops.unmapped(db, "shopify-us")[1] == {"collections/create": 1}


def test_a_push_too_big_to_complete_in_time_is_answered_503_and_nothing_is_lost(
        db_url: str, monkeypatch: pytest.MonkeyPatch, fake_douyin: FakeDouyin) -> None:
    hooks = hook_client(db_url, monkeypatch, "doudian", DouyinConnector,
                        {"app_key": DY_APP_KEY, "shop_id": DY_SHOP, "api_base": fake_douyin.url,
                         "answer_within_seconds": 0.001}, {"app_secret": DY_SECRET})
    ids = [str(int(P_ID) + i) for i in range(3)]
    for order_id in ids:
        fake_douyin.details[order_id] = douyin_detail(order_id, open_id=f"1@#dy{order_id}")
    body, headers = fake_douyin.push(*[("101", f"m-{i}", {"p_id": int(o), "shop_id": int(DY_SHOP)})
                                       for i, o in enumerate(ids)])
    answers = []
    for _ in range(5):  # 抖店 pushes again until it gets success
        answers.append(hooks.post("/hooks/doudian", content=body, headers=headers))
        if answers[-1].status_code == 200:
            break
    assert answers[0].status_code == 503 and answers[-1].json() == {"code": 0, "msg": "success"}
    assert sorted(e.payload["order_id"] for e in stored(db_url, "doudian")) == ids
    assert len(fake_douyin.calls("/order/orderDetail")) == 3  # each order fetched once across the deliveries
