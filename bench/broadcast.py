"""Broadcast throughput: a segment flow without waits, to K customers, through the dry-run channel.

The flow is ``trigger.segment`` (audience ``true``, schedule ``once``) → ``action.send_message``
(dry-run). It has no waits, so the engine takes its bulk path: :class:`engine.broadcast.BroadcastWorkflow`
pages the audience and ``broadcast.deliver`` walks each page's customers through the flow with the
same idempotent actions (one ledger row and one message row per customer). K customers
(``BENCH_CUSTOMERS``, 10,000 × ``BENCH_SCALE``; the target is stated for 100,000) are inserted in bulk
first; the broadcast is started the way publishing starts it (``engine.scheduling.sync_flow``) and
timed from the start to the workflow's result. Every message row is counted afterwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bench.common import (
    Report,
    Row,
    Stack,
    Stopwatch,
    at_least,
    bulk_customers,
    flow_document,
    publish,
    running_worker,
    sized,
)

TARGET = 2000.0
TARGET_SIZE = 100_000
FLOW_ID = "bench-broadcast"


def flow() -> dict[str, Any]:
    return flow_document(
        FLOW_ID,
        [("start", "trigger.segment", {"audience": "true", "schedule": "once"}),
         ("promo", "action.send_message", {"channel": "dry-run", "template": "{{ customer.name }}，限时福利来了"})],
        [("start", "out", "promo")],
    )


def _count_messages(database_url: str) -> int:
    from engine.db import models
    from engine.db.session import session_factory

    with session_factory(database_url)() as db:
        return int(db.scalar(select(func.count()).select_from(models.Message)
                             .where(models.Message.flow_id == FLOW_ID)) or 0)


async def run(stack: Stack) -> Report:
    from engine.scheduling import sync_flow

    size = sized("BENCH_CUSTOMERS", 10_000)
    database_url = stack.database("broadcast")
    setup = Stopwatch()
    bulk_customers(database_url, size, "b")
    inserted = setup.elapsed()
    compiled = publish(database_url, flow())
    report = Report("broadcast")
    async with running_worker(stack, database_url):
        watch = Stopwatch()
        await sync_flow(stack.client, compiled, FLOW_ID, stack.task_queue)
        handle = stack.client.get_workflow_handle(f"broadcast/{FLOW_ID}/v{compiled['version']}/once")
        result: dict[str, Any] = await handle.result()
        elapsed = watch.elapsed()
    sent = _count_messages(database_url)
    if result.get("customers") != size or sent != size:
        raise RuntimeError(f"broadcast reached {result.get('customers')} customers and recorded {sent} messages; "
                           f"expected {size}")
    rate = size / elapsed
    report.rows.append(Row(f"broadcast, {size:,} customers, dry-run", f"{rate:.0f} msg/s",
                           f"≥ {TARGET:,.0f} msg/s" + ("" if size == TARGET_SIZE else f" (at {TARGET_SIZE:,})"),
                           at_least(rate, TARGET)))
    report.notes.append(f"broadcast: {size:,} customers inserted in {inserted:.1f} s (not timed); "
                        f"{size:,} messages in {elapsed:.1f} s, pages of "
                        f"{compiled['nodes']['start']['config']['batch_size']}")
    return report
