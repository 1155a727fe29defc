"""Interpreter overhead: journeys/s of a compiled flow run by the interpreter vs a hand-written workflow.

The flow is trigger.event → action.send_message (dry-run) → action.tag → logic.condition (on the
customer's tags) → action.send_message. It is published through the engine's flow service and run
by :class:`engine.interpreter.JourneyWorkflow`; the baseline (:mod:`bench.handwritten`) does the same
steps with the same activities. Both run on one worker (the engine's ``build_worker``), on the same
dev server, in the same run; each batch starts N journeys at once (``BENCH_JOURNEYS``, 100 × ``BENCH_SCALE``;
fresh customers each batch) and ends when the last one has completed. ``BENCH_ROUNDS`` (3) batches of each
run in alternating order (A B, B A, A B), after a small warm-up batch of each; the median rate counts.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    FailureCounter,
    Report,
    Row,
    Stack,
    Stopwatch,
    at_least,
    counting_failures,
    env_int,
    flow_document,
    median,
    publish,
    running_worker,
    sized,
)
from bench.handwritten import TAG, WORKFLOW_NAME, HandWrittenJourney

TARGET = 0.95  # issue 14: the interpreter runs at ≥ 0.95× the hand-written workflow
WARM_UP = 10
FLOW_ID = "bench-four-steps"


def flow() -> dict[str, Any]:
    return flow_document(
        FLOW_ID,
        [("start", "trigger.event", {"event": "wecom.contact_added"}),
         ("hello", "action.send_message", {"channel": "dry-run", "template": "你好 {{ customer.name }}"}),
         ("tag", "action.tag", {"add": [TAG]}),
         ("is_tagged", "logic.condition", {"expr": f"'{TAG}' in customer.tags"}),
         ("thanks", "action.send_message", {"channel": "dry-run", "template": "谢谢，{{ customer.name }}"})],
        [("start", "out", "hello"), ("hello", "out", "tag"), ("tag", "out", "is_tagged"),
         ("is_tagged", "yes", "thanks")],
    )


def make_customers(database_url: str, count: int, batch: str) -> list[str]:
    """``count`` new customers, created through identity resolution like events create them."""
    from engine.customers import resolve
    from engine.db.session import transaction

    with transaction(database_url) as db:
        return [resolve(db, {"external_id": f"{batch}-{i}"}, name=f"客户{i}") for i in range(count)]


async def run_batch(stack: Stack, database_url: str, compiled: dict[str, Any], workflow: str, batch: str,
                    size: int) -> float:
    """Start ``size`` journeys at once and wait for all; returns journeys per second."""
    from engine.db import models
    from engine.db.session import session_factory
    from engine.runtime import JourneyInput

    customers = await asyncio.to_thread(make_customers, database_url, size, batch)
    now = datetime.now(UTC).isoformat()
    client = stack.client

    async def one(i: int, customer_id: str) -> dict[str, Any]:
        wid = f"bench/{batch}/{i}"
        entry = {"id": f"bench:{wid}", "type": "wecom.contact_added", "source": "bench",
                 "customer_id": customer_id, "occurred_at": now, "payload": {}}
        handle = await client.start_workflow(workflow, JourneyInput(flow=compiled, customer_id=customer_id,
                                                                    entry_event=entry),
                                             id=wid, task_queue=stack.task_queue)
        result: dict[str, Any] = await handle.result()
        return result

    watch = Stopwatch()
    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(customers)))
    elapsed = watch.elapsed()
    bad = [r for r in results if r.get("status") != "completed" or r.get("node") != "thanks"]
    if bad:
        raise RuntimeError(f"{workflow}: {len(bad)} journeys did not reach 'thanks': {bad[0]}")
    with session_factory(database_url)() as db:
        sent = db.scalar(select(func.count()).select_from(models.Message)
                         .where(models.Message.workflow_id.like(f"bench/{batch}/%")))
    if sent != 2 * size:
        raise RuntimeError(f"{workflow}: {sent} messages recorded for {size} journeys, expected {2 * size}")
    return size / elapsed


async def run(stack: Stack) -> Report:
    from engine.runtime import JOURNEY_WORKFLOW

    size = sized("BENCH_JOURNEYS", 100)
    rounds = env_int("BENCH_ROUNDS", 3)
    report = Report("interpreter")
    database_url = stack.database("interpreter")
    compiled = publish(database_url, flow())
    rates: dict[str, list[float]] = {JOURNEY_WORKFLOW: [], WORKFLOW_NAME: []}
    failures = {name: FailureCounter() for name in rates}
    async with running_worker(stack, database_url, extra_workflows=[HandWrittenJourney]):
        # warm-up: the sandbox loads each workflow module once, connections and caches fill
        for name in rates:
            await run_batch(stack, database_url, compiled, name, f"warm-{name}", min(size, WARM_UP))
        order = [JOURNEY_WORKFLOW, WORKFLOW_NAME]
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                with counting_failures() as counter:
                    rates[name].append(await run_batch(stack, database_url, compiled, name, f"r{r}-{name}", size))
                failures[name].count += counter.count
                failures[name].first = failures[name].first or counter.first
    interp, hand = median(rates[JOURNEY_WORKFLOW]), median(rates[WORKFLOW_NAME])
    ratio = interp / hand
    report.rows += [
        Row("interpreter: compiled 4-step flow", f"{interp:.1f} journeys/s"),
        Row("baseline: hand-written workflow, same steps", f"{hand:.1f} journeys/s"),
        Row("interpreter overhead (compiled ÷ hand-written)", f"{ratio:.2f}×", f"≥ {TARGET:.2f}×",
            at_least(ratio, TARGET)),
    ]
    report.notes.append(
        f"interpreter: {size} journeys started at once per batch, {rounds} batches of each in alternating order; "
        f"per batch (journeys/s): compiled {', '.join(f'{x:.1f}' for x in rates[JOURNEY_WORKFLOW])}; "
        f"hand-written {', '.join(f'{x:.1f}' for x in rates[WORKFLOW_NAME])}; action attempts that failed and were "
        f"retried: compiled {failures[JOURNEY_WORKFLOW].summary()}, hand-written {failures[WORKFLOW_NAME].summary()}")
    return report
