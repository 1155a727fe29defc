"""Youzan Cloud (有赞云) open API client: the shop's access token and ``youzan.trade.get``.

* Token (自用型应用, silent authorisation): ``POST {api_base}/auth/token`` with JSON
  ``{"client_id", "client_secret", "authorize_type": "silent", "grant_id": <kdt_id>, "refresh": false}``
  → ``{"success": true, "code": 200, "data": {"access_token", "expires", "scope", "authority_id"}}``.
  ``expires`` is the expiry as a millisecond timestamp (a token lives 7 days). One token per shop
  (``kdt_id``) is cached until shortly before it expires (:class:`connectors.wecom.tokens.AccessTokenCache`).
* API: ``POST {api_base}/api/<api>/<version>?access_token=…`` with the parameters as a JSON body →
  ``{"success": true, "code": 200, "data": {…}}``; a gateway refusal is ``{"gw_err_resp": {"err_code",
  "err_msg"}}`` and a business error ``{"success": false, "code", "message"}``.
* ``youzan.trade.get`` 4.0.2 with ``{"tid"}`` → ``data.full_order_info`` (the same trade shape the
  ``trade_TradeCreate`` / ``trade_TradePaid`` pushes carry). The connector calls it when a push is thin
  (shipping, completion, closing and every refund message carry only ids), to learn the buyer.

A gateway answer naming an invalid or expired token (err_code 4201 / 4202) makes the client fetch a
new token and try once more. Nothing here logs or raises the client_secret or a token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from connectors.shop_http import OwnedHttp, json_object
from connectors.wecom.tokens import AccessTokenCache
from connectors.wecom.transport import SharedClients
from wording import Msg

log = logging.getLogger(__name__)
DEFAULT_API_BASE: Final = "https://open.youzanyun.com"
TRADE_GET: Final = ("youzan.trade.get", "4.0.2")
TOKEN_ERRCODES: Final = frozenset({4201, 4202})
USER_AGENT: Final = "Tideflow/0.1"


class YouzanApiError(Exception):
    """A Youzan API call failed. ``retryable``: whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


def _code(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class YouzanClient(OwnedHttp):
    """One Youzan Cloud app (client_id/client_secret): a token cache per shop and the API calls."""

    def __init__(self, client_id: str, client_secret: str, *, api_base: str = DEFAULT_API_BASE,
                 timeout: float = 5.0, http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not client_id or not client_secret:
            raise ValueError(Msg("client_id and client_secret must not be empty (有赞云控制台 › 应用 › 应用凭证)"))
        self.client_id = client_id
        self._secret = client_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self._tokens: dict[str, AccessTokenCache] = {}
        self._lock = threading.Lock()
        self._use_http(http, timeout, USER_AGENT)

    def __repr__(self) -> str:
        return f"YouzanClient(client_id={self.client_id!r}, api_base={self.api_base!r})"

    # -- transport --------------------------------------------------------------------------------

    def _post(self, path: str, what: str, body: Mapping[str, Any], params: Mapping[str, str] | None = None
              ) -> dict[str, Any]:
        return json_object(lambda: self._http.post(f"{self.api_base}{path}", json=dict(body),
                                                   params=dict(params or {}), timeout=self.timeout),
                           timeout=self.timeout, where=self.api_base, setting="api_base",
                           fail=lambda message, retryable: YouzanApiError(Msg("Youzan %(what)s: %(message)s",
                                                                              what=what, message=message),
                                                                          retryable=retryable))

    @staticmethod
    def _error(data: dict[str, Any]) -> tuple[int | None, str] | None:
        """``(code, message)`` of an error answer, None for success."""
        gateway = data.get("gw_err_resp")
        if isinstance(gateway, dict):
            return _code(gateway.get("err_code")), str(gateway.get("err_msg") or "")
        legacy = data.get("error_response")
        if isinstance(legacy, dict):
            return _code(legacy.get("code")), str(legacy.get("msg") or legacy.get("message") or "")
        if data.get("success") is False or _code(data.get("code")) not in (None, 200):
            return _code(data.get("code")), str(data.get("message") or "")
        return None

    # -- token ------------------------------------------------------------------------------------

    def _fetch_token(self, kdt_id: str) -> tuple[str, float]:
        data = self._post("/auth/token", "auth/token", {
            "client_id": self.client_id, "client_secret": self._secret, "authorize_type": "silent",
            "grant_id": kdt_id, "refresh": False})
        problem = self._error(data)
        if problem is not None:
            code, message = problem
            raise YouzanApiError(Msg("Youzan auth/token refused a token for shop %(kdt_id)s (code %(code)s: "
                                     "%(message)s): check the client_id/client_secret and that the shop authorised "
                                     "this app", kdt_id=kdt_id, code=code, message=message),
                                 code=code)
        token_data: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
        token = token_data.get("access_token")
        if not isinstance(token, str) or not token:
            raise YouzanApiError(Msg("Youzan auth/token answered without an access_token"), retryable=True)
        expires: Any = token_data.get("expires") or token_data.get("expires_in")
        try:
            value = float(expires)
        except (TypeError, ValueError):
            return token, 3600.0
        if value > 10**11:  # a millisecond timestamp
            return token, max(0.0, value / 1000 - time.time())
        if value > 10**9:  # a second timestamp
            return token, max(0.0, value - time.time())
        return token, value

    def token_cache(self, kdt_id: str) -> AccessTokenCache:
        with self._lock:
            cache = self._tokens.get(kdt_id)
            if cache is None:
                cache = AccessTokenCache(lambda _timeout: self._fetch_token(kdt_id), clock=self._clock)
                self._tokens[kdt_id] = cache
            return cache

    # -- API --------------------------------------------------------------------------------------

    def call(self, kdt_id: str, api: str, version: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One API call for shop ``kdt_id``; the answer's ``data``."""
        tokens = self.token_cache(kdt_id)
        for attempt in (1, 2):
            token = tokens.get()
            data = self._post(f"/api/{api}/{version}", api, params, {"access_token": token})
            problem = self._error(data)
            if problem is None:
                result = data.get("data")
                return result if isinstance(result, dict) else {}
            code, message = problem
            if code in TOKEN_ERRCODES and attempt == 1:
                log.info("Youzan %s: the access token was refused (code %s); fetching a new one", api, code)
                tokens.invalidate(token)
                continue
            raise YouzanApiError(Msg("Youzan %(api)s answered code %(code)s: %(value)s", api=api, code=code,
                                     value=message or 'no message'), code=code,
                                 retryable=code is not None and code >= 5000)
        raise AssertionError("unreachable")

    def get_trade(self, kdt_id: str, tid: str) -> dict[str, Any]:
        """``youzan.trade.get``: the trade's ``full_order_info``."""
        data = self.call(kdt_id, *TRADE_GET, {"tid": tid})
        info = data.get("full_order_info")
        if not isinstance(info, dict) or not isinstance(info.get("order_info"), dict):
            raise YouzanApiError(Msg("Youzan youzan.trade.get found no trade %(tid)s in shop %(kdt_id)s (Youzan says "
                                     "to retry: a new trade can take ~30 s to show)", tid=tid, kdt_id=kdt_id),
                                 retryable=True)
        return info


_shared: SharedClients[YouzanClient] = SharedClients()


def shared_client(client_id: str, client_secret: str, api_base: str = DEFAULT_API_BASE,
                  timeout: float = 5.0) -> YouzanClient:
    """One client per app and API base in the process (one token cache for every thread)."""
    return _shared.get(api_base, client_id, client_secret, timeout,
                       lambda: YouzanClient(client_id, client_secret, api_base=api_base, timeout=timeout))
