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
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from connectors.base import Connector
from connectors.email import EmailConnector
from connectors.sms import SmsConnector
from connectors.webhook.connector import WebhookConnector
from connectors.webhook.signing import sign_payload, verify_signature
from designer.app import create_app
from designer.connectors import api as api_connectors
from engine import auth
from engine import connectors as configured
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.pipeline import follow_ups_routed
from engine.router import Router
from engine.worker import build_worker
from tests.connectors.test_sms_gateway import Loopback, Reply
from tests.e2e.browser import include_once

INSTALLED = {"email": EmailConnector, "sms": SmsConnector, "webhook": WebhookConnector}
HOOK_SECRET = "whsec-shop-0123456789abcdef"
HOOK = "shop-hook"


@dataclass
class Stack:
    """The designer app (over ASGI, as an admin), a worker on a fresh queue, and the Temporal client."""

    http: httpx.AsyncClient
    db_url: str
    client: Any

    async def configure(self, connector_id: str, kind: str, settings: dict[str, Any],
                        secrets: dict[str, Any]) -> None:
        r = await self.http.put(f"/api/connectors/{connector_id}", json={
            "kind": kind, "name": connector_id, "settings": settings, "secrets": secrets})
        assert r.status_code == 201, r.text

    async def publish(self, flow_id: str, event_type: str, channel: str, template: str) -> None:
        document = {
            "schema": "tideflow/flow@1", "id": flow_id, "name": flow_id, "kind": "journey", "settings": {},
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": event_type}},
                      {"id": "hello", "type": "action.send_message",
                       "config": {"channel": channel, "template": template, "category": "transactional"}}],
            "edges": [{"from": "start", "port": "out", "to": "hello"}],
        }
        r = await self.http.post("/api/flows", json=document)
        assert r.status_code == 201, r.text
        r = await self.http.post(f"/api/flows/{flow_id}/publish")
        assert r.status_code == 201, r.text

    async def push(self, body: bytes, signature: str | None = None, connector_id: str = HOOK) -> httpx.Response:
        """POST to the hook as the platform would: raw JSON and ``X-Tideflow-Signature`` (no login)."""
        header = signature if signature is not None else sign_payload(HOOK_SECRET, body, int(time.time()))
        request = self.http.build_request("POST", f"/hooks/{connector_id}", content=body, headers={
            "Content-Type": "application/json", "X-Tideflow-Signature": header})
        del request.headers["Authorization"]  # platforms do not log in
        return await self.http.send(request)

    def stored(self, source: str = HOOK) -> list[models.EventRecord]:
        with session_factory(self.db_url)() as db:
            return list(db.scalars(select(models.EventRecord).where(models.EventRecord.source == source)
                                   .order_by(models.EventRecord.id)))

    def messages(self, flow_id: str) -> list[models.Message]:
        with session_factory(self.db_url)() as db:
            return list(db.scalars(select(models.Message).where(models.Message.flow_id == flow_id)
                                   .order_by(models.Message.id)))

    async def journey_result(self, flow_id: str, customer_id: str) -> dict[str, Any]:
        handle = self.client.get_workflow_handle(f"journey/{flow_id}/{customer_id}")
        return dict(await asyncio.wait_for(handle.result(), 60))


def install(monkeypatch: pytest.MonkeyPatch, installed: Mapping[str, type[Connector]]) -> None:
    """Only these connector kinds are installed; passwords hash cheaply."""
    monkeypatch.setattr(configured, "connector_classes", lambda: dict(installed))
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@asynccontextmanager
async def admin_api(time_env: Any, db_url: str, queue: str) -> AsyncIterator[httpx.AsyncClient]:
    """The designer API with the connectors' routes and a worker on ``queue``; a client logged in as an admin."""
    with transaction(db_url) as db:
        user = auth.create_user(db, "ops-admin", "a-long-password", "admin")
        token = auth.create_token(db, user, "e2e")
    app = create_app(db_url, connect=False)
    include_once(app, api_connectors.router)
    app.state.router = Router(time_env.client, db_url, queue)
    # the worker as `tideflow worker` runs it: what its activities store (polled orders …) is routed on commit
    async with follow_ups_routed(Router(time_env.client, db_url, queue)), build_worker(
            time_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tideflow.test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, INSTALLED)


@pytest.fixture
async def stack(time_env: Any, db_url: str, registered: None) -> AsyncIterator[Stack]:
    async with admin_api(time_env, db_url, f"hooks-{uuid.uuid4().hex[:8]}") as http:
        yield Stack(http, db_url, time_env.client)


def event_body(event_id: str, event_type: str, payload: dict[str, Any] | None = None,
               **identities: str) -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "customer": identities,
                       "profile": {"name": "张三"}, "payload": payload or {}}, ensure_ascii=False).encode()


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
