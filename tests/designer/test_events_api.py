"""POST /api/events on the real Temporal dev server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from designer.app import create_app
from engine import auth
from engine.db.session import transaction
from engine.router import Router
from engine.settings import get_settings
from engine.worker import build_worker
from tests.designer.events_kit import Api, event, publish
from tests.engine.flowkit import WELCOME

pytestmark = pytest.mark.usefixtures("cheap_passwords")


@pytest.fixture
async def api(dev_env: Any, any_db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    queue = f"api-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    get_settings.cache_clear()
    with transaction(any_db_url) as db:
        user = auth.create_user(db, "ops-bot", "a-long-password", "admin")
        token = auth.create_token(db, user, "test")
    app = create_app(any_db_url, connect=False)
    app.state.router = Router(dev_env.client, any_db_url, queue)
    async with build_worker(dev_env.client, queue, any_db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        yield Api(http, any_db_url)


async def test_event_starts_a_journey_once(api: Api) -> None:
    assert await publish(api, WELCOME) == 1
    first = await api.post("/api/events", event("e-1"), 202)
    assert first["status"] == "accepted" and first["started"] == [f"journey/welcome/{first['customer_id']}"]
    assert await api.messages_of(first["customer_id"], 1) == ["你好 张三"]
    again = await api.post("/api/events", event("e-1"), 202)
    assert again["status"] == "duplicate" and again["started"] == []
    other = await api.post("/api/events", event("e-2"), 202)  # same customer, re-entry 'never'
    assert other["status"] == "accepted" and other["started"] == [] and other["signalled"] == 1
    await asyncio.sleep(0.5)
    assert await api.messages_of(first["customer_id"], 1) == ["你好 张三"]
    stats = await api.get("/api/flows/welcome/stats")
    assert stats["nodes"]["start"]["entered"] == 1 and stats["nodes"]["wait1"]["waiting"] == 1


async def test_a_batch_routes_customers_concurrently_and_each_customer_in_order(api: Api) -> None:
    """One request, four customers with two events each and a repeat: stored in one transaction, routed across
    customers at once, and each customer's second event reaches the journey its first one started."""
    await publish(api, WELCOME)
    phones = [f"1390000010{i}" for i in range(4)]
    batch = [event(f"b-{i}", phone=p) for i, p in enumerate(phones)]
    batch += [event(f"b2-{i}", phone=p) for i, p in enumerate(phones)]  # each customer's second event
    batch.append(event("b-0", phone=phones[0]))  # the same event twice in one batch
    results = await api.post("/api/events", batch, 202)
    assert [r["status"] for r in results] == ["accepted"] * 8 + ["duplicate"]
    for first, second in zip(results[:4], results[4:8], strict=True):
        assert first["started"] == [f"journey/welcome/{first['customer_id']}"]
        # routed after the first one started the journey: it reaches the running journey
        assert second["customer_id"] == first["customer_id"] and second["started"] == [] \
            and second["signalled"] == 1
    assert results[8]["started"] == [] and results[8]["signalled"] == 0
    for r in results[:4]:
        assert await api.messages_of(r["customer_id"], 1) == ["你好 张三"]


async def test_batch_and_identity_merge(api: Api) -> None:
    results = await api.post("/api/events", [
        event("m-1", "customer.interacted", phone="13900000001"),
        event("m-2", "customer.interacted", wechat_openid="oABC"),
    ], 202)
    a, b = results[0]["customer_id"], results[1]["customer_id"]
    assert a != b
    linked = await api.post("/api/events", event("m-3", "customer.interacted", phone="13900000001",
                                                 wechat_openid="oABC"), 202)
    survivor = linked["customer_id"]
    assert survivor in (a, b)
    profile = await api.get(f"/api/customers/{b if survivor == a else a}")
    assert profile["id"] == survivor
    kinds = {i["kind"]: i["value"] for i in profile["identities"]}
    assert kinds["wechat_openid"] == "oABC" and kinds["phone"] == "139****0001"


async def test_bad_input_gets_4xx_naming_the_problem(api: Api) -> None:
    r = await api.http.post("/api/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]["message"]
    r = await api.http.post("/api/events", json=event("x", "order.payed"))
    assert r.status_code == 422 and r.json()["detail"]["field"] == "type" and "order.paid" in r.text
    r = await api.http.post("/api/events", json={**event("y"), "payload": {"blob": "x" * 300_000}})
    assert r.status_code == 413
    r = await api.http.post("/api/events", json=[event("z1"), {"id": "z2", "type": "order.paid"}])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "1.customer"
    r = await api.http.post("/api/events", json=event("w", phone="12"))
    assert r.status_code == 422 and "phone" in r.text
    r = await httpx.AsyncClient(transport=api.http._transport, base_url="http://test").post(
        "/api/events", json=event("anon"))
    assert r.status_code == 401
    broken = copy.deepcopy(WELCOME) | {"id": "broken"}
    broken["nodes"][3]["config"]["expr"] = "customer.orders_count >"
    await api.post("/api/flows", broken, 201)
    r = await api.http.post("/api/flows/broken/publish")
    assert r.status_code == 422
    problems = r.json()["detail"]["problems"]
    assert problems[0]["node"] == "bought" and problems[0]["field"] == "config.expr"


async def test_republishing_leaves_running_journeys_on_their_version(api: Api) -> None:
    await publish(api, WELCOME)
    old = await api.post("/api/events", event("v-1", phone="13700000001"), 202)
    assert await api.messages_of(old["customer_id"], 1) == ["你好 张三"]
    changed = copy.deepcopy(WELCOME)
    changed["nodes"][1]["config"]["template"] = "欢迎 {{ customer.name }}"
    r = await api.http.put("/api/flows/welcome", json=changed)
    assert r.status_code == 200 and r.json()["problems"] == []
    assert (await api.post("/api/flows/welcome/publish", None, 201))["version"] == 2
    new = await api.post("/api/events", event("v-2", phone="13700000002"), 202)
    assert await api.messages_of(new["customer_id"], 1) == ["欢迎 张三"]
    journeys = {j["customer_id"]: j for j in (await api.get("/api/journeys?flow=welcome"))["journeys"]}
    assert journeys[old["customer_id"]]["version"] == 1 and journeys[new["customer_id"]]["version"] == 2
    assert json.dumps(await api.get("/api/flows/welcome/versions")).count('"version"') == 2
