"""The Youzan (有赞) shop connector: trade and refund pushes in, canonical order/refund events out.

Inbound (``POST /hooks/<connector id>``, the app's 推送网址 in the 有赞云 console › 应用 › 消息订阅):

1. ``Event-Sign`` must equal MD5(client_id + raw body + client_secret) (:mod:`connectors.youzan.signing`),
   and ``Client-Id``, when sent, must be this app's: otherwise 401 and nothing is stored. A test push
   (``"test": true``, sent when the URL is saved) is answered without events, signed or not.
2. The envelope and its URL-encoded ``msg`` are parsed (:mod:`connectors.youzan.inbound`); a body
   that does not parse is a 400 naming the problem.
3. Thin messages (shipping, completion, closing, every refund) are completed with ``youzan.trade.get``
   (:mod:`connectors.youzan.client`). When Youzan's API cannot be reached the push is answered 503 so
   Youzan pushes it again later; nothing is lost.
4. The events (``order.*`` / ``refund.*``, see the table in docs/connectors/youzan.md) are stored once —
   their ids are ``youzan:<kdt_id>:<tid>:<status>`` / ``youzan:<kdt_id>:refund:<refund_id>:<status>``, so a
   redelivered push (``sendCount`` > 1) is a duplicate — and the answer is ``{"code":0,"msg":"success"}``.

There is no outbound message channel: Youzan does not deliver free-form messages to buyers.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, Unmapped
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.youzan.client import DEFAULT_API_BASE, YouzanApiError, shared_client
from connectors.youzan.inbound import events_from_push, needs_trade, parse_push, trade_id
from connectors.youzan.signing import verify_event_sign
from wording import Msg

log = logging.getLogger(__name__)
SUCCESS = json.dumps({"code": 0, "msg": "success"})


class YouzanSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", title="client_id",
                           description="有赞云控制台 › 应用 › 应用凭证 › client_id")
    api_base: str = Field(default=DEFAULT_API_BASE, max_length=200, title="API base URL",
                          description="Youzan Cloud's open API; change only for a proxy or a test server")
    api_timeout_seconds: float = Field(default=3.0, gt=0, le=30, title="API timeout (s)",
                                       description="for youzan.trade.get while answering a push (Youzan waits 5 s)")

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(Msg("must be an http(s) URL such as https://open.youzanyun.com"))
        return value


class YouzanSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    client_secret: SecretStr = Field(title="client_secret", description="应用凭证 › client_secret: verifies "
                                                                        "Event-Sign and fetches access tokens")

    @field_validator("client_secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(Msg("must not be empty"))
        return value


def _answer(status: int = 200, message: str = "success") -> InboundReply:
    return InboundReply(status=status, body=json.dumps({"code": 0 if status == 200 else status, "msg": message},
                                                       ensure_ascii=False),
                        content_type="application/json; charset=utf-8")


class YouzanConnector(Connector):
    kind: ClassVar[str] = "youzan"
    label: ClassVar[dict[str, str]] = {"zh-CN": "有赞", "en": "Youzan"}
    Settings: ClassVar[type[BaseModel]] = YouzanSettings

    def busy_reply(self, retry_after: int) -> InboundReply:
        # 有赞 pushes again unless the answer is {"code":0,"msg":"success"}
        reply = _answer(503, "busy, retry later")
        reply.headers["Retry-After"] = str(retry_after)
        return reply
    Secrets: ClassVar[type[BaseModel]] = YouzanSecrets

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        if request.method != "POST":
            raise ConnectorProtocolError(Msg("Youzan pushes with POST, not %(method)s", method=request.method))
        secret = secrets.client_secret.get_secret_value()
        sign = request.headers.get("event-sign", "")
        if not sign.strip():
            try:
                test = parse_push(request.body).test
            except ConnectorProtocolError:
                test = False
            if test:  # the console's URL check: nothing is stored
                return _answer()
            raise SignatureVerificationError(Msg("the Event-Sign header is missing: this request did not come from "
                                                 "Youzan's message push"))
        verify_event_sign(settings.client_id, secret, request.body, sign,
                          header_client_id=request.headers.get("client-id"))
        push = parse_push(request.body)
        if push.test:
            return _answer()
        trade = None
        if needs_trade(push):
            tid = trade_id(push)
            try:
                client = shared_client(settings.client_id, secret, settings.api_base, settings.api_timeout_seconds)
                trade = client.get_trade(push.kdt_id, tid)
            except YouzanApiError as exc:
                log.warning("Youzan push %s (%s) deferred: %s", push.msg_id or push.id, push.type, exc)
                return _answer(503, f"retry later: {exc}")
        events = events_from_push(push, trade)
        unmapped = [] if events else [Unmapped(
            reason=Msg("type %(type)s gives no event", type=push.type[:80]),
            raw=request.body.decode("utf-8", "replace"),
            message_id=push.msg_id or push.id, kind=push.type[:80])]
        return InboundReply(events=events, unmapped=unmapped, body=SUCCESS,
                            content_type="application/json; charset=utf-8")
