"""抖店 end to end, on Temporal's time-skipping server: the fake 抖店 signs a TradePaid push (tag 101) →
/hooks/<id> of the real app completes it with order.orderDetail (signed call, cached token) and stores
order.paid once, into the order book → a journey triggered by order.paid → its message goes out through
the webhook channel to a loopback CRM that verifies the signature. 抖店 encrypts the buyer's phone, so
the buyer is known by ``douyin_buyer`` and the journey uses a channel that needs no phone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from connectors.douyin.connector import DouyinConnector
from connectors.webhook.connector import WebhookConnector
from connectors.webhook.signing import verify_signature
from tests.connectors.fake_shops import DY_APP_KEY, DY_SECRET, DY_SHOP, FakeDouyin, book, douyin_detail, fake_douyin
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import Stack, install, stack
from tests.connectors.loopback import Reply

__all__ = ["fake_douyin", "stack"]
P_ID = "6920000000000005678"
CRM_SECRET = "whsec-crm-0123456789abcdef"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the webhook e2e's fixture of the same name: the connectors of this test."""
    install(monkeypatch, {"douyin": DouyinConnector, "webhook": WebhookConnector})


@pytest.fixture
def crm() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"id": "crm-dy-1"})
        yield server


async def test_a_paid_douyin_order_reaches_the_crm_through_a_journey(stack: Stack, fake_douyin: FakeDouyin,
                                                                    crm: Loopback) -> None:
    fake_douyin.details[P_ID] = douyin_detail(P_ID, pay_amount=25800)
    await stack.configure("doudian", "douyin", {"app_key": DY_APP_KEY, "shop_id": DY_SHOP,
                                                "api_base": fake_douyin.url}, {"app_secret": DY_SECRET})
    await stack.configure("crm", "webhook", {"url": crm.url + "/tideflow/messages"}, {"secret": CRM_SECRET})
    await stack.publish("douyin-paid", "order.paid", "webhook",
                        "抖店订单 {{ event.payload.order_id }} 已付款 {{ event.payload.amount_fen }} 分")

    body, headers = fake_douyin.push(("101", "7300000000000000001", {
        "p_id": int(P_ID), "shop_id": int(DY_SHOP), "order_status": 2, "pay_time": 1795413690, "pay_amount": 25800}))
    request = stack.http.build_request("POST", "/hooks/doudian", content=body, headers=headers)
    del request.headers["Authorization"]  # the platform does not log in
    answer = await stack.http.send(request)
    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "success"}

    [event] = stack.stored("doudian")
    assert event.type == "order.paid" and event.identities == {"douyin_buyer": "1@#dyOpenBuyer001"}
    [order], _ = book(stack.db_url)
    assert (order.channel, order.order_id, order.amount_fen) == ("douyin", P_ID, 25800)
    result = await stack.journey_result("douyin-paid", event.customer_id or "")
    assert result["status"] == "completed"

    [seen] = crm.requests
    verify_signature(CRM_SECRET, seen.body, seen.headers["x-tideflow-signature"], int(time.time()))
    key = f"journey/douyin-paid/{event.customer_id}/hello/1"
    assert seen.json()["content"] == f"抖店订单 {P_ID} 已付款 25800 分" and seen.json()["key"] == key
    assert seen.json()["identities"] == {"douyin_buyer": "1@#dyOpenBuyer001"}
    assert fake_douyin.problems == [] and len(fake_douyin.calls("/order/orderDetail")) == 1
