"""The 抖店 (Douyin shop) connector: order and after-sale pushes in, canonical events out.

Inbound (``POST /hooks/<connector id>``, the app's 消息推送 URL on op.jinritemai.com):

1. ``event-sign`` must be MD5(app_key + raw body + app_secret) — or HMAC-SHA256 when the push says
   ``event-sign-method: hmac-sha256`` — and ``app-id`` this app's key (:mod:`connectors.douyin.signing`):
   otherwise 401, nothing stored.
2. The body is a JSON array of ``{tag, msg_id, data}`` (:mod:`connectors.douyin.inbound`); one that does
   not parse is a 400 naming the problem. Tag ``0`` (the console's test message) is answered without
   events.
3. Each order or after-sale message is completed with ``order.orderDetail`` (the buyer, amounts,
   items; :mod:`connectors.douyin.client`). If 抖店's API cannot be reached, the events made so far are
   stored and the push is answered 503, so 抖店 pushes it again (the stored ones are then duplicates).
4. Event ids are ``douyin:<shop>:<order>:<status>`` / ``douyin:<shop>:refund:<aftersale id>:<status>``:
   a redelivered push is stored once. The answer is ``{"code":0,"msg":"success"}``.

There is no outbound message channel.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest
from connectors.douyin.client import DEFAULT_API_BASE, DouyinApiError, shared_client
from connectors.douyin.inbound import TEST_TAGS, event_from_message, parse_messages
from connectors.douyin.signing import DouyinSignatureError, verify_event_sign
from connectors.errors import ConnectorProtocolError

log = logging.getLogger(__name__)
JSON = "application/json; charset=utf-8"


class DouyinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_key: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_\-]+$", title="App Key",
                         description="抖店开放平台 › 控制台 › 应用 › App Key (the push's app-id)")
    shop_id: str = Field(min_length=1, max_length=40, pattern=r"^\d+$", title="shop id",
                         description="the shop that authorised this self-use app (店铺ID); tokens are fetched for it")
    api_base: str = Field(default=DEFAULT_API_BASE, max_length=200, title="API base URL",
                          description="抖店's open API; change only for a proxy or a test server")
    api_timeout_seconds: float = Field(default=3.0, gt=0, le=30, title="API timeout (s)")

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://openapi-fxg.jinritemai.com")
        return value


class DouyinSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    app_secret: SecretStr = Field(title="App Secret", description="应用凭证 › App Secret: verifies event-sign and "
                                                                  "signs API calls")

    @field_validator("app_secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value


class DouyinConnector(Connector):
    kind: ClassVar[str] = "douyin"
    label: ClassVar[dict[str, str]] = {"zh-CN": "抖店", "en": "Douyin shop (抖店)"}
    Settings: ClassVar[type[BaseModel]] = DouyinSettings
    Secrets: ClassVar[type[BaseModel]] = DouyinSecrets

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        if request.method != "POST":
            raise ConnectorProtocolError(f"抖店 pushes with POST, not {request.method}")
        secret = secrets.app_secret.get_secret_value()
        method = request.headers.get("event-sign-method", "md5").strip().lower() or "md5"
        if method not in ("md5", "hmac-sha256"):
            raise DouyinSignatureError(f"unknown event-sign-method {method[:20]!r}; allowed: md5, hmac-sha256")
        sign = request.headers.get("event-sign", "")
        if not sign.strip():
            raise DouyinSignatureError("the event-sign header is missing: this request did not come from 抖店")
        verify_event_sign(settings.app_key, secret, request.body, sign, app_id=request.headers.get("app-id"),
                          method=method)  # type: ignore[arg-type]
        messages = [m for m in parse_messages(request.body) if m.tag not in TEST_TAGS and m.relevant]
        events: list[dict[str, Any]] = []
        details: dict[str, dict[str, Any]] = {}
        for message in messages:
            order_id = message.order_id
            if order_id not in details:
                try:
                    client = shared_client(settings.app_key, secret, settings.shop_id, settings.api_base,
                                           settings.api_timeout_seconds)
                    details[order_id] = client.order_detail(order_id)
                except DouyinApiError as exc:
                    log.warning("抖店 push message %s (tag %s) deferred: %s", message.msg_id, message.tag, exc)
                    return InboundReply(events=events, status=503, content_type=JSON,
                                        body=json.dumps({"code": 503, "msg": f"retry later: {exc}"},
                                                        ensure_ascii=False))
            events.append(event_from_message(message, details[order_id]))
        return InboundReply(events=events, body=json.dumps({"code": 0, "msg": "success"}), content_type=JSON)
