"""Admission control on the real stack: when journeys pile up in Temporal (here: no worker polls the task
queue), ingestion answers 429 + Retry-After and stores nothing — POST /api/events and connector pushes
alike (a push gets the answer its platform redelivers on); a request over the routing capacity is refused
whole. Sizes and bounds are tiny so the backlog of a few waiting journeys is enough."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.webhook.signing import sign_payload
from designer.app import create_app
from engine import auth
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.pipeline import RoutingPipeline
from engine.router import Router
from engine.settings import get_settings
from engine.worker import build_worker
from tests.designer.events_kit import event

pytestmark = pytest.mark.usefixtures("cheap_passwords")
SECRET = "whsec-admission-0123456789"


def stored(url: str) -> int:
    with session_factory(url)() as db:
        return int(db.scalar(select(func.count()).select_from(models.EventRecord)) or 0)


async def test_a_backlog_past_the_bound_is_answered_429_and_nothing_is_stored(
        dev_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = f"admission-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    monkeypatch.setenv("TIDEFLOW_LATENCY_BOUND_SECONDS", "0.2")
    monkeypatch.setenv("TIDEFLOW_ROUTING_CAPACITY", "5")
    get_settings.cache_clear()
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "admin-1", "a-long-password", "admin"), "t")
    app = create_app(db_url, connect=False)
    app.state.router = Router(dev_env.client, db_url, queue)  # and no worker: journeys wait in Temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        r = await http.post("/api/flows", json={
            "schema": "tideflow/flow@1", "id": "welcome", "name": "w", "kind": "journey",
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"}},
                      {"id": "hello", "type": "action.send_message", "config": {"template": "hi"}}],
            "edges": [{"from": "start", "port": "out", "to": "hello"}]})
        assert r.status_code == 201, r.text
        assert (await http.post("/api/flows/welcome/publish")).status_code == 201

        # more than the routing capacity in one request: refused whole, before anything is stored
        r = await http.post("/api/events", json=[event(f"big-{i}", phone=f"1390000040{i}") for i in range(6)])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
        assert "nothing was stored" in r.json()["detail"]["message"] and stored(db_url) == 0
        big = [event(f"big-{i}", phone=f"1390000040{i}") for i in range(6)]
        r = await http.post("/api/events?lang=zh-CN", json=big)
        assert r.status_code == 429 and "路由积压已满" in r.json()["detail"]["message"], r.text
        assert "秒后重新发送" in r.json()["detail"]["fix"] and stored(db_url) == 0

        # journeys start but nobody runs them: soon the predicted wait passes the bound
        refused: httpx.Response | None = None
        deadline = time.monotonic() + 30
        i = 0
        while refused is None and time.monotonic() < deadline:
            i += 1
            r = await http.post("/api/events", json=event(f"e-{i}", phone=f"1380000{i:04d}"))
            if r.status_code == 429:
                refused = r
            else:
                assert r.status_code == 202 and len(r.json()["started"]) == 1, r.text
                await asyncio.sleep(0.3)
        assert refused is not None, "no 429 while journeys piled up in Temporal"
        assert int(refused.headers["Retry-After"]) >= 1
        assert stored(db_url) == i - 1  # the refused event was not stored

        # a connector push gets its platform's retry answer, and nothing of it is stored
        r = await http.put("/api/connectors/hook", json={"kind": "webhook", "name": "hook", "settings": {},
                                                          "secrets": {"secret": SECRET}})
        assert r.status_code == 201, r.text
        body = json.dumps(event("pushed-1", phone="13700000001")).encode()
        push = http.build_request("POST", "/hooks/hook", content=body, headers={
            "Content-Type": "application/json", "X-Tideflow-Signature": sign_payload(SECRET, body, int(time.time()))})
        del push.headers["Authorization"]
        r = await http.send(push)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text
        with session_factory(db_url)() as db:
            assert db.scalar(select(models.EventRecord).where(models.EventRecord.source == "hook")) is None

        # a worker comes and drains the backlog: the refusals end (they keep the signals they are based on
        # fresh) and the event told to come back is taken
        async with build_worker(dev_env.client, queue, db_url):
            deadline = time.monotonic() + 60
            again = await http.post("/api/events", json=event(f"e-{i}", phone=f"1380000{i:04d}"))
            while again.status_code == 429 and time.monotonic() < deadline:
                await asyncio.sleep(float(again.headers["Retry-After"]))
                again = await http.post("/api/events", json=event(f"e-{i}", phone=f"1380000{i:04d}"))
            assert again.status_code == 202 and len(again.json()["started"]) == 1, again.text


async def test_unsigned_pushes_do_not_spend_the_admission_budget(db_url: str) -> None:
    """While the workers are saturated, admission hands out a token bucket's worth of events. A flood of
    requests with a bad signature must be answered 401 and take none of it, or an attacker without the
    secret could keep the platform's genuine pushes answered "busy"."""
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "admin-2", "a-long-password", "admin"), "t")
    app = create_app(db_url, connect=False)
    pipeline = app.state.pipeline = RoutingPipeline(db_url, None, latency_bound=2.0)
    # the workers report 1 s behind (saturated at a 2 s bound) completing 2 events/s: admission limits to
    # 1 event/s, a bucket of one event (engine/admission.py)
    pipeline.worker_lag, pipeline.worker_done = 1.0, 2.0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        r = await http.put("/api/connectors/hook", headers={"Authorization": f"Bearer {token}"},
                           json={"kind": "webhook", "name": "hook", "settings": {}, "secrets": {"secret": SECRET}})
        assert r.status_code == 201, r.text
        body = json.dumps(event("pushed-2", phone="13700000002")).encode()
        forged = {"Content-Type": "application/json",
                  "X-Tideflow-Signature": sign_payload("not-the-secret-0123456789", body, int(time.time()))}
        for _ in range(10):
            r = await http.post("/hooks/hook", content=body, headers=forged)
            assert r.status_code == 401, r.text
        signed = {"Content-Type": "application/json",
                  "X-Tideflow-Signature": sign_payload(SECRET, body, int(time.time()))}
        r = await http.post("/hooks/hook", content=body, headers=signed)
        assert r.status_code < 300, r.text  # the genuine push still finds its token
        r = await http.post("/hooks/hook", content=body, headers=signed)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text  # and the budget is real
    with session_factory(db_url)() as db:
        assert db.scalar(select(func.count()).select_from(models.EventRecord)
                         .where(models.EventRecord.source == "hook")) == 1
