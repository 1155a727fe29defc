"""JD Open Platform (JOS, 京东开放平台) API client: one signed call to ``routerjson``, errors split
retry / don't.

A call is an HTTP ``POST`` of a form to ``https://api.jd.com/routerjson`` with ``method``,
``app_key``, ``access_token`` (the shop's authorisation), ``timestamp`` (GMT+8), ``v=2.0``,
``360buy_param_json`` (the API's own parameters as one JSON string) and ``sign``
(:mod:`connectors.jd.signing`).

The answer is ``{"<method with _ for .>_responce": {...}}`` — JOS spells it *responce*; ``_response``
is accepted too — or ``{"error_response": {"code", "zh_desc", "en_desc"}}``. Business APIs add their
own result object with a success flag (``apiResult.success``, ``queryResult.success``).

Nothing here logs or raises the app secret or the access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.jd.signing import format_timestamp, sign, system_params
from connectors.polling import ShopApiError, ShopApiRejected, ShopApiRetryable, http_url
from connectors.shop_http import GATEWAY_WORDING, OwnedHttp, json_object
from wording import N_, Msg

DEFAULT_GATEWAY = "https://api.jd.com/routerjson"
DEFAULT_TIMEOUT = 20.0

#: gateway codes worth retrying: service unavailable (1), call limit (2), processing timeouts (33, 65)
RETRYABLE_CODES = {"1", "2", "33", "65", "66", "67"}
HINTS = {
    "8": N_("invalid timestamp: this server's clock is more than 6 minutes off; fix its time (NTP)"),
    "10": N_("invalid app_key: copy the App Key from the JOS console (应用管理)"),
    "12": N_("invalid signature: check app_secret (JOS console › 应用管理 › App Secret)"),
    "15": N_("this API does not exist or the app may not call it"),
    "18": N_("no access_token: authorise the app for the shop and paste its access token"),
    "19": N_("invalid or expired access_token: the shop must authorise the app again; paste the new access token"),
    "21": N_("invalid app_key: copy the App Key from the JOS console (应用管理)"),
    "24": N_("the shop (vender) may not call this API: check the app's API permissions and the shop's authorisation"),
}


def response_key(method: str) -> str:
    """``jingdong.pop.order.search`` → ``jingdong_pop_order_search_responce``."""
    return method.replace(".", "_") + "_responce"


def jos_error(api: str, error: Mapping[str, Any]) -> ShopApiError:
    """The exception for a JOS ``error_response``."""
    code = str(error.get("code") or "")
    desc = str(error.get("zh_desc") or error.get("en_desc") or error.get("msg") or "")
    said = Msg("JD %(api)s answered code %(code)s", api=api, code=code)
    detail = f" ({desc})" if desc else ""  # the platform's own words, as they are
    if code in RETRYABLE_CODES:
        return ShopApiRetryable(Msg("%(said)s: the platform is busy or the call limit is reached; retry "
                                    "later%(detail)s", said=said, detail=detail),
                                api=api, code=code, retry_after=60.0 if code == "2" else None)
    hint = Msg(HINTS.get(code, N_("the request was refused; see the JOS error code list")))
    return ShopApiRejected(Msg("%(said)s: %(hint)s%(detail)s", said=said, hint=hint, detail=detail), api=api, code=code)


def _failure(api: str, message: str, retryable: bool) -> ShopApiError:
    """The exception for a failed HTTP call to the gateway."""
    error = ShopApiRetryable if retryable else ShopApiRejected
    return error(Msg("JD %(api)s: %(message)s", api=api, message=message), api=api)


class JosClient(OwnedHttp):
    """One shop's JOS API: app key, app secret and the shop's access token."""

    def __init__(self, app_key: str, app_secret: str, access_token: str, *, gateway_url: str = DEFAULT_GATEWAY,
                 timeout: float = DEFAULT_TIMEOUT, http: httpx.Client | None = None) -> None:
        if not app_key:
            raise ValueError(Msg("app_key must not be empty (JOS console › 应用管理 › App Key)"))
        if not app_secret:
            raise ValueError(Msg("app_secret must not be empty (JOS console › 应用管理 › App Secret)"))
        self.app_key = app_key
        self._secret = app_secret
        self._token = access_token
        self.gateway_url = http_url(gateway_url)  # the configured URL, exactly as the setting checks it
        self.timeout = timeout
        self._use_http(http, timeout, "Tideflow")

    def __repr__(self) -> str:  # never show the secret or the token
        return f"JosClient(app_key={self.app_key!r}, gateway_url={self.gateway_url!r})"

    def signed_params(self, method: str, params: Mapping[str, Any], now: datetime | None = None) -> dict[str, str]:
        form = system_params(app_key=self.app_key, method=method, business_params=params,
                             timestamp=format_timestamp(now or datetime.now(UTC)), access_token=self._token or None)
        form["sign"] = sign(form, self._secret)
        return form

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Call ``method``; the object under ``<api>_responce``."""
        form = self.signed_params(method, params)
        data = json_object(lambda: self._http.post(self.gateway_url, data=form, timeout=self.timeout),
                           timeout=self.timeout, where="the gateway", setting="gateway_url",
                           fail=lambda message, retryable: _failure(method, message, retryable),
                           wording=GATEWAY_WORDING)
        error = data.get("error_response")
        if isinstance(error, dict):
            raise jos_error(method, error)
        body = data.get(response_key(method))
        if body is None:
            body = data.get(method.replace(".", "_") + "_response")
        if not isinstance(body, dict):
            raise ShopApiRejected(Msg("JD %(method)s: the answer has no %(value)s", method=method,
                                      value=response_key(method)), api=method)
        return body

    # -- the APIs the order sync uses ------------------------------------------------------------------

    def order_search(self, method: str, start: datetime, end: datetime, page: int, page_size: int,
                     order_states: str, fields: str) -> tuple[list[dict[str, Any]], int]:
        """``jingdong.pop.order.search`` / ``jingdong.pop.order.enSearch`` by modified time
        (``dateType`` 0): one page of orders modified in ``[start, end]`` and the total."""
        body = self.call(method, {
            "start_date": format_timestamp(start), "end_date": format_timestamp(end), "order_state": order_states,
            "optional_fields": fields, "page": str(page), "page_size": str(page_size), "dateType": 0,
            "sortType": 0})
        result = body.get("searchorderinfo_result")
        if not isinstance(result, dict):
            raise ShopApiRejected(Msg("JD %(method)s: the answer has no searchorderinfo_result", method=method),
                                  api=method)
        _check_result(method, result.get("apiResult"), "success", "chineseErrCode", "englishErrCode")
        orders = [o for o in result.get("orderInfoList") or [] if isinstance(o, dict)]
        return orders, int(result.get("orderTotal") or 0)

    def refund_applies(self, by: str, start: datetime, end: datetime, page: int,
                       page_size: int) -> tuple[list[dict[str, Any]], int]:
        """``jingdong.pop.afs.soa.refundapply.queryPageList``: refund applications applied (``by="apply"``)
        or reviewed (``by="check"``) in ``[start, end]``."""
        method = "jingdong.pop.afs.soa.refundapply.queryPageList"
        body = self.call(method, {f"{by}TimeStart": format_timestamp(start), f"{by}TimeEnd": format_timestamp(end),
                                  "pageIndex": page, "pageSize": page_size})
        result = body.get("queryResult")
        if not isinstance(result, dict):
            raise ShopApiRejected(Msg("JD %(method)s: the answer has no queryResult", method=method), api=method)
        _check_result(method, result, "success", "errorMessage", "errorCode")
        records = [r for r in result.get("result") or [] if isinstance(r, dict)]
        return records, int(result.get("totalCount") or 0)


def asc_services(client: JosClient, by: str, start: datetime, end: datetime, page: int, page_size: int,
                 vender_id: str, operator: str) -> tuple[list[dict[str, Any]], int]:
    """``jingdong.asc.query.list``: after-sale service orders applied (``by="apply"``) or approved
    (``by="approve"``) in ``[start, end]``, one page, and the total."""
    method = "jingdong.asc.query.list"
    body = client.call(method, {"buId": vender_id, "operatePin": operator, "operateNick": operator,
                                f"{by}TimeBegin": format_timestamp(start), f"{by}TimeEnd": format_timestamp(end),
                                "pageNumber": page, "pageSize": page_size})
    if str(body.get("code", "0")) != "0":
        raise ShopApiRejected(Msg("JD %(method)s failed: %(value)s", method=method,
                                  value=str(body.get('msg') or body.get('code'))[:200]), api=method,
                              code=str(body.get("code")))
    result = body.get("pageResult")
    if not isinstance(result, dict):
        raise ShopApiRejected(Msg("JD %(method)s: the answer has no pageResult", method=method), api=method)
    records = [r for r in result.get("data") or [] if isinstance(r, dict)]
    return records, int(result.get("totalCount") or 0)


def _check_result(api: str, result: Any, flag: str, message: str, code: str) -> None:
    """Raise when a business result object says it failed (``success: false``)."""
    if isinstance(result, dict) and result.get(flag) is False:
        said = str(result.get(message) or result.get(code) or "no reason given")
        raise ShopApiRejected(Msg("JD %(api)s failed: %(value)s", api=api, value=said[:200]), api=api,
                              code=str(result.get(code) or ""))
