"""One trace from the HTTP request to the message: the web's request span, the routing, Temporal's start, the
worker's workflow run and the send (a local activity) share one trace id — the caller's, from traceparent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from temporalio.client import Client

from designer.app import create_app
from engine import auth, tracing
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.settings import get_settings
from engine.worker import build_worker
from tests.engine.flowkit import publish
from tests.waiting import until


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing._configured = False  # the other tests run without tracing


async def test_an_event_is_one_trace_from_http_to_the_message(dev_env: Any, db_url: str, spans: InMemorySpanExporter,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    queue = f"trace-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    get_settings.cache_clear()
    publish(db_url, {"schema": "tideflow/flow@1", "id": "traced", "name": "traced", "kind": "journey",
                     "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "custom.traced"}},
                               {"id": "hello", "type": "action.send_message",
                                "config": {"channel": "dry-run", "template": "hi", "category": "transactional"}}],
                     "edges": [{"from": "start", "port": "out", "to": "hello"}]})
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "tracer", "a-long-password-9", "developer"), "t")
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  interceptors=tracing.interceptors())
    app = create_app(db_url, connect=False)
    app.state.router = Router(client, db_url, queue)
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    async with build_worker(client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        r = await http.post("/api/events", headers={"Authorization": f"Bearer {token}", "traceparent": traceparent},
                            json={"id": "t-1", "type": "custom.traced", "customer": {"external_id": "traced-1"}})
        assert r.status_code == 202 and len(r.json()["started"]) == 1, r.text

        def sent() -> int | None:
            with session_factory(db_url)() as db:
                return db.scalar(select(models.Message.id).where(models.Message.flow_id == "traced"))

        await until(sent, "the traced journey's message", timeout=10)
        await asyncio.sleep(0.3)  # the worker's spans end when its tasks complete
    ours = [s for s in spans.get_finished_spans() if s.context is not None and f"{s.context.trace_id:032x}" == trace_id]
    names = {s.name for s in ours}
    assert "POST /api/events" in names, names
    assert "route event" in names, names
    assert any(n.endswith("Workflow:Journey") and "Start" in n for n in names), names
    assert "RunWorkflow:Journey" in names, names
    assert "RunActivity:node:action.send_message" in names, names
    request = next(s for s in ours if s.name == "POST /api/events")
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 202
