"""Access-token caching shared by the WeCom and WeChat clients.

Both platforms hand out an ``access_token`` valid ``expires_in`` seconds (7200 today) and limit how
often it may be fetched, so it is fetched once and reused until shortly before it expires. One
thread fetches while the others wait for its result (single flight). When an API answers "invalid /
expired token" (WeCom 40014 / 42001, WeChat 40001 / 40014 / 42001) the caller invalidates exactly the
token it used — a token another thread already replaced is left alone — and fetches again once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: refresh this long before the platform's expiry (at most half the lifetime)
DEFAULT_MARGIN = 300.0


class AccessTokenCache:
    """Holds one account's access token; ``fetch(timeout)`` returns ``(token, expires_in seconds)``."""

    def __init__(self, fetch: Callable[[float | None], tuple[str, float]], *, margin: float = DEFAULT_MARGIN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}(cached={self._token is not None})"

    def get(self, timeout: float | None = None) -> str:
        """The cached token, or a fresh one (fetched within ``timeout`` seconds, when given) when there is
        none or it is about to expire."""
        with self._lock:
            if self._token is not None and self._clock() < self._valid_until:
                return self._token
            token, expires_in = self._fetch(timeout)
            lifetime = max(0.0, float(expires_in))
            self._token = token
            self._valid_until = self._clock() + lifetime - min(self._margin, lifetime / 2)
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (the platform said it is invalid or expired)."""
        with self._lock:
            if self._token == token:
                self._token = None
                self._valid_until = 0.0
