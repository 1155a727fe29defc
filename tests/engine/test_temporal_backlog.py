"""Admission reads Temporal's task queue backlog every quarter second (``engine.pipeline.task_queue_backlog``).
The dev servers Tideflow starts answer it fresh (``engine.temporal_bin.DEV_SERVER_DYNAMIC_CONFIG``); a stock dev
server answers from a cache kept 5 s, which showed an empty queue at the onset of an overload and a backlog
long drained after it."""

from __future__ import annotations

import uuid
from typing import Any

from engine.pipeline import task_queue_backlog
from tests.waiting import until


async def test_the_backlog_admission_reads_follows_new_tasks_within_the_sample(dev_env: Any) -> None:
    client = dev_env.client
    queue = f"backlog-{uuid.uuid4().hex[:8]}"
    handles = []

    async def start(count: int) -> None:  # no worker polls this queue: each workflow's first task waits in it
        for _ in range(count):
            handles.append(await client.start_workflow("NoSuchWorkflow", id=f"{queue}-{len(handles)}",
                                                       task_queue=queue))

    async def waiting() -> int:
        return (await task_queue_backlog(client, queue))[1]

    try:
        await start(3)
        await until(lambda: _is(waiting(), 3), "3 tasks waiting", timeout=10)
        # read just now, so a 5 s cache would answer 3 for seconds yet; the tuned server has 7 within 2 s
        await start(4)
        await until(lambda: _is(waiting(), 7), "7 tasks waiting, within 2 s of the last start", timeout=2)
    finally:
        for handle in handles:
            await handle.terminate("test over")


async def _is(count: Any, expected: int) -> bool:
    return bool(await count == expected)
