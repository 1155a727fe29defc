"""Temporal and a worker for browser tests, which cannot run them on the main thread's event loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")


class Temporal:
    """Temporal's time-skipping server and Tideflow's worker, on an event loop of their own in a thread (the
    browser tests' main thread belongs to Playwright)."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="temporal", daemon=True)
        self.thread.start()
        self.queue = f"wf-browser-{uuid.uuid4().hex[:6]}"
        self.env: Any = self.run(self._start(database_url))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, database_url: str) -> Any:
        from temporalio.testing import WorkflowEnvironment

        from engine.temporal_bin import test_server_path
        from engine.worker import build_worker

        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
        self.worker = build_worker(env.client, self.queue, database_url)
        self.running = asyncio.ensure_future(self.worker.run())
        return env

    def skip(self, duration: timedelta) -> None:
        self.run(self.env.sleep(duration))

    def stop(self) -> None:
        async def _stop() -> None:
            await self.worker.shutdown()
            await self.env.shutdown()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
