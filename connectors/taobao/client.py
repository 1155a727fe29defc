"""Taobao Open Platform (TOP) API client: one signed call to the router, errors split retry / don't.

A call is an HTTP ``POST`` of a form to the router (``https://eco.taobao.com/router/rest``; the older
``http://gw.api.taobao.com/router/rest`` works the same) carrying the system parameters ``method``,
``app_key``, ``session`` (the shop's authorisation), ``timestamp`` (GMT+8), ``format=json``, ``v=2.0``,
``sign_method`` and ``sign`` (:mod:`connectors.taobao.signing`) next to the API's own parameters.

The answer is ``{"<api>_response": {...}}`` (``taobao.trades.sold.increment.get`` →
``trades_sold_increment_get_response``) or ``{"error_response": {"code", "msg", "sub_code",
"sub_msg", "request_id"}}``. Platform errors are codes below 100; ``sub_code`` ``isp.*`` means the
platform failed (retry later), ``isv.*`` that the request was wrong.

Nothing here logs or raises the app secret or the session key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.polling import ShopApiError, ShopApiRejected, ShopApiRetryable, http_url
from connectors.shop_http import GATEWAY_WORDING, OwnedHttp, json_object
from connectors.taobao.signing import SIGN_METHODS, format_timestamp, sign
from wording import N_, Msg

DEFAULT_GATEWAY = "https://eco.taobao.com/router/rest"
DEFAULT_TIMEOUT = 20.0

#: platform error codes worth retrying: call limits (4–8), service unavailable (10), remote service (15)
RETRYABLE_CODES = {"4", "5", "6", "7", "8", "10"}
#: what to do about the codes a person has to fix
HINTS = {
    "11": N_("the app lacks the permission for this API: apply for the 交易 / 退款 API permission package on "
             "open.taobao.com (控制台 › 应用管理 › API权限)"),
    "12": N_("the shop's authorisation does not cover this API: authorise the app again as the shop's main account"),
    "25": N_("invalid signature: check app_secret (控制台 › 应用管理 › 应用证书) and sign_method"),
    "26": N_("no session key: authorise the app for the shop and paste the session key (access_token)"),
    "27": N_("invalid or expired session key: the shop must authorise the app again; paste the new session key"),
    "28": N_("app_key is missing"),
    "29": N_("invalid app_key: copy the App Key from 控制台 › 应用管理 › 应用证书"),
    "31": N_("invalid timestamp: this server's clock is more than 10 minutes off; fix its time (NTP)"),
    "22": N_("this API does not exist for the app (Invalid Method)"),
    "40": N_("a required parameter is missing"),
    "41": N_("a parameter is invalid"),
    "43": N_("a parameter is invalid"),
}
_BAN = re.compile(r"(\d+)\s*(?:more\s*)?seconds?", re.I)


def response_key(method: str) -> str:
    """``taobao.trades.sold.increment.get`` → ``trades_sold_increment_get_response``."""
    name = method.split(".", 1)[1] if method.startswith("taobao.") else method
    return name.replace(".", "_") + "_response"


def top_error(api: str, error: Mapping[str, Any]) -> ShopApiError:
    """The exception for a TOP ``error_response``."""
    code = str(error.get("code") or "")
    sub_code = str(error.get("sub_code") or "")
    msg = str(error.get("msg") or "")
    sub_msg = str(error.get("sub_msg") or "")
    said = Msg("Taobao %(api)s answered code %(code)s / %(sub_code)s", api=api, code=code, sub_code=sub_code) \
        if sub_code else Msg("Taobao %(api)s answered code %(code)s", api=api, code=code)
    detail = f" ({msg}{': ' + sub_msg if sub_msg else ''})" if msg or sub_msg else ""  # the platform's words
    limited = code in RETRYABLE_CODES or sub_code.startswith(("isp.", "accesscontrol."))
    if limited or sub_code.endswith("-service-unavailable") or "timeout" in sub_code:
        ban = _BAN.search(sub_msg)
        after = float(ban.group(1)) if ban else (60.0 if code == "7" or "limited" in sub_code else None)
        return ShopApiRetryable(Msg("%(said)s: the platform is busy or the call limit is reached; retry "
                                    "later%(detail)s", said=said, detail=detail),
                                api=api, code=code, sub_code=sub_code, retry_after=after)
    hint = Msg(HINTS.get(code, N_("the request was refused; see open.taobao.com 错误码 for this code")))
    return ShopApiRejected(Msg("%(said)s: %(hint)s%(detail)s", said=said, hint=hint, detail=detail), api=api,
                           code=code, sub_code=sub_code)


def _failure(api: str, message: str, retryable: bool) -> ShopApiError:
    """The exception for a failed HTTP call to the gateway."""
    error = ShopApiRetryable if retryable else ShopApiRejected
    return error(Msg("Taobao %(api)s: %(message)s", api=api, message=message), api=api)


class TopClient(OwnedHttp):
    """One shop's TOP API: app key, app secret, the shop's session key and a sign method."""

    def __init__(self, app_key: str, app_secret: str, session: str, *, gateway_url: str = DEFAULT_GATEWAY,
                 sign_method: str = "hmac-sha256", timeout: float = DEFAULT_TIMEOUT,
                 http: httpx.Client | None = None) -> None:
        if not app_key:
            raise ValueError(Msg("app_key must not be empty (控制台 › 应用管理 › 应用证书 › App Key)"))
        if not app_secret:
            raise ValueError(Msg("app_secret must not be empty (控制台 › 应用管理 › 应用证书 › App Secret)"))
        if sign_method not in SIGN_METHODS:
            raise ValueError(Msg("sign_method must be one of %(value)s", value=', '.join(SIGN_METHODS)))
        self.app_key = app_key
        self._secret = app_secret
        self._session = session
        self.gateway_url = http_url(gateway_url)  # the configured URL, exactly as the setting checks it
        self.sign_method = sign_method
        self.timeout = timeout
        self._use_http(http, timeout, "Tideflow")

    def __repr__(self) -> str:  # never show the secret or the session
        return f"TopClient(app_key={self.app_key!r}, gateway_url={self.gateway_url!r})"

    def signed_params(self, method: str, params: Mapping[str, Any], now: datetime | None = None, *,
                      session: bool = True) -> dict[str, str]:
        """System + business parameters of one call, with ``sign``; ``session=False`` for the app-level
        APIs that take no shop authorisation (the message service's consume and confirm)."""
        form = {"method": method, "app_key": self.app_key, "timestamp": format_timestamp(now or datetime.now(UTC)),
                "format": "json", "v": "2.0", "sign_method": self.sign_method}
        if self._session and session:
            form["session"] = self._session
        for name, value in params.items():
            if value is None or value == "":
                continue
            form[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        form["sign"] = sign(form, self._secret, self.sign_method)
        return form

    def call(self, method: str, params: Mapping[str, Any], *, session: bool = True) -> dict[str, Any]:
        """Call ``method``; the object under ``<api>_response``."""
        form = self.signed_params(method, params, session=session)
        data = json_object(lambda: self._http.post(self.gateway_url, data=form, timeout=self.timeout),
                           timeout=self.timeout, where="the gateway", setting="gateway_url",
                           fail=lambda message, retryable: _failure(method, message, retryable),
                           wording=GATEWAY_WORDING)
        error = data.get("error_response")
        if isinstance(error, dict):
            raise top_error(method, error)
        body = data.get(response_key(method))
        if not isinstance(body, dict):
            raise ShopApiRejected(Msg("Taobao %(method)s: the answer has no %(value)s", method=method,
                                      value=response_key(method)), api=method)
        return body

    # -- the APIs the order sync uses ------------------------------------------------------------------

    def trades_sold_increment(self, start: datetime, end: datetime, page_no: int, page_size: int,
                              fields: str) -> tuple[list[dict[str, Any]], int]:
        """``taobao.trades.sold.increment.get``: trades modified in ``[start, end]`` (≤ 1 day), one page,
        with the total in the window (so pages can be read from the last one back)."""
        return self._modified_page("taobao.trades.sold.increment.get", "trades", "trade", start, end, page_no,
                                   page_size, fields)

    def refunds_receive(self, start: datetime, end: datetime, page_no: int, page_size: int,
                        fields: str) -> tuple[list[dict[str, Any]], int]:
        """``taobao.refunds.receive.get``: refunds the seller received, modified in ``[start, end]``."""
        return self._modified_page("taobao.refunds.receive.get", "refunds", "refund", start, end, page_no,
                                   page_size, fields)

    def _modified_page(self, method: str, plural: str, singular: str, start: datetime, end: datetime, page_no: int,
                       page_size: int, fields: str) -> tuple[list[dict[str, Any]], int]:
        """One page of the records ``method`` lists as ``{plural: {singular: [...]}}`` (or ``{plural: [...]}``),
        modified in ``[start, end]``, and the total in the window."""
        body = self.call(method, {
            "fields": fields, "start_modified": format_timestamp(start), "end_modified": format_timestamp(end),
            "page_no": page_no, "page_size": page_size, "use_has_next": False})
        listed = body.get(plural)
        found = listed.get(singular) if isinstance(listed, dict) else listed
        records = [r for r in found or [] if isinstance(r, dict)]
        return records, int(body.get("total_results") or 0)

    # -- single records, for the message service (TMC) -----------------------------------------------------

    def trade_fullinfo(self, tid: str, fields: str) -> dict[str, Any]:
        """``taobao.trade.fullinfo.get``: one trade of the shop, by ``tid``."""
        body = self.call("taobao.trade.fullinfo.get", {"tid": tid, "fields": fields})
        trade = body.get("trade")
        if not isinstance(trade, dict):
            raise ShopApiRejected(Msg("Taobao taobao.trade.fullinfo.get: no trade %(tid)s in the answer", tid=tid),
                                  api="taobao.trade.fullinfo.get")
        return trade

    def refund_get(self, refund_id: str, fields: str) -> dict[str, Any]:
        """``taobao.refund.get``: one refund the shop received, by ``refund_id``."""
        body = self.call("taobao.refund.get", {"refund_id": refund_id, "fields": fields})
        refund = body.get("refund")
        if not isinstance(refund, dict):
            raise ShopApiRejected(Msg("Taobao taobao.refund.get: no refund %(refund_id)s in the answer",
                                      refund_id=refund_id),
                                  api="taobao.refund.get")
        return refund

    # -- the message service (TMC) over the API --------------------------------------------------------------

    def tmc_consume(self, group_name: str = "", quantity: int = 100) -> list[dict[str, Any]]:
        """``taobao.tmc.messages.consume``: up to ``quantity`` (10–200) messages of the app's queue (the
        ``group_name`` user group, or the default group when empty: naming a group the app does not have
        is an error). The answer lists them as ``{"messages": {"tmc_message": [...]}}``; no messages is
        ``{}`` or an empty list."""
        body = self.call("taobao.tmc.messages.consume", {"group_name": group_name or None,
                                                         "quantity": max(10, min(200, quantity))}, session=False)
        listed = body.get("messages")
        found = listed.get("tmc_message") if isinstance(listed, dict) else listed
        return [m for m in found or [] if isinstance(m, dict)]

    def tmc_confirm(self, group_name: str, done: list[str], failed: list[str]) -> None:
        """``taobao.tmc.messages.confirm``: ``done`` were handled (``s_message_ids``), ``failed`` must be
        delivered again (``f_message_ids``); at most 200 of each per call."""
        for start in range(0, max(len(done), len(failed)), 200):
            ok, again = done[start:start + 200], failed[start:start + 200]
            body = self.call("taobao.tmc.messages.confirm", {
                "group_name": group_name or None, "s_message_ids": ",".join(ok) or None,
                "f_message_ids": ",".join(again) or None}, session=False)
            if body.get("is_success") is False:
                raise ShopApiRetryable(Msg("Taobao taobao.tmc.messages.confirm: the message service did not accept "
                                           "the confirmation; the messages come again"),
                                       api="taobao.tmc.messages.confirm")
