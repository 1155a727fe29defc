"""The JSON-over-HTTPS call both WeCom and WeChat server APIs share, with the token, the limiter and
the error mapping in one place.

A call: take a token from the rate limiter → add ``access_token`` to the query → send → read the JSON
answer → ``errcode`` 0 is success; an invalid/expired-token errcode invalidates that token and the
call is made once more with a fresh one; anything else becomes :class:`ApiRetryable` or
:class:`ApiRejected` (see ``api_errors``). Transport failures map the same way: a connect failure or
a 5xx is retryable, a read timeout is retryable with ``outcome_unknown``.

Nothing here logs or raises a URL, a secret or a token: the query string carries the token (and the
secret, for WeCom's gettoken).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx

from connectors.wecom.api_errors import ApiError, ApiRejected, ApiRetryable
from connectors.wecom.ratelimit import TokenBucket
from connectors.wecom.tokens import AccessTokenCache
from wording import Msg


class _Closeable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closeable)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
#: the longest a call waits for the client-side limiter before giving up (retryable)
DEFAULT_MAX_WAIT = 5.0


class RecentResults:
    """A small thread-safe LRU of ``key → provider id``: a delivery retried with the same idempotency
    key (the activity's completion was lost) gets the first answer back instead of a second send."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class PlatformClient:
    """Base of :class:`~connectors.wecom.client.WeComClient` and the WeChat OA client."""

    platform: ClassVar[str] = "platform"
    retryable_error: ClassVar[type[ApiRetryable]] = ApiRetryable
    rejected_error: ClassVar[type[ApiRejected]] = ApiRejected
    #: errcodes meaning "fetch a new access token and try once more"
    token_errcodes: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, api_base: str, *, rate_per_second: float = 10.0, burst: float | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_wait: float = DEFAULT_MAX_WAIT,
                 http: httpx.Client | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not api_base.startswith(("https://", "http://")):
            raise ValueError(Msg("api_base must be an http(s) URL, got %(api_base)s", api_base=repr(api_base)))
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.max_wait = max_wait
        self.limiter = TokenBucket(rate_per_second, burst, clock=clock, sleep=sleep)
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)
        self.delivered = RecentResults()
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": "Tideflow"})

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # -- subclasses ---------------------------------------------------------------------------------

    def _fetch_token(self, timeout: float | None = None) -> tuple[str, float]:
        raise NotImplementedError

    def error_for(self, api: str, errcode: int, errmsg: str) -> ApiError:
        """The exception for a non-zero errcode."""
        return self.rejected_error(Msg("%(platform)s %(api)s answered errcode %(errcode)s (%(errmsg)s)",
                                       platform=self.platform, api=api, errcode=errcode, errmsg=errmsg), api=api,
                                   errcode=errcode, errmsg=errmsg)

    def token_rejected(self, token: str) -> None:
        """Hook: the platform called ``token`` invalid or expired (before it is fetched again)."""
        self.tokens.invalidate(token)

    # -- calls --------------------------------------------------------------------------------------

    def call(self, method: str, path: str, api: str, *, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, wait: float | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """An authenticated API call; the answer's JSON object when ``errcode`` is 0."""
        token = self.tokens.get(timeout)
        data = self.request(method, path, api, params={**(params or {}), "access_token": token}, body=body,
                            wait=wait, timeout=timeout)
        code = errcode_of(data)
        if code in self.token_errcodes:
            log.info("%s %s: access token rejected (errcode %s); fetching a new one", self.platform, api, code)
            self.token_rejected(token)
            token = self.tokens.get(timeout)
            data = self.request(method, path, api, params={**(params or {}), "access_token": token}, body=body,
                                wait=wait, timeout=timeout)
            code = errcode_of(data)
        if code != 0:
            raise self.error_for(api, code, str(data.get("errmsg") or ""))
        return data

    def request(self, method: str, path: str, api: str, *, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None, wait: float | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        """One HTTP exchange (no token handling): the answer's JSON object, errcode not yet checked."""
        limit = self.max_wait if wait is None else wait
        if not self.limiter.acquire(timeout=limit):
            raise self.retryable_error(
                Msg("%(platform)s %(api)s: the client-side rate limit (%(rate)s/s) would delay this call more than "
                    "%(limit)ss; retry later", platform=self.platform, api=api, rate=format(self.limiter.rate, 'g'),
                    limit=format(limit, 'g')), api=api, retry_after=1 / self.limiter.rate)
        try:
            response = self._http.request(method, f"{self.api_base}{path}", params=dict(params or {}),
                                          json=dict(body) if body is not None else None,
                                          timeout=timeout if timeout is not None else self.timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise self.retryable_error(Msg("%(platform)s %(api)s: cannot connect to %(api_base)s (%(name)s)",
                                           platform=self.platform, api=api, api_base=self.api_base,
                                           name=type(exc).__name__), api=api) from None
        except httpx.TimeoutException as exc:
            raise self.retryable_error(Msg("%(platform)s %(api)s: no answer within the timeout (%(name)s); the "
                                           "request may have been carried out", platform=self.platform, api=api,
                                           name=type(exc).__name__), api=api,
                                       outcome_unknown=True) from None
        except httpx.HTTPError as exc:
            raise self.retryable_error(Msg("%(platform)s %(api)s: transport error (%(name)s)", platform=self.platform,
                                           api=api, name=type(exc).__name__), api=api,
                                       outcome_unknown=True) from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise self.retryable_error(Msg("%(platform)s %(api)s: HTTP %(status)s from %(api_base)s; retry later",
                                           platform=self.platform, api=api, status=status, api_base=self.api_base),
                                       api=api, outcome_unknown=status != 429)
        if status != 200:
            raise self.rejected_error(Msg("%(platform)s %(api)s: HTTP %(status)s from %(api_base)s: is api_base "
                                          "right?", platform=self.platform, api=api, status=status,
                                          api_base=self.api_base),
                                      api=api)
        try:
            data = response.json()
        except ValueError:
            raise self.retryable_error(Msg("%(platform)s %(api)s: the answer is not JSON (a proxy or gateway page?)",
                                           platform=self.platform, api=api),
                                       api=api, outcome_unknown=True) from None
        if not isinstance(data, dict):
            raise self.rejected_error(Msg("%(platform)s %(api)s: the answer is JSON but not an object",
                                          platform=self.platform, api=api), api=api)
        return data


def errcode_of(data: Mapping[str, Any]) -> int:
    """``errcode`` as an int (absent = 0, the way WeChat's token endpoint answers success)."""
    value = data.get("errcode", 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


class SharedClients(Generic[C]):
    """One client per account per process (one token cache, one rate limiter for every thread);
    a changed secret or rate replaces it. Used by the WeCom and WeChat OA connectors alike."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], tuple[str, C]] = {}
        self._lock = threading.Lock()

    def get(self, api_base: str, account: str, secret: str, rate_per_second: float,
            make: Callable[[], C]) -> C:
        fingerprint = hashlib.sha256(f"{secret}\x1f{rate_per_second}".encode()).hexdigest()
        key = (api_base.rstrip("/"), account)
        with self._lock:
            found = self._clients.get(key)
            if found is not None and found[0] == fingerprint:
                return found[1]
            client = make()
            self._clients[key] = (fingerprint, client)
        if found is not None:
            found[1].close()
        return client

    def reset(self) -> None:
        """Close and forget every shared client (tests; a reconfiguration)."""
        with self._lock:
            clients = [c for _, c in self._clients.values()]
            self._clients.clear()
        for client in clients:
            client.close()
