"""Shopify webhooks: normalising (pure), then through the real app at /hooks/<id> with a fake shop
Admin API on 127.0.0.1 (refunds/create fetches the order for the buyer)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.errors import ConnectorProtocolError
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.inbound import minor_units, order_from_payload, parse_time, refund_from_payload
from connectors.shopify.verify import compute_hmac
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.fake_shops import (
    SHOP,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeShopify,
    add_through_settings_page,
    book,
    fake_shopify,
    hook_client,
    shopify_order,
    stored,
)

__all__ = ["fake_shopify"]
HOOK = "/hooks/shopify-us"
ORDER_ID = 820982911946154508
REFUND = {"id": 509562969, "order_id": ORDER_ID, "created_at": "2026-11-24T09:00:00-05:00",
          "processed_at": "2026-11-24T09:00:01-05:00", "note": "damaged in transit",
          "refund_line_items": [{"quantity": 1, "subtotal": "199.00", "line_item": shopify_order(1)["line_items"][0]}],
          "transactions": [{"amount": "199.00", "currency": "USD", "kind": "refund", "status": "success"}]}


@pytest.mark.parametrize(("amount", "currency", "minor"), [("199.00", "USD", 19900), ("0.01", "CNY", 1),
                                                           ("1200", "JPY", 1200), ("1.250", "KWD", 1250),
                                                           ("12.5", "EUR", 1250)])
def test_minor_units(amount: str, currency: str, minor: int) -> None:
    assert minor_units(amount, currency, "total_price") == minor


@pytest.mark.parametrize(("amount", "currency"), [("1.5", "JPY"), ("1.001", "USD"), (1.5, "USD"), ("-1", "USD"),
                                                  ("x", "USD")])
def test_minor_units_refuses(amount: Any, currency: str) -> None:
    with pytest.raises(ConnectorProtocolError, match="total_price"):
        minor_units(amount, currency, "total_price")


def test_an_order_webhook_becomes_a_canonical_event() -> None:
    event = order_from_payload(shopify_order(ORDER_ID), SHOP, "paid", "wh-1", parse_time("2026-11-23T02:05:00Z"))
    assert event == {
        "id": f"shopify:{SHOP}:wh-1", "type": "order.paid", "occurred_at": "2026-11-23T02:05:00+00:00",
        "customer": {"email": "li.lei@example.com", "phone": "+8613800138000", "shopify_buyer": "7010001"},
        "payload": {"order_id": str(ORDER_ID), "shop": SHOP, "channel": "shopify", "status": "paid",
                    "amount_fen": 19900, "currency": "USD", "created_at": "2026-11-23T10:00:00+08:00",
                    "coupon_code": "WELCOME10", "attribution": {},
                    "items": [{"sku": "COLD-BREW-12", "name": "Cold brew 12-pack", "quantity": 1, "price_fen": 19900,
                               "category": "coffee"}]}}


def test_a_phone_that_is_not_one_is_left_out_and_a_buyerless_order_refused() -> None:
    event = order_from_payload(shopify_order(ORDER_ID, phone="call me"), SHOP, "created", "wh-2", None)
    assert event["customer"] == {"email": "li.lei@example.com", "shopify_buyer": "7010001"}
    assert event["occurred_at"] == "2026-11-23T10:00:00+08:00"  # created_at
    anonymous = {**shopify_order(ORDER_ID), "customer": None, "email": "", "phone": None}
    with pytest.raises(ConnectorProtocolError, match="no buyer"):
        order_from_payload(anonymous, SHOP, "paid", "wh-3", None)


def test_a_refund_webhook_with_its_order() -> None:
    event = refund_from_payload(REFUND, shopify_order(ORDER_ID), SHOP, "completed", "wh-4", None)
    assert event["type"] == "refund.completed" and event["id"] == f"shopify:{SHOP}:wh-4"
    assert event["payload"]["amount_fen"] == 19900 and event["payload"]["reason"] == "damaged in transit"
    assert event["payload"]["order_id"] == str(ORDER_ID) and event["occurred_at"] == "2026-11-24T09:00:01-05:00"


# --- through the app ------------------------------------------------------------------------------------

@pytest.fixture
def hooks(db_url: str, monkeypatch: pytest.MonkeyPatch, fake_shopify: FakeShopify) -> TestClient:
    return hook_client(db_url, monkeypatch, "shopify-us", ShopifyConnector,
                       {"shop_domain": SHOP, "api_base": fake_shopify.url},
                       {"webhook_secret": SHOPIFY_SECRET, "previous_webhook_secret": "shpss_old_rotated_secret",
                        "admin_access_token": SHOPIFY_TOKEN})


def test_topics_become_events_stored_once(hooks: TestClient, db_url: str, fake_shopify: FakeShopify) -> None:
    for n, topic in enumerate(("orders/create", "orders/paid", "orders/fulfilled")):
        body, headers = fake_shopify.webhook(topic, shopify_order(ORDER_ID), webhook_id=f"wh-{n}")
        assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
        assert hooks.post(HOOK, content=body, headers=headers).status_code == 200  # Shopify retried
    events = stored(db_url, "shopify-us")
    assert [e.type for e in events] == ["order.created", "order.paid", "order.shipped"]
    assert len({e.customer_id for e in events}) == 1
    [order], _ = book(db_url)
    assert (order.status, order.amount_fen, order.currency) == ("shipped", 19900, "USD")


def test_previous_secret_is_accepted_during_rotation_and_a_bad_one_refused(
        hooks: TestClient, db_url: str, fake_shopify: FakeShopify) -> None:
    body, headers = fake_shopify.webhook("orders/paid", shopify_order(ORDER_ID), secret="shpss_old_rotated_secret")
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    for secret, shop in (("shpss_forged", SHOP), (SHOPIFY_SECRET, "other-shop.myshopify.com")):
        body, headers = fake_shopify.webhook("orders/cancelled", shopify_order(ORDER_ID), "wh-x", secret=secret,
                                             shop=shop)
        r = hooks.post(HOOK, content=body, headers=headers)
        assert r.status_code == 401 and SHOPIFY_SECRET not in r.text
    assert [e.type for e in stored(db_url, "shopify-us")] == ["order.paid"]


def test_refunds_fetch_the_order_through_the_admin_api(hooks: TestClient, db_url: str,
                                                       fake_shopify: FakeShopify) -> None:
    fake_shopify.orders[ORDER_ID] = shopify_order(ORDER_ID)
    body, headers = fake_shopify.webhook("orders/paid", shopify_order(ORDER_ID), "wh-paid")
    hooks.post(HOOK, content=body, headers=headers)
    body, headers = fake_shopify.webhook("refunds/create", REFUND, "wh-refund")
    fake_shopify.throttle.append("0.05")  # one 429 first: waited out
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 200, r.text
    paid, refund = stored(db_url, "shopify-us")
    assert refund.type == "refund.completed" and refund.customer_id == paid.customer_id
    [order], [row] = book(db_url)
    assert order.status == "refunded" and row.amount_fen == 19900
    calls = fake_shopify.calls(f"/admin/api/2025-07/orders/{ORDER_ID}.json")
    assert len(calls) == 2 and all(c.headers["x-shopify-access-token"] == SHOPIFY_TOKEN for c in calls)
    assert fake_shopify.problems == []


def test_a_refund_is_answered_503_while_shopify_is_unreachable(hooks: TestClient, db_url: str,
                                                               fake_shopify: FakeShopify) -> None:
    body, headers = fake_shopify.webhook("refunds/create", REFUND, "wh-refund")
    fake_shopify.down = True
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 503
    assert stored(db_url, "shopify-us") == []


def test_other_topics_test_orders_and_bad_bodies(hooks: TestClient, db_url: str, fake_shopify: FakeShopify) -> None:
    body, headers = fake_shopify.webhook("products/update", {"id": 1})
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    body, headers = fake_shopify.webhook("orders/paid", {**shopify_order(ORDER_ID), "test": True})
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    assert stored(db_url, "shopify-us") == []
    body, headers = fake_shopify.webhook("orders/paid", {**shopify_order(ORDER_ID), "total_price": "1.999"})
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 400 and "total_price" in r.json()["detail"]["message"]
    body, headers = fake_shopify.webhook("orders/paid", {})
    headers["X-Shopify-Hmac-Sha256"] = compute_hmac(SHOPIFY_SECRET, b"[1")
    r = hooks.post(HOOK, content=b"[1", headers=headers)
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]["message"]
    assert json.loads(hooks.get(HOOK).text)["detail"]["message"].startswith("the delivery does not parse")


@pytest.mark.usefixtures("cheap_passwords")
def test_the_settings_page_adds_a_shopify_connector(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_through_settings_page(db_url, monkeypatch, ShopifyConnector, "shopify-us", {
        "settings.shop_domain": SHOP, "settings.api_version": "2025-07", "settings.api_base": "",
        "settings.api_timeout_seconds": "3", "settings.ignore_test_orders": "true",
        "secrets.webhook_secret": SHOPIFY_SECRET, "secrets.admin_access_token": SHOPIFY_TOKEN})
    with session_factory(db_url)() as db:
        row = db.get(models.ConnectorConfig, "shopify-us")
        assert row is not None and row.settings["shop_domain"] == SHOP and SHOPIFY_TOKEN not in row.secrets
