"""WeChat Official Account (微信公众号) server API client: template messages, customer-service
messages, follower info.

Endpoints (under ``api_base``, default ``https://api.weixin.qq.com``):

=======================================  ===========================================================
``POST /cgi-bin/stable_token``           ``grant_type=client_credential``, ``appid``, ``secret``,
                                         ``force_refresh`` → ``access_token``, ``expires_in``. The
                                         "stable" token: fetching it again while it is valid returns
                                         the same token, so several Tideflow processes (and other
                                         systems using stable_token) do not invalidate each other.
``POST /cgi-bin/message/template/send``  模板消息: ``touser`` (openid), ``template_id``, ``data``
                                         (``{key: {"value": …}}``), ``url``, ``miniprogram``,
                                         ``client_msg_id`` (the platform sends one message per
                                         openid + client_msg_id within 10 minutes) → ``msgid``
``POST /cgi-bin/message/custom/send``    客服消息: ``touser``, ``msgtype`` text, ``text.content``;
                                         only within 48 h of the follower's last interaction
``GET  /cgi-bin/user/info``              a follower's ``unionid`` (when the account is bound to a
                                         WeChat open platform account), subscribe status
=======================================  ===========================================================

Errcodes: ``40001`` / ``40014`` / ``42001`` (invalid or expired token) fetch a new token once;
``-1``, ``45009`` (daily quota), ``45011`` (per-minute quota) are retryable; the rest is rejected.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.wecom.api_errors import ApiError, ApiRejected, ApiRetryable
from connectors.wecom.transport import DEFAULT_MAX_WAIT, DEFAULT_TIMEOUT, PlatformClient, SharedClients, errcode_of
from wording import N_, Msg

DEFAULT_API_BASE = "https://api.weixin.qq.com"
MAX_TEXT_BYTES = 2048


class WeChatOARetryable(ApiRetryable):
    """A WeChat OA API call that may succeed when tried again later."""


class WeChatOARejected(ApiRejected):
    """A WeChat OA API call the platform refused for good."""


OA_RETRYABLE: dict[int, tuple[str, float | None]] = {
    -1: (N_("system busy (系统繁忙)"), 1.0),
    45009: (N_("the account's daily API quota is used up (reach max api daily quota limit)"), 3600.0),
    45011: (N_("the per-minute API quota is used up (api minute-quota reach limit)"), 60.0),
    45033: (N_("too many concurrent calls"), 1.0),
}
OA_TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 41001})
OA_HINTS: dict[int, str] = {
    40013: N_("the AppID is wrong (设置与开发 › 基本配置 › 开发者ID)"),
    40125: N_("the AppSecret is wrong: reset or copy it again under 基本配置"),
    40164: N_("this server's IP is not whitelisted: add it under 基本配置 › IP白名单"),
    61004: N_("this server's IP is not whitelisted: add it under 基本配置 › IP白名单"),
    40003: N_("the openid does not belong to this account's followers"),
    43004: N_("the user does not follow the account (require subscribe)"),
    43101: N_("the user refuses messages from the account"),
    40037: N_("the template_id is wrong, or the template was removed from 模板消息 › 我的模板"),
    47003: N_("the template data does not match the template's fields (argument invalid)"),
    45015: N_("the follower has not interacted within 48 hours, so customer-service messages are refused; "
              "use a template message"),
    45047: N_("too many customer-service messages since the follower's last interaction"),
    48001: N_("the account has no permission for this API (is it a verified service account?)"),
}


def oa_error(api: str, errcode: int, errmsg: str) -> ApiError:
    said = Msg("WeChat OA %(api)s answered errcode %(errcode)s", api=api, errcode=errcode)
    detail = f" ({errmsg})" if errmsg else ""  # the platform's own words, as they are
    if errcode in OA_RETRYABLE:
        what, after = OA_RETRYABLE[errcode]
        return WeChatOARetryable(Msg("%(said)s: %(what)s; retry later%(detail)s", said=said, what=Msg(what),
                                     detail=detail),
                                 api=api, errcode=errcode, errmsg=errmsg,
                                 retry_after=after)
    hint = Msg(OA_HINTS.get(errcode, N_("see the 全局返回码 list of the Official Account docs")))
    return WeChatOARejected(Msg("%(said)s: %(hint)s%(detail)s", said=said, hint=hint, detail=detail), api=api,
                            errcode=errcode, errmsg=errmsg)


@dataclass(frozen=True)
class Follower:
    openid: str
    subscribed: bool
    unionid: str = ""


def client_msg_id(key: str) -> str:
    """The ``client_msg_id`` for an idempotency key: short, stable, made of [0-9a-f]."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class WeChatOAClient(PlatformClient):
    """One Official Account's API, with a cached stable access token and a client-side rate limit."""

    platform = "WeChat OA"
    retryable_error = WeChatOARetryable
    rejected_error = WeChatOARejected
    token_errcodes = OA_TOKEN_ERRCODES

    def __init__(self, app_id: str, app_secret: str, *, api_base: str = DEFAULT_API_BASE,
                 rate_per_second: float = 10.0, burst: float | None = None, timeout: float = DEFAULT_TIMEOUT,
                 max_wait: float = DEFAULT_MAX_WAIT, http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not app_id:
            raise ValueError(Msg("app_id must not be empty (基本配置 › 开发者ID(AppID))"))
        if not app_secret:
            raise ValueError(Msg("app_secret must not be empty (基本配置 › 开发者密码(AppSecret))"))
        self.app_id = app_id
        self._secret = app_secret
        self._rejected_token: str | None = None
        super().__init__(api_base, rate_per_second=rate_per_second, burst=burst, timeout=timeout, max_wait=max_wait,
                         http=http, clock=clock, sleep=sleep)

    def __repr__(self) -> str:
        return f"WeChatOAClient(app_id={self.app_id!r}, api_base={self.api_base!r})"

    def error_for(self, api: str, errcode: int, errmsg: str) -> ApiError:
        return oa_error(api, errcode, errmsg)

    def token_rejected(self, token: str) -> None:
        self._rejected_token = token
        super().token_rejected(token)

    def _stable_token(self, force_refresh: bool, timeout: float | None) -> tuple[str, float]:
        data = self.request("POST", "/cgi-bin/stable_token", "stable_token", body={
            "grant_type": "client_credential", "appid": self.app_id, "secret": self._secret,
            "force_refresh": force_refresh}, timeout=timeout)
        code = errcode_of(data)
        if code != 0:
            raise oa_error("stable_token", code, str(data.get("errmsg") or ""))
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatOARetryable(Msg("WeChat OA stable_token answered without an access_token"), api="stable_token")
        return token, float(data.get("expires_in") or 7200)

    def _fetch_token(self, timeout: float | None = None) -> tuple[str, float]:
        token, expires_in = self._stable_token(False, timeout)
        if token == self._rejected_token:
            # the platform rejected this very token but still hands it out: force a new one (rate-limited by
            # WeChat, so only in this case)
            token, expires_in = self._stable_token(True, timeout)
        self._rejected_token = None
        return token, expires_in

    def send_template(self, openid: str, template_id: str, data: Mapping[str, Any], *, url: str | None = None,
                      miniprogram: Mapping[str, str] | None = None, client_msg_id: str | None = None) -> str:
        """Send a template message; the platform's ``msgid`` (as a string)."""
        if not openid or not template_id:
            raise ValueError(Msg("send_template needs an openid and a template_id"))
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": template_data(data)}
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = dict(miniprogram)
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        answer = self.call("POST", "/cgi-bin/message/template/send", "message/template/send", body=body)
        return str(answer.get("msgid") or "")

    def send_custom_text(self, openid: str, content: str) -> None:
        """Send a customer-service text message (only within 48 h of the follower's last interaction)."""
        if not openid or not content:
            raise ValueError(Msg("send_custom_text needs an openid and a content"))
        if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
            raise WeChatOARejected(Msg("the text is %(count)s bytes; customer-service text messages take at most "
                                       "%(max_text_bytes)s", count=len(content.encode('utf-8')),
                                       max_text_bytes=MAX_TEXT_BYTES), api="message/custom/send")
        self.call("POST", "/cgi-bin/message/custom/send", "message/custom/send",
                  body={"touser": openid, "msgtype": "text", "text": {"content": content}})

    def get_follower(self, openid: str, *, wait: float | None = None, timeout: float | None = None) -> Follower:
        data = self.call("GET", "/cgi-bin/user/info", "user/info", params={"openid": openid, "lang": "zh_CN"},
                         wait=wait, timeout=timeout)
        return Follower(openid=str(data.get("openid") or openid), subscribed=data.get("subscribe") == 1,
                        unionid=str(data.get("unionid") or ""))


def template_data(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{key: value}`` or ``{key: {"value": …, "color": …}}`` → the platform's ``{key: {"value": …}}``."""
    out: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            if "value" not in value:
                raise ValueError(Msg("template data field %(key)s needs a 'value'", key=repr(key)))
            out[str(key)] = {k: str(v) for k, v in value.items() if k in ("value", "color")}
        else:
            out[str(key)] = {"value": "" if value is None else str(value)}
    return out


_shared: SharedClients[WeChatOAClient] = SharedClients()


def shared_client(app_id: str, app_secret: str, *, api_base: str = DEFAULT_API_BASE,
                  rate_per_second: float = 10.0) -> WeChatOAClient:
    """The process-wide client of this account (one token cache, one rate limiter); a changed secret
    or rate replaces it."""
    return _shared.get(api_base, app_id, app_secret, rate_per_second,
                       lambda: WeChatOAClient(app_id, app_secret, api_base=api_base, rate_per_second=rate_per_second))


def reset_shared_clients() -> None:
    """Close and forget every shared client (tests; a reconfiguration)."""
    _shared.reset()
