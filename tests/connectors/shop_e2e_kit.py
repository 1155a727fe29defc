"""The shop-sync stack for end-to-end tests: a shop connector's sync workflow on real Temporal against a fake
platform gateway, and an SMS gateway on loopback for what the journeys send."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.jd.connector import JdConnector
from connectors.sms import SmsConnector
from connectors.taobao.connector import TaobaoConnector
from engine import shop_sync
from engine.db import models
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.inbound_kit import Stack, admin_api, install
from tests.connectors.loopback import Reply
from tests.waiting import until

INSTALLED = {"taobao": TaobaoConnector, "jd": JdConnector, "sms": SmsConnector}


@dataclass
class ShopStack(Stack):
    queue: str = ""

    async def configure_sms(self, gateway: Loopback) -> None:
        await self.configure("sms-gw", "sms", {
            "url": gateway.url + "/api/send", "phone_format": "national",
            "body_template": json.dumps({"mobile": "{phone}", "content": "{content}", "outId": "{key}"}),
            "success_path": "code", "success_value": "0"}, {"api_key": "sms-key-0001"})

    async def sync_once(self, connector_id: str, source_type: str = "order.paid") -> models.EventRecord:
        """Start the connector's sync workflow and wait until it stored and routed an event of ``source_type``."""
        assert await shop_sync.ensure_running(self.client, self.db_url, self.queue) == [connector_id]
        assert await shop_sync.ensure_running(self.client, self.db_url, self.queue) == []  # already running
        found = await until(lambda: [e for e in self.stored(connector_id)
                                     if e.type == source_type and e.status == "routed"],
                            f"a routed {source_type} event from {connector_id}", timeout=30)
        return found[0]

    async def stop_sync(self, connector_id: str) -> None:
        await self.client.get_workflow_handle(shop_sync.workflow_id(connector_id)).terminate("test over")


@pytest.fixture
def shop_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, INSTALLED)


@pytest.fixture
async def shop_stack(time_env: Any, db_url: str, shop_kinds: None, cheap_passwords: None) -> AsyncIterator[ShopStack]:
    queue = f"shops-{uuid.uuid4().hex[:8]}"
    async with admin_api(time_env, db_url, queue) as http:
        yield ShopStack(http, db_url, time_env.client, queue)


@pytest.fixture
def gateway() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"code": 0})
        yield server
