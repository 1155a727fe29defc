"""Shopify Admin REST API client: fetch an order.

``GET https://<shop>.myshopify.com/admin/api/<version>/orders/<id>.json`` with the header
``X-Shopify-Access-Token: <Admin API access token>`` (a custom app's ``shpat_…`` token with the
``read_orders`` scope) → ``{"order": {…}}``, the same order shape the order webhooks carry.

The connector uses it for ``refunds/create`` webhooks, whose payload names the order but not the buyer.
Rate limits: a ``429 Too Many Requests`` carries ``Retry-After`` (seconds); the client waits that long
and tries again while the total wait stays within ``max_wait`` seconds, otherwise it raises a
retryable :class:`ShopifyApiError`. 5xx and transport failures are retryable too; 401/403 (wrong token
or missing scope) and 404 are not. The access token is never logged or put in an error.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import httpx

from connectors.shop_http import OwnedHttp
from wording import Msg

DEFAULT_API_VERSION: Final = "2025-07"
USER_AGENT: Final = "Tideflow/0.1"
MAX_ATTEMPTS: Final = 4


class ShopifyApiError(Exception):
    """An Admin API call failed. ``retryable``: whether the same call may succeed later."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


def retry_after(value: str | None, default: float = 2.0) -> float:
    """Seconds to wait from a ``Retry-After`` header (Shopify sends seconds, e.g. ``2.0``)."""
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:
        return default


class ShopifyAdminClient(OwnedHttp):
    """One shop's Admin API with its access token."""

    def __init__(self, shop_domain: str, access_token: str, *, api_version: str = DEFAULT_API_VERSION,
                 api_base: str = "", timeout: float = 5.0, max_wait: float = 4.0, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not access_token:
            raise ValueError(Msg("the Admin API access token must not be empty (custom app › API credentials)"))
        if not re.fullmatch(r"\d{4}-\d{2}|unstable", api_version):
            raise ValueError(Msg("api_version %(api_version)s is not a Shopify API version like 2025-07",
                                 api_version=repr(api_version)))
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.api_base = (api_base or f"https://{shop_domain}").rstrip("/")
        self.timeout = timeout
        self.max_wait = max_wait
        self._token = access_token
        self._sleep = sleep
        self._use_http(http, timeout, USER_AGENT)

    def __repr__(self) -> str:
        return f"ShopifyAdminClient(shop_domain={self.shop_domain!r}, api_version={self.api_version!r})"

    def get(self, path: str, what: str) -> dict[str, Any]:
        """``GET /admin/api/<version>/<path>``: the JSON answer, waiting out 429s within ``max_wait``."""
        url = f"{self.api_base}/admin/api/{self.api_version}/{path.lstrip('/')}"
        waited = 0.0
        for _attempt in range(MAX_ATTEMPTS):
            try:
                response = self._http.get(url, headers={"X-Shopify-Access-Token": self._token,
                                                        "Accept": "application/json"}, timeout=self.timeout)
            except httpx.TimeoutException as exc:
                raise ShopifyApiError(Msg("Shopify %(what)s: no answer within %(timeout)ss (%(name)s)", what=what,
                                          timeout=format(self.timeout, 'g'), name=type(exc).__name__),
                                      retryable=True) from None
            except httpx.HTTPError as exc:
                raise ShopifyApiError(Msg("Shopify %(what)s: cannot reach %(api_base)s (%(name)s)", what=what,
                                          api_base=self.api_base, name=type(exc).__name__),
                                      retryable=True) from None
            status = response.status_code
            if status == 429:
                pause = retry_after(response.headers.get("Retry-After"))
                if waited + pause > self.max_wait:
                    raise ShopifyApiError(Msg("Shopify %(what)s: rate limited (429, Retry-After %(pause)ss); retry "
                                              "later", what=what, pause=format(pause, 'g')),
                                          retryable=True, status=429)
                self._sleep(pause)
                waited += pause
                continue
            if status >= 500:
                raise ShopifyApiError(Msg("Shopify %(what)s: HTTP %(status)s; retry later", what=what, status=status),
                                      retryable=True, status=status)
            if status in (401, 403):
                raise ShopifyApiError(Msg("Shopify %(what)s: HTTP %(status)s: check the Admin API access token and "
                                          "that the app has the read_orders scope", what=what, status=status),
                                      status=status)
            if status == 404:
                raise ShopifyApiError(Msg("Shopify %(what)s: not found (404)", what=what), status=status)
            if status != 200:
                raise ShopifyApiError(Msg("Shopify %(what)s: HTTP %(status)s", what=what, status=status), status=status)
            try:
                data = json.loads(response.content, parse_float=Decimal)  # money stays exact
            except ValueError:
                raise ShopifyApiError(Msg("Shopify %(what)s: the answer is not JSON", what=what),
                                      retryable=True) from None
            if not isinstance(data, dict):
                raise ShopifyApiError(Msg("Shopify %(what)s: the answer is not a JSON object", what=what))
            return data
        raise ShopifyApiError(Msg("Shopify %(what)s: still rate limited after %(max_attempts)s attempts", what=what,
                                  max_attempts=MAX_ATTEMPTS), retryable=True,
                              status=429)

    def get_order(self, order_id: str | int) -> dict[str, Any]:
        """The order with this id (``GET orders/<id>.json``)."""
        if not re.fullmatch(r"\d{1,20}", str(order_id)):
            raise ValueError(Msg("order id %(value)s is not a Shopify order id", value=repr(str(order_id)[:30])))
        order = self.get(f"orders/{order_id}.json", f"orders/{order_id}").get("order")
        if not isinstance(order, dict):
            raise ShopifyApiError(Msg("Shopify orders/%(order_id)s: the answer has no order", order_id=order_id))
        return order
