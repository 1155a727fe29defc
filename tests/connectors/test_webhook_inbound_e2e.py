"""End to end through the generic webhook connector, on Temporal's time-skipping server.

A system playing the platform POSTs a signed event to ``/hooks/<connector id>`` → the event is
stored once → it starts a published journey → the journey's ``action.send_message`` goes out through
a connector-backed channel. Here the channel is ``webhook`` (a loopback receiver verifies the
signature); tests/connectors/test_email_e2e.py and test_sms_e2e.py reuse :class:`Stack` for the
``email`` (real SMTP) and ``sms`` (loopback gateway) channels.

The connectors are registered by monkeypatching ``engine.connectors.connector_classes`` (the entry
points are declared in pyproject.toml once installed); the app, the hooks and the worker's
channels all read it through the module.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.webhook.signing import sign_payload, verify_signature
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import HOOK, HOOK_SECRET, Stack, event_body, registered, stack
from tests.connectors.loopback import Reply

__all__ = ["registered", "stack"]  # fixtures


@pytest.fixture
def crm() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"id": "crm-7f3a"})
        yield server


async def test_signed_push_starts_a_journey_whose_message_goes_out_by_webhook(stack: Stack, crm: Loopback) -> None:
    # one webhook connector both ways: the CRM pushes events in and receives the journey's messages
    await stack.configure(HOOK, "webhook", {"url": crm.url + "/tideflow/messages"}, {"secret": HOOK_SECRET})
    await stack.publish("vip-welcome", "custom.member_upgraded", "webhook",
                        "{{ customer.name }}，恭喜升级为{{ event.payload.tier }}会员")

    r = await stack.push(event_body("upg-1001", "custom.member_upgraded", {"tier": "金卡"},
                                    phone="13800138000", external_id="crm-42"))
    assert r.status_code == 200 and r.json() == {"received": 1}, r.text
    [stored] = stack.stored()
    assert stored.external_id == "upg-1001" and stored.customer_id
    result = await stack.journey_result("vip-welcome", stored.customer_id)
    assert result["status"] == "completed"

    [seen] = crm.requests
    verify_signature(HOOK_SECRET, seen.body, seen.headers["x-tideflow-signature"], int(time.time()))
    key = f"journey/vip-welcome/{stored.customer_id}/hello/1"
    assert seen.path == "/tideflow/messages" and seen.headers["idempotency-key"] == key
    assert seen.json() == {"key": key, "channel": "webhook", "content": "张三，恭喜升级为金卡会员",
                           "customer": {"id": stored.customer_id, "name": "张三"},
                           "identities": {"phone": "+8613800138000", "external_id": "crm-42"}, "attachments": []}
    [message] = stack.messages("vip-welcome")
    assert message.status == "sent" and message.channel == "webhook" and message.idempotency_key == key


async def test_a_bad_signature_gets_401_and_nothing_is_stored(stack: Stack) -> None:
    await stack.configure(HOOK, "webhook", {}, {"secret": HOOK_SECRET})
    body = event_body("forged-1", "order.paid", {"amount": 1}, phone="13800138000")
    forged = sign_payload("not-the-shared-secret-at-all", body, int(time.time()))
    stale = sign_payload(HOOK_SECRET, body, int(time.time()) - 3600)

    for signature in (forged, stale, "", "t=1,v1=deadbeef"):
        r = await stack.push(body, signature)
        assert r.status_code == 401, r.text
        assert r.json()["detail"]["field"] == "signature" and HOOK_SECRET not in r.text
    assert stack.stored() == []
    with session_factory(stack.db_url)() as db:
        assert db.scalar(select(func.count()).select_from(models.Customer)) == 0


async def test_a_replayed_delivery_is_stored_once_and_sends_once(stack: Stack, crm: Loopback) -> None:
    await stack.configure(HOOK, "webhook", {"url": crm.url}, {"secret": HOOK_SECRET})
    await stack.publish("paid-thanks", "order.paid", "webhook", "谢谢惠顾 {{ event.payload.order_id }}")
    body = event_body("ord-77-paid", "order.paid", {"order_id": "77", "amount": 9900}, phone="13900000077")
    signature = sign_payload(HOOK_SECRET, body, int(time.time()))

    first = await stack.push(body, signature)
    again = await stack.push(body, signature)  # the platform retried: same bytes, same signature
    assert first.status_code == again.status_code == 200
    [stored] = stack.stored()
    await stack.journey_result("paid-thanks", stored.customer_id or "")
    await asyncio.sleep(0.5)
    assert len(crm.requests) == 1 and crm.requests[0].json()["content"] == "谢谢惠顾 77"
    assert len(stack.messages("paid-thanks")) == 1


async def test_a_batch_and_a_payload_that_does_not_parse(stack: Stack) -> None:
    await stack.configure(HOOK, "webhook", {}, {"secret": HOOK_SECRET})
    batch = json.dumps([json.loads(event_body("v-1", "product.viewed", phone="13700000001")),
                        json.loads(event_body("v-2", "product.viewed", phone="13700000002"))]).encode()
    r = await stack.push(batch)
    assert r.status_code == 200 and r.json() == {"received": 2}
    assert [e.external_id for e in stack.stored()] == ["v-1", "v-2"]

    r = await stack.push(b'{"id": "x", "type": "order.paid"')
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]["message"]
    r = await stack.push(event_body("typo-1", "order.payed", phone="13700000003"))
    assert r.status_code == 400 and "order.paid" in r.text
    assert len(stack.stored()) == 2
