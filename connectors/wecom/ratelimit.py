"""A client-side token bucket, so Tideflow stays under the platforms' API frequency limits.

WeCom answers ``45009`` (接口调用超过限制) and WeChat ``45009`` / ``45011`` once an account calls an
API too often; a burst of journeys (a broadcast, a busy morning) must slow down here rather than
collect those errors. The bucket holds ``capacity`` tokens and refills at ``rate`` per second; each
request takes one. A caller that cannot get a token within its ``timeout`` is told so at once (no
token is taken), so an activity never sleeps past its own deadline.

Thread-safe: activities run in a thread pool, and one bucket is shared by every thread that talks to
the same account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wording import Msg


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``capacity``."""

    def __init__(self, rate: float, capacity: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(Msg("rate must be positive requests per second, got %(rate)s", rate=rate))
        self.rate = float(rate)
        self.capacity = float(capacity) if capacity is not None else max(1.0, self.rate)
        if self.capacity < 1:
            raise ValueError(Msg("capacity must be at least 1 token, got %(capacity)s", capacity=self.capacity))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, timeout: float | None = None) -> float | None:
        """Take one token now or in the future: the seconds to wait before using it, or None when that
        would be longer than ``timeout`` (nothing is taken then)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            if timeout is not None and wait > timeout:
                return None
            self._tokens -= 1  # may go negative: later callers queue behind this reservation
            return wait

    def acquire(self, timeout: float | None = None) -> bool:
        """Block until a token is ours (True), or return False at once if that takes over ``timeout``."""
        wait = self.reserve(timeout)
        if wait is None:
            return False
        if wait > 0:
            self._sleep(wait)
        return True
