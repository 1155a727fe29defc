"""One bad event never stalls the others: a poison event (a payload so deep that starting a journey with it
raises RecursionError — refused at the entrance today, but already stored or imported) is retried a few
times, quarantined with its error, and — fixed by an operator through
the API — sent again; every event around it is routed meanwhile. Real Temporal dev server, real worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from designer.app import create_app
from engine import auth
from engine import events as ingest
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.events import MAX_ATTEMPTS, EventIn
from engine.pipeline import RoutingPipeline
from engine.router import Router
from engine.settings import get_settings
from engine.worker import build_worker
from tests.designer.events_kit import Api, event, nested, publish
from tests.engine.flowkit import WELCOME

pytestmark = pytest.mark.usefixtures("cheap_passwords")


@dataclass
class Stack:
    api: Api
    app: FastAPI
    url: str

    @property
    def pipeline(self) -> RoutingPipeline:
        pipeline = self.app.state.pipeline
        assert isinstance(pipeline, RoutingPipeline)
        return pipeline


@pytest.fixture
async def stack(dev_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    queue = f"quarantine-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    get_settings.cache_clear()
    with transaction(db_url) as db:
        user = auth.create_user(db, "operator", "a-long-password", "admin")
        token = auth.create_token(db, user, "test")
        marketer = auth.create_user(db, "marketer", "a-long-password", "marketer")
        marketer_token = auth.create_token(db, marketer, "test")
    app = create_app(db_url, connect=False)
    app.state.router = Router(dev_env.client, db_url, queue)
    app.state.marketer_token = marketer_token
    async with build_worker(dev_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        yield Stack(Api(http, db_url), app, db_url)


def status_of(url: str, event_id: str) -> tuple[str, int]:
    with session_factory(url)() as db:
        row = db.scalar(select(models.EventRecord).where(models.EventRecord.external_id == event_id))
        assert row is not None
        return row.status, row.attempts


async def test_a_poison_event_is_quarantined_fixed_and_sent_again_while_the_others_flow(stack: Stack) -> None:
    api = stack.api
    await publish(api, WELCOME)
    # the entrance refuses a payload this deep (TIDEFLOW_MAX_JSON_DEPTH, issue 18) ...
    r = await api.http.post("/api/events", json={**event("deep", phone="13900000209"), "payload": nested(600)})
    assert r.status_code == 400 and "TIDEFLOW_MAX_JSON_DEPTH" in r.text, r.text
    # ... but one already stored (before the limit existed, or by an import) must not stall routing either
    answers = await api.post("/api/events", [event("ok-1", phone="13900000201"), event("ok-2", phone="13900000203")],
                             202)
    assert [a["routing"] for a in answers] == ["done", "done"] and all(len(a["started"]) == 1 for a in answers)
    stored = ingest.store_many([EventIn.model_validate({**event("poison", phone="13900000202"),
                                                        "payload": nested(600)})], stack.url)
    poison_customer = stored[0].payload["customer_id"]
    assert status_of(stack.url, "poison") == ("received", 0)

    # more events stored behind it (as after a crash: nobody routing them); the re-router takes them all, the
    # poison fails again each pass and is quarantined at the limit — never holding up the events behind it
    later = ingest.store_many([EventIn.model_validate(event(f"later-{i}", phone=f"1390000021{i}")) for i in range(3)],
                              stack.url)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        routed = await stack.pipeline.reroute_once(older_than_seconds=0)
        expected = "quarantined" if attempt == MAX_ATTEMPTS else "pending"
        assert sorted(r.routing for r in routed) == sorted([expected] + ["done"] * (3 if attempt == 1 else 0))
        assert status_of(stack.url, "poison") == (
            ("quarantined" if attempt == MAX_ATTEMPTS else "received"), attempt)
    assert all(status_of(stack.url, s.payload["id"].split(":", 1)[1])[0] == "routed" for s in later)
    assert await stack.pipeline.reroute_once(older_than_seconds=0) == []  # quarantined: left alone

    # the operator sees it with its reason; another role does not
    listed = await api.get("/api/quarantine")
    assert listed["total"] == 1 and listed["by_status"] == {"open": 1}
    entry = listed["entries"][0]
    assert (entry["kind"], entry["ref"], entry["attempts"]) == ("event", "api:poison", MAX_ATTEMPTS)
    assert "RecursionError" in entry["error"]
    r = await api.http.get("/api/quarantine", headers={"Authorization": f"Bearer {stack.app.state.marketer_token}"})
    assert r.status_code == 403

    # sending it again unchanged fails again: the entry stays open with the error, answered 409
    r = await api.http.post(f"/api/quarantine/{entry['id']}/redrive")
    assert r.status_code == 409 and "RecursionError" in r.json()["detail"]["message"], r.text
    # fixed and sent again: it starts its journey and the entry is closed
    r = await api.http.put(f"/api/quarantine/{entry['id']}/payload", json={"payload": {"note": "flattened"}})
    assert r.status_code == 200 and r.json()["payload"]["payload"] == {"note": "flattened"}, r.text
    r = await api.http.post(f"/api/quarantine/{entry['id']}/redrive")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["entry"]["status"] == "redriven" and done["entry"]["redriven_by"] == "operator"
    assert done["outcome"]["started"] == [f"journey/welcome/{poison_customer}"]
    assert status_of(stack.url, "poison")[0] == "routed"
    assert await api.messages_of(poison_customer, 1) == ["你好 张三"]
    assert (await api.get("/api/quarantine"))["total"] == 0
    r = await api.http.post(f"/api/quarantine/{entry['id']}/redrive")
    assert r.status_code == 409 and "not open" in r.json()["detail"]["message"]
    r = await api.http.post("/api/quarantine/999999/redrive")
    assert r.status_code == 404


async def test_a_push_mapped_to_an_invalid_event_is_quarantined_and_can_be_fixed(stack: Stack) -> None:
    from engine import quarantine

    with transaction(stack.url) as db:  # what /hooks does with a verified delivery its connector mapped badly
        quarantine.put(db, "push", "youzan-shop:T-1", "type: unknown event type 'order.payed'",
                       {"source": "youzan-shop", "id": "T-1", "type": "order.payed",
                        "customer": {"phone": "13900000301"}, "payload": {"tid": "T-1"}})
    entry = (await stack.api.get("/api/quarantine?kind=push"))["entries"][0]
    r = await stack.api.http.post(f"/api/quarantine/{entry['id']}/redrive")
    assert r.status_code == 422 and "not a valid event" in r.json()["detail"]["message"], r.text
    r = await stack.api.http.put(f"/api/quarantine/{entry['id']}/payload", json={"payload": "not an object"})
    assert r.status_code == 422
    # still invalid (the type is wrong, not the payload): dropped by the operator, kept on record
    r = await stack.api.http.post(f"/api/quarantine/{entry['id']}/drop")
    assert r.status_code == 200 and r.json()["status"] == "dropped"
    assert (await stack.api.get("/api/quarantine?status=all"))["by_status"] == {"dropped": 1}
