"""Broadcast throughput: a segment flow without waits, to K customers, through the dry-run channel.

The flow is ``trigger.segment`` (audience ``true``, schedule ``once``) → ``action.send_message``
(dry-run). It has no waits, so the engine takes its bulk path: :class:`engine.broadcast.BroadcastWorkflow`
pages the audience and ``broadcast.deliver`` walks each page's customers through the flow with the
same idempotent actions (one ledger row and one message row per customer). K customers
(``BENCH_CUSTOMERS``, 10,000 × ``BENCH_SCALE``; the target is stated for 100,000) are inserted in bulk
first; the broadcast is started the way publishing starts it (``engine.scheduling.sync_flow``) and
timed from the start to the workflow's result. Every message row is counted afterwards.

Baseline, in the same run: the same broadcast to B more customers (``BENCH_BROADCAST_BASELINE``, 1,000 ×
``BENCH_SCALE``) on a database of its own, with ``broadcast.deliver`` walking each page one customer at
a time (``engine.broadcast.run_instant`` per customer: the per-customer path every page took before the
bulk path), so the ratio of the two rates is the bulk path's gain measured under the same load.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

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


def flow(flow_id: str = FLOW_ID) -> dict[str, Any]:
    return flow_document(
        flow_id,
        [("start", "trigger.segment", {"audience": "true", "schedule": "once"}),
         ("promo", "action.send_message", {"channel": "dry-run", "template": "{{ customer.name }}，限时福利来了"})],
        [("start", "out", "promo")],
    )


def _count_messages(database_url: str, flow_id: str = FLOW_ID) -> int:
    from engine.db import models
    from engine.db.session import session_factory

    with session_factory(database_url)() as db:
        return int(db.scalar(select(func.count()).select_from(models.Message)
                             .where(models.Message.flow_id == flow_id)) or 0)


def _one_at_a_time(flow: dict[str, Any], customer_ids: list[str], run_key: str, stats: list[list[Any]],
                   services: Any, heartbeat: Any = None) -> dict[str, str]:
    """The baseline's page walk: ``run_instant`` for one customer after the other."""
    from engine.broadcast import run_instant

    return {cid: run_instant(flow, cid, run_key, stats, services) for cid in customer_ids}


async def _broadcast(stack: Stack, name: str, flow_id: str, size: int) -> tuple[float, float, int]:
    """Insert ``size`` customers, publish the flow, time its broadcast: (seconds, insert seconds, page size)."""
    from engine.scheduling import sync_flow

    database_url = stack.database(name)
    setup = Stopwatch()
    bulk_customers(database_url, size, name[:1])
    inserted = setup.elapsed()
    compiled = publish(database_url, flow(flow_id))
    async with running_worker(stack, database_url):
        watch = Stopwatch()
        await sync_flow(stack.client, compiled, flow_id, stack.task_queue)
        handle = stack.client.get_workflow_handle(f"broadcast/{flow_id}/v{compiled['version']}/once")
        result: dict[str, Any] = await handle.result()
        elapsed = watch.elapsed()
    sent = _count_messages(database_url, flow_id)
    if result.get("customers") != size or sent != size:
        raise RuntimeError(f"broadcast reached {result.get('customers')} customers and recorded {sent} messages; "
                           f"expected {size}")
    return elapsed, inserted, int(compiled["nodes"]["start"]["config"]["batch_size"])


async def run(stack: Stack) -> Report:
    import engine.broadcast

    size = sized("BENCH_CUSTOMERS", 10_000)
    baseline_size = sized("BENCH_BROADCAST_BASELINE", 1_000)
    report = Report("broadcast")
    elapsed, inserted, page = await _broadcast(stack, "broadcast", FLOW_ID, size)
    with mock.patch.object(engine.broadcast, "run_page", _one_at_a_time):
        base_elapsed, _, _ = await _broadcast(stack, "one-at-a-time", f"{FLOW_ID}-baseline", baseline_size)
    rate = size / elapsed
    base_rate = baseline_size / base_elapsed
    report.rows.append(Row(f"broadcast, {size:,} customers, dry-run", f"{rate:.0f} msg/s",
                           f"≥ {TARGET:,.0f} msg/s" + ("" if size == TARGET_SIZE else f" (at {TARGET_SIZE:,})"),
                           at_least(rate, TARGET)))
    report.rows.append(Row(f"baseline: one customer at a time, {baseline_size:,} customers", f"{base_rate:.0f} msg/s"))
    report.rows.append(Row("broadcast ÷ one at a time", f"{rate / base_rate:.1f}×"))
    report.notes.append(f"broadcast: {size:,} customers inserted in {inserted:.1f} s (not timed); "
                        f"{size:,} messages in {elapsed:.1f} s, pages of {page}; baseline (run_instant per "
                        f"customer, same run): {baseline_size:,} messages in {base_elapsed:.1f} s")
    return report
