"""Event → first action latency on the embedded stack.

The designer app runs in this process under uvicorn on a free port, beside the engine's worker and
the Temporal dev server. A flow ``trigger.event → action.send_message`` (dry-run) is published over
the API; then M events (``BENCH_EVENTS``, 200) are POSTed to ``/api/events`` one after the other, each
for a new customer, waiting for each journey's message before sending the next. Latency is from the
moment the request starts to the commit of the action: the ``created_at`` of its ledger row (same
transaction as the message, wall clock at insert: the message row's own ``created_at`` is the journey's
clock when the action was scheduled, so it would leave the activity's own time out). Also reported:
where the time goes (request start → event row → action committed) and when the 202 response came.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from temporalio.client import Client

from bench.common import Report, Row, Stack, at_most, flow_document, free_port, percentile, running_worker, sized
from engine.db.models import utcnow

TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
WARM_UP = 10
FLOW_ID = "bench-first-action"


def flow() -> dict[str, Any]:
    return flow_document(
        FLOW_ID,
        [("start", "trigger.event", {"event": "wecom.contact_added"}),
         ("hello", "action.send_message", {"channel": "dry-run", "template": "你好 {{ customer.name }}，欢迎！"})],
        [("start", "out", "hello")],
    )


def _token(database_url: str) -> str:
    from engine import auth
    from engine.db.session import transaction

    with transaction(database_url) as db:
        user = auth.create_user(db, "bench-admin", secrets.token_urlsafe(24), "admin")
        return auth.create_token(db, user, "bench")


@contextlib.asynccontextmanager
async def serving(stack: Stack, database_url: str) -> AsyncIterator[str]:
    """The designer app under uvicorn, in this process and event loop; yields its base URL."""
    import uvicorn

    from designer.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(database_url, client=stack.client), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.025)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _action_done_at(database_url: str, key: str) -> datetime | None:
    """When the action under ``key`` committed: its ledger row's ``created_at`` (stamped at insert, in the same
    transaction as the message row), once the message row is there; None before that."""
    from engine.db import models
    from engine.db.session import session_factory

    with session_factory(database_url)() as db:
        if db.scalar(select(models.Message.id).where(models.Message.idempotency_key == key)) is None:
            return None
        return db.scalar(select(models.LedgerEntry.created_at).where(models.LedgerEntry.key == key)) or utcnow()


def _stored_at(database_url: str, source: str, external_id: str) -> datetime:
    from engine.db import models
    from engine.db.session import session_factory

    with session_factory(database_url)() as db:
        found = db.scalar(select(models.EventRecord.received_at).where(models.EventRecord.source == source,
                                                                       models.EventRecord.external_id == external_id))
    if found is None:
        raise RuntimeError(f"event {source}:{external_id} was not stored")
    return found


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


@dataclass
class Sample:
    """The wall-clock moments of one event's way to its first action."""

    workflow_id: str
    started: datetime  # the request starts
    stored: datetime  # the event row is inserted
    answered: datetime  # the 202 response has arrived
    done: datetime  # the action has committed
    #: from the journey's Temporal history: workflow started, first workflow task started / completed,
    #: the action's activity task scheduled / started
    history: dict[str, datetime] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return _ms(self.done, self.started)


async def _one(http: httpx.AsyncClient, database_url: str, i: int, batch: str) -> Sample:
    event_id = f"{batch}-{i}"
    body: dict[str, Any] = {"id": event_id, "type": "wecom.contact_added", "source": "bench",
                            "customer": {"external_id": event_id}, "profile": {"name": f"客户{i}"}}
    started = datetime.now(UTC)
    response = await http.post("/api/events", json=body)
    answered = datetime.now(UTC)
    if response.status_code != 202:
        raise RuntimeError(f"POST /api/events → {response.status_code}: {response.text[:500]}")
    result = response.json()
    if result.get("routing") != "done" or len(result.get("started") or []) != 1:
        raise RuntimeError(f"event {event_id} did not start one journey: {result}")
    workflow_id = result["started"][0]
    key = f"{workflow_id}/hello/1"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (done := await asyncio.to_thread(_action_done_at, database_url, key)) is None:
        if loop.time() > deadline:
            raise RuntimeError(f"no message {key} within 30 s")
        await asyncio.sleep(0.002)
    stored = await asyncio.to_thread(_stored_at, database_url, "bench", event_id)
    return Sample(workflow_id, started, stored, answered, done)


async def _read_history(client: Client, sample: Sample) -> None:
    """The first occurrence of the events that mark the journey's way to its first activity."""
    from temporalio.api.enums.v1 import EventType

    wanted = {EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow started",
              EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "task started",
              EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "task completed",
              EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity scheduled",
              EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity started"}
    history = await client.get_workflow_handle(sample.workflow_id).fetch_history()
    for event in history.events:
        name = wanted.get(event.event_type)
        if name and name not in sample.history:
            sample.history[name] = event.event_time.ToDatetime(tzinfo=UTC)


def _parts(samples: list[Sample]) -> str:
    """Median milliseconds of each leg of the way, in order."""
    legs: list[tuple[str, Callable[[Sample], float]]] = [
        ("HTTP in → event row", lambda s: _ms(s.stored, s.started)),
        ("routing → workflow started", lambda s: _ms(s.history["workflow started"], s.stored)),
        ("→ first workflow task picked up", lambda s: _ms(s.history["task started"], s.history["workflow started"])),
        ("interpreter's first task", lambda s: _ms(s.history["task completed"], s.history["task started"])),
        ("→ activity picked up", lambda s: _ms(s.history["activity started"], s.history["activity scheduled"])),
        ("action runs and commits", lambda s: _ms(s.done, s.history["activity started"])),
    ]
    complete = [s for s in samples if len(s.history) == 5]
    if not complete:
        return "no journey history could be read"
    return ", ".join(f"{name} {percentile([leg(s) for s in complete], 50):.1f}" for name, leg in legs)


async def run(stack: Stack) -> Report:
    count = sized("BENCH_EVENTS", 200)
    database_url = stack.database("latency")
    token = _token(database_url)
    report = Report("latency")
    async with running_worker(stack, database_url), serving(stack, database_url) as base, httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for path, body in (("/api/flows", flow()), (f"/api/flows/{FLOW_ID}/publish", None)):
            response = await http.post(path, json=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path} → {response.status_code}: {response.text[:500]}")
        for i in range(WARM_UP):
            await _one(http, database_url, i, "warm")
        samples = [await _one(http, database_url, i, "lat") for i in range(count)]
    for sample in samples:
        await _read_history(stack.client, sample)
    first = [s.latency for s in samples]
    answered = [_ms(s.answered, s.started) for s in samples]
    p50, p99 = percentile(first, 50), percentile(first, 99)
    report.rows += [
        Row("event → first action, p50", f"{p50:.1f} ms", f"≤ {TARGET_P50_MS:.0f} ms", at_most(p50, TARGET_P50_MS)),
        Row("event → first action, p99", f"{p99:.1f} ms", f"≤ {TARGET_P99_MS:.0f} ms", at_most(p99, TARGET_P99_MS)),
    ]
    report.notes.append(
        f"latency: {count} events sent one at a time over HTTP (after {WARM_UP} warm-up), each for a new customer; "
        f"event → action committed: min {min(first):.1f} / p90 {percentile(first, 90):.1f} / max {max(first):.1f} ms; "
        f"the 202 response came after p50 {percentile(answered, 50):.1f} ms (p99 {percentile(answered, 99):.1f} ms)")
    report.notes.append(f"latency, where the time goes (p50 of each leg, ms): {_parts(samples)}")
    return report
