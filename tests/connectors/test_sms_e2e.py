"""End to end: a signed push at /hooks/<id> starts a journey whose text is delivered by the sms connector
to a loopback HTTP server playing the SMS gateway, on the time-skipping server — including a gateway
that throttles once (429: retried with the same key, sent once)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import HOOK, HOOK_SECRET, Stack, event_body, registered, stack
from tests.connectors.loopback import Reply

__all__ = ["registered", "stack"]  # fixtures
API_KEY = "sms-key-5a5a5a5a"


@pytest.fixture
def gateway() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


async def test_signed_push_starts_a_journey_whose_text_reaches_the_gateway(stack: Stack, gateway: Loopback) -> None:
    gateway.reply(Reply(429, {"code": "THROTTLED"}), Reply(200, {"code": 0, "data": {"sid": "SM-88"}}))
    await stack.configure(HOOK, "webhook", {}, {"secret": HOOK_SECRET})
    await stack.configure("sms-gw", "sms", {
        "url": gateway.url + "/api/send",
        "body_template": json.dumps({"mobile": "{phone}", "content": "【潮汐】{content}", "outId": "{key}"}),
        "auth_header": "Authorization", "auth_scheme": "Bearer", "phone_format": "national",
        "success_path": "code", "success_value": "0", "message_id_path": "data.sid",
    }, {"api_key": API_KEY})
    await stack.publish("delivered-survey", "order.delivered", "sms",
                        "{{ customer.name }}，订单 {{ event.payload.order_id }} 已签收，回复1-5为本次服务打分")

    r = await stack.push(event_body("ord-5-delivered", "order.delivered", {"order_id": "5"}, phone="13800138005"))
    assert r.status_code == 200, r.text
    [stored] = stack.stored()
    assert stored.customer_id
    result = await stack.journey_result("delivered-survey", stored.customer_id)
    assert result["status"] == "completed"

    key = f"journey/delivered-survey/{stored.customer_id}/hello/1"
    first, second = gateway.requests
    assert first.json() == second.json() == {
        "mobile": "13800138005", "content": "【潮汐】张三，订单 5 已签收，回复1-5为本次服务打分", "outId": key}
    assert {first.headers["idempotency-key"], second.headers["idempotency-key"]} == {key}
    assert second.headers["authorization"] == f"Bearer {API_KEY}"
    [message] = stack.messages("delivered-survey")
    assert message.status == "sent" and message.channel == "sms"
    [done] = [s for s in result["timeline"] if s.get("node") == "hello" and s.get("what") == "action"]
    assert done["detail"]["provider_id"] == "SM-88"
