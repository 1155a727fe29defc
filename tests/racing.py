"""Racing threads in tests: start the same attempt on many threads at once to show a lock or a unique key holds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def race(count: int, attempt: Callable[[int], T]) -> list[T | Exception]:
    """Run ``attempt(0..count-1)`` in ``count`` threads released together; each one's result or exception."""
    barrier = threading.Barrier(count)

    def one(i: int) -> T | Exception:
        barrier.wait(timeout=60)
        try:
            return attempt(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))
