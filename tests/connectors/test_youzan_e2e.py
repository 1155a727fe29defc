"""Youzan end to end, on Temporal's time-skipping server: the fake Youzan platform signs a trade_TradePaid
push → /hooks/<id> of the real app stores the canonical order.paid once (and the order book has the
order) → a published journey triggered by order.paid starts → its text goes out through the sms
connector to a loopback SMS gateway, whose received request is checked."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from connectors.sms import SmsConnector
from connectors.youzan.connector import YouzanConnector
from tests.connectors.fake_shops import YZ_CLIENT_ID, YZ_KDT, YZ_SECRET, FakeYouzan, book, fake_youzan, youzan_trade
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import Stack, install, stack
from tests.connectors.loopback import Reply

__all__ = ["fake_youzan", "stack"]
TID = "E20261123100000012300077"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the webhook e2e's fixture of the same name: the connectors of this test."""
    install(monkeypatch, {"youzan": YouzanConnector, "sms": SmsConnector})


@pytest.fixture
def gateway() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"code": 0, "data": {"sid": "SM-YZ-1"}})
        yield server


async def test_a_paid_youzan_order_sends_the_buyer_a_text(stack: Stack, fake_youzan: FakeYouzan,
                                                         gateway: Loopback) -> None:
    await stack.configure("youzan-main", "youzan", {"client_id": YZ_CLIENT_ID, "api_base": fake_youzan.url},
                          {"client_secret": YZ_SECRET})
    await stack.configure("sms-gw", "sms", {
        "url": gateway.url + "/api/send", "phone_format": "national",
        "body_template": json.dumps({"mobile": "{phone}", "content": "【潮汐】{content}", "outId": "{key}"}),
        "success_path": "code", "success_value": "0", "message_id_path": "data.sid"}, {"api_key": "sms-key-yz"})
    await stack.publish("paid-thanks", "order.paid", "sms",
                        "感谢惠顾！订单 {{ event.payload.order_id }} 已付款 {{ event.payload.amount_fen / 100 }} 元")

    body, headers = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade(TID, phone="13900139077")})
    request = stack.http.build_request("POST", "/hooks/youzan-main", content=body, headers=headers)
    del request.headers["Authorization"]  # the platform does not log in
    answer = await stack.http.send(request)
    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "success"}

    [event] = stack.stored("youzan-main")
    assert event.type == "order.paid" and event.customer_id
    [order], _ = book(stack.db_url)
    assert (order.order_id, order.amount_fen, order.status, order.customer_id) == (TID, 12900, "paid",
                                                                                   event.customer_id)
    result = await stack.journey_result("paid-thanks", event.customer_id)
    assert result["status"] == "completed"

    [sent] = gateway.requests
    key = f"journey/paid-thanks/{event.customer_id}/hello/1"
    assert sent.path == "/api/send" and sent.headers["idempotency-key"] == key
    assert sent.json() == {"mobile": "13900139077", "content": f"【潮汐】感谢惠顾！订单 {TID} 已付款 129.0 元",
                           "outId": key}
    assert sent.headers["authorization"] == "sms-key-yz"
    [message] = stack.messages("paid-thanks")
    assert message.status == "sent" and message.channel == "sms"
    assert fake_youzan.problems == [] and str(YZ_KDT) == order.shop
