"""The inbound-connector stack for end-to-end tests: the web app and a worker on real Temporal, the connector
kinds a test installs, and events pushed to a connector's hook."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.base import Connector
from connectors.email import EmailConnector
from connectors.sms import SmsConnector
from connectors.webhook.connector import WebhookConnector
from connectors.webhook.signing import sign_payload
from designer.app import create_app
from designer.connectors import api as api_connectors
from engine import auth
from engine import connectors as configured
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.pipeline import follow_ups_routed
from engine.router import Router
from engine.worker import build_worker
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
    """Only these connector kinds are installed."""
    monkeypatch.setattr(configured, "connector_classes", lambda: dict(installed))


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
async def stack(time_env: Any, db_url: str, registered: None, cheap_passwords: None) -> AsyncIterator[Stack]:
    async with admin_api(time_env, db_url, f"hooks-{uuid.uuid4().hex[:8]}") as http:
        yield Stack(http, db_url, time_env.client)


def event_body(event_id: str, event_type: str, payload: dict[str, Any] | None = None,
               **identities: str) -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "customer": identities,
                       "profile": {"name": "张三"}, "payload": payload or {}}, ensure_ascii=False).encode()
