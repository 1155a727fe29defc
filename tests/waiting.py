"""Waiting in tests for something another task, thread or process does: poll a check until it answers.

- :func:`until` (async): for tests on an event loop (a worker, a Temporal test server, an ASGI app in the
  same loop). ``check`` may be a plain function or return an awaitable (an ``async def``, or a lambda
  around ``asyncio.to_thread`` for a check that must not block the loop).
- :func:`wait_until` (sync): for tests that drive subprocesses (tests/e2e/stack.py) or a browser.

Both return the first truthy answer and fail with an :class:`AssertionError` that names what was awaited
and the last answer; the timeout only keeps a broken build from hanging.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


def _timed_out(what: str, timeout: float, last: Any) -> AssertionError:
    shown = repr(last)
    if len(shown) > 300:
        shown = shown[:300] + "…"
    return AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {shown})")


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Call ``check`` (awaiting its answer when it is awaitable) until the answer is truthy; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy; return that, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(every)
