"""抖店 open API client: the shop's access token and ``order.orderDetail``.

Every call is ``POST {api_base}/<method with dots as slashes>`` (``/order/orderDetail``) with the common
parameters in the query — ``app_key``, ``method``, ``v=2``, ``timestamp`` (unix seconds), ``sign_method=
hmac-sha256``, ``sign`` (:func:`connectors.douyin.signing.sign_request` over app_key, method, param_json,
timestamp and v) and ``access_token`` — and ``param_json`` (keys sorted, compact) as the JSON body. The
answer is ``{"code": 10000, "msg": "success", "sub_code", "sub_msg", "log_id", "data": {…}}`` (older
gateways: ``{"err_no": 0, "message", "data"}``).

* Token (自用型应用): method ``token.create`` with ``{"code": "", "grant_type": "authorization_self",
  "shop_id"}`` (no access_token) → ``data.access_token``, ``data.expires_in`` seconds. Cached until
  shortly before it expires; a ``sub_code`` of ``isv.access-token-*`` (expired / unknown token) fetches
  a new one once.
* ``order.orderDetail`` with ``{"shop_order_id"}`` → ``data.shop_order_detail``: amounts in fen, the
  buyer's ``doudian_open_id``, the SKU lines. The connector calls it for every push message, which never
  names the buyer.

The app_secret and tokens are never logged or put in an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from connectors.douyin.signing import API_VERSION, marshal_param_json, sign_request
from connectors.shop_http import OwnedHttp, json_object
from connectors.wecom.tokens import AccessTokenCache
from connectors.wecom.transport import SharedClients
from wording import Msg

log = logging.getLogger(__name__)
DEFAULT_API_BASE: Final = "https://openapi-fxg.jinritemai.com"
SUCCESS_CODE: Final = 10000
USER_AGENT: Final = "Tideflow/0.1"


class DouyinApiError(Exception):
    """A 抖店 API call failed. ``retryable``: whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool = False, code: int | None = None, sub_code: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.sub_code = sub_code


class DouyinClient(OwnedHttp):
    """One 抖店 app (app_key/app_secret) acting for one shop (自用型, ``shop_id``)."""

    def __init__(self, app_key: str, app_secret: str, shop_id: str, *, api_base: str = DEFAULT_API_BASE,
                 timeout: float = 5.0, http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        if not app_key or not app_secret or not shop_id:
            raise ValueError(Msg("app_key, app_secret and shop_id must not be empty (抖店开放平台 › 应用 › 应用凭证)"))
        self.app_key = app_key
        self._secret = app_secret
        self.shop_id = shop_id
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._wall = wall
        self.tokens = AccessTokenCache(lambda _timeout: self._fetch_token(), clock=clock)
        self._use_http(http, timeout, USER_AGENT)

    def __repr__(self) -> str:
        return f"DouyinClient(app_key={self.app_key!r}, shop_id={self.shop_id!r})"

    def request(self, method: str, params: Mapping[str, Any], access_token: str | None) -> dict[str, Any]:
        """One signed call; the whole answer (its code not yet checked)."""
        param_json = marshal_param_json(params)
        timestamp = str(int(self._wall()))
        query = {"app_key": self.app_key, "method": method, "v": API_VERSION, "timestamp": timestamp,
                 "sign_method": "hmac-sha256",
                 "sign": sign_request(app_key=self.app_key, app_secret=self._secret, method=method,
                                      param_json=param_json, timestamp=timestamp)}
        if access_token is not None:
            query["access_token"] = access_token
        url = f"{self.api_base}/{method.replace('.', '/')}"
        return json_object(lambda: self._http.post(url, params=query, content=param_json.encode("utf-8"),
                                                   headers={"Content-Type": "application/json;charset=UTF-8"},
                                                   timeout=self.timeout),
                           timeout=self.timeout, where=self.api_base, setting="api_base",
                           fail=lambda message, retryable: DouyinApiError(Msg("抖店 %(method)s: %(message)s",
                                                                              method=method, message=message),
                                                                          retryable=retryable))

    @staticmethod
    def _failure(data: dict[str, Any]) -> tuple[int | None, str, str] | None:
        if "err_no" in data and "code" not in data:
            code = data.get("err_no")
            return None if code == 0 else (int(code) if isinstance(code, int) else None, "",
                                           str(data.get("message") or ""))
        code = data.get("code")
        if code == SUCCESS_CODE:
            return None
        return (int(code) if isinstance(code, int) else None, str(data.get("sub_code") or ""),
                str(data.get("sub_msg") or data.get("msg") or ""))

    def _fetch_token(self) -> tuple[str, float]:
        data = self.request("token.create", {"code": "", "grant_type": "authorization_self",
                                             "shop_id": self.shop_id}, None)
        failure = self._failure(data)
        if failure is not None:
            code, sub_code, message = failure
            raise DouyinApiError(Msg("抖店 token.create refused a token for shop %(shop_id)s (code %(code)s "
                                     "%(sub_code)s: %(message)s): check the app_key/app_secret and that the shop "
                                     "authorised the app", shop_id=self.shop_id, code=code, sub_code=sub_code,
                                     message=message),
                                 code=code, sub_code=sub_code, retryable=code is not None and code >= 50000)
        token_data: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
        token = token_data.get("access_token")
        if not isinstance(token, str) or not token:
            raise DouyinApiError(Msg("抖店 token.create answered without an access_token"), retryable=True)
        try:
            lifetime = float(token_data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """An authorised call; the answer's ``data``."""
        for attempt in (1, 2):
            token = self.tokens.get()
            data = self.request(method, params, token)
            failure = self._failure(data)
            if failure is None:
                result = data.get("data")
                return result if isinstance(result, dict) else {}
            code, sub_code, message = failure
            if sub_code.startswith("isv.access-token") and attempt == 1:
                log.info("抖店 %s: the access token was refused (%s); fetching a new one", method, sub_code)
                self.tokens.invalidate(token)
                continue
            raise DouyinApiError(Msg("抖店 %(method)s answered code %(code)s %(sub_code)s: %(value)s", method=method,
                                     code=code, sub_code=sub_code, value=message or 'no message'),
                                 code=code, sub_code=sub_code,
                                 retryable=(code is not None and code >= 50000) or "busy" in sub_code)
        raise AssertionError("unreachable")

    def order_detail(self, order_id: str) -> dict[str, Any]:
        """``order.orderDetail``: the order's ``shop_order_detail``."""
        detail = self.call("order.orderDetail", {"shop_order_id": order_id}).get("shop_order_detail")
        if not isinstance(detail, dict):
            raise DouyinApiError(Msg("抖店 order.orderDetail has no shop_order_detail for order %(order_id)s",
                                     order_id=order_id),
                                 retryable=True)
        return detail


_shared: SharedClients[DouyinClient] = SharedClients()


def shared_client(app_key: str, app_secret: str, shop_id: str, api_base: str = DEFAULT_API_BASE,
                  timeout: float = 5.0) -> DouyinClient:
    """One client per app and shop in the process (one token cache for every thread)."""
    return _shared.get(api_base, f"{app_key}/{shop_id}", app_secret, timeout,
                       lambda: DouyinClient(app_key, app_secret, shop_id, api_base=api_base, timeout=timeout))
