"""Shopify end to end, on Temporal's time-skipping server: a signed orders/paid webhook → /hooks/<id> →
order.paid stored once and in the order book → a journey triggered by order.paid → its text reaches a
loopback SMS gateway. And one buyer: the same phone in a Youzan order and a Shopify order is one customer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from connectors.shopify.connector import ShopifyConnector
from connectors.sms import SmsConnector
from connectors.youzan.connector import YouzanConnector
from tests.connectors.fake_shops import (
    SHOP,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    YZ_CLIENT_ID,
    YZ_SECRET,
    FakeShopify,
    FakeYouzan,
    book,
    customers,
    fake_shopify,
    fake_youzan,
    shopify_order,
    youzan_trade,
)
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import Stack, install, stack
from tests.connectors.loopback import Reply

__all__ = ["fake_shopify", "fake_youzan", "stack"]
ORDER_ID = 5560001234


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the webhook e2e's fixture of the same name: the connectors of this test."""
    install(monkeypatch, {"youzan": YouzanConnector, "shopify": ShopifyConnector, "sms": SmsConnector})


@pytest.fixture
def gateway() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"code": 0, "data": {"sid": "SM-SHOP-1"}})
        yield server


async def deliver(stack: Stack, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    request = stack.http.build_request("POST", path, content=body, headers=headers)
    del request.headers["Authorization"]  # the platform does not log in
    return await stack.http.send(request)


async def configure_shops(stack: Stack, fake_shopify: FakeShopify, fake_youzan: FakeYouzan) -> None:
    await stack.configure("shopify-us", "shopify", {"shop_domain": SHOP, "api_base": fake_shopify.url},
                          {"webhook_secret": SHOPIFY_SECRET, "admin_access_token": SHOPIFY_TOKEN})
    await stack.configure("youzan-main", "youzan", {"client_id": YZ_CLIENT_ID, "api_base": fake_youzan.url},
                          {"client_secret": YZ_SECRET})


async def test_a_paid_shopify_order_sends_the_buyer_a_text(stack: Stack, fake_shopify: FakeShopify,
                                                          fake_youzan: FakeYouzan, gateway: Loopback) -> None:
    await configure_shops(stack, fake_shopify, fake_youzan)
    await stack.configure("sms-gw", "sms", {
        "url": gateway.url + "/v2/sms", "phone_format": "e164",
        "body_template": json.dumps({"to": "{phone}", "text": "{content}", "ref": "{key}"})}, {})
    await stack.publish("paid-thanks", "order.paid", "sms",
                        "Thanks! Order {{ event.payload.order_id }}: {{ event.payload.amount_fen }} "
                        "{{ event.payload.currency }} cents")

    body, headers = fake_shopify.webhook("orders/paid", shopify_order(ORDER_ID, phone="+14155550123"), "wh-e2e")
    assert (await deliver(stack, "/hooks/shopify-us", body, headers)).status_code == 200
    assert (await deliver(stack, "/hooks/shopify-us", body, headers)).status_code == 200  # a redelivery
    [event] = stack.stored("shopify-us")
    assert event.external_id == f"shopify:{SHOP}:wh-e2e" and event.customer_id
    [order], _ = book(stack.db_url)
    assert (order.order_id, order.amount_fen, order.currency, order.status) == (str(ORDER_ID), 19900, "USD", "paid")

    result = await stack.journey_result("paid-thanks", event.customer_id)
    assert result["status"] == "completed"
    [sent] = gateway.requests
    key = f"journey/paid-thanks/{event.customer_id}/hello/1"
    assert sent.json() == {"to": "+14155550123", "text": f"Thanks! Order {ORDER_ID}: 19900 USD cents", "ref": key}
    [message] = stack.messages("paid-thanks")
    assert message.status == "sent"


async def test_the_same_phone_in_youzan_and_shopify_is_one_customer(stack: Stack, fake_shopify: FakeShopify,
                                                                   fake_youzan: FakeYouzan) -> None:
    await configure_shops(stack, fake_shopify, fake_youzan)
    body, headers = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade("E-ONE-1",
                                                                                        phone="13800138000")})
    assert (await deliver(stack, "/hooks/youzan-main", body, headers)).status_code == 200
    body, headers = fake_shopify.webhook("orders/create", shopify_order(ORDER_ID, phone="+86 138-0013-8000"), "wh-1")
    assert (await deliver(stack, "/hooks/shopify-us", body, headers)).status_code == 200

    [youzan] = stack.stored("youzan-main")
    [shopify] = stack.stored("shopify-us")
    assert youzan.customer_id == shopify.customer_id
    [customer] = customers(stack.db_url)
    assert customer.id == youzan.customer_id
    orders, _ = book(stack.db_url)
    assert {(o.channel, o.customer_id) for o in orders} == {("youzan", customer.id), ("shopify", customer.id)}
