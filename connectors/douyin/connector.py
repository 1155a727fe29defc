"""The 抖店 (Douyin shop) connector: order and after-sale pushes in, canonical events out.

Inbound (``POST /hooks/<connector id>``, the app's 消息推送 URL on op.jinritemai.com):

1. ``event-sign`` must be MD5(app_key + raw body + app_secret) or HMAC-SHA256 (key app_secret) of the
   same text — the method the request declares (``sign-method`` / ``event-sign-method``), else the one
   the signature's length shows (:func:`push_sign_method`) — and ``app-id`` this app's key
   (:mod:`connectors.douyin.signing`): otherwise 401, nothing stored.
2. The body is a JSON array of ``{tag, msg_id, data}`` (:mod:`connectors.douyin.inbound`); one that does
   not parse is a 400 naming the problem. Tag ``0`` (the console's URL check, whose ``data`` is a
   timestamp) is answered ``{"code":0,"msg":"success"}`` without events. Tags that map to no event are
   kept raw as unmapped messages.
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
import threading
import time
from collections import OrderedDict
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, Unmapped
from connectors.douyin.client import DEFAULT_API_BASE, DouyinApiError, shared_client
from connectors.douyin.inbound import TEST_TAGS, event_from_message, parse_messages
from connectors.douyin.signing import DouyinSignatureError, SignMethod, verify_event_sign
from connectors.errors import ConnectorProtocolError
from wording import Msg

log = logging.getLogger(__name__)
JSON = "application/json; charset=utf-8"
#: what 抖店 needs back, for the URL check too, or it retries (and the console will not save the URL)
SUCCESS = json.dumps({"code": 0, "msg": "success"})


class DouyinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_key: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_\-]+$", title="App Key",
                         description="抖店开放平台 › 控制台 › 应用 › App Key (the push's app-id)")
    shop_id: str = Field(min_length=1, max_length=40, pattern=r"^\d+$", title="shop id",
                         description="the shop that authorised this self-use app (店铺ID); tokens are fetched for it")
    api_base: str = Field(default=DEFAULT_API_BASE, max_length=200, title="API base URL",
                          description="抖店's open API; change only for a proxy or a test server")
    api_timeout_seconds: float = Field(default=2.0, gt=0, le=30, title="API timeout (s)")
    answer_within_seconds: float = Field(default=2.5, gt=0, le=30, title="answer within (s)",
                                         description="a push with many orders is answered 503 (抖店 pushes it again; "
                                                     "what was stored is a duplicate then) rather than late")

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(Msg("must be an http(s) URL such as https://openapi-fxg.jinritemai.com"))
        return value


class DouyinSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    app_secret: SecretStr = Field(title="App Secret", description="应用凭证 › App Secret: verifies event-sign and "
                                                                  "signs API calls")

    @field_validator("app_secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(Msg("must not be empty"))
        return value


class DouyinConnector(Connector):
    kind: ClassVar[str] = "douyin"
    label: ClassVar[dict[str, str]] = {"zh-CN": "抖店", "en": "Douyin shop (抖店)"}
    Settings: ClassVar[type[BaseModel]] = DouyinSettings
    Secrets: ClassVar[type[BaseModel]] = DouyinSecrets

    def busy_reply(self, retry_after: int) -> InboundReply:
        # the same answer this connector gives when it cannot complete a push now: 抖店 pushes again
        return InboundReply(status=503, content_type=JSON, headers={"Retry-After": str(retry_after)},
                            body=json.dumps({"code": 503, "msg": "retry later: busy"}))

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        if request.method != "POST":
            raise ConnectorProtocolError(Msg("抖店 pushes with POST, not %(method)s", method=request.method))
        secret = secrets.app_secret.get_secret_value()
        sign = request.headers.get("event-sign", "").strip()
        if not sign:
            if is_url_check(request.body):  # the console's check when the URL is saved: nothing to store
                return _answer()
            raise DouyinSignatureError(Msg("the event-sign header is missing: this request did not come from 抖店"))
        verify_event_sign(settings.app_key, secret, request.body, sign, app_id=request.headers.get("app-id"),
                          method=push_sign_method(request.headers, sign))
        messages = [m for m in parse_messages(request.body) if m.tag not in TEST_TAGS]
        events: list[dict[str, Any]] = []
        unmapped = [Unmapped(reason=Msg("tag %(tag)s gives no event", tag=m.tag), raw=json.dumps(
            {"tag": m.tag, "msg_id": m.msg_id, "data": m.data}, ensure_ascii=False), message_id=m.msg_id, kind=m.tag)
            for m in messages if not m.relevant]
        details: dict[str, dict[str, Any]] = {}
        started = time.monotonic()
        for message in (m for m in messages if m.relevant):
            order_id = message.order_id
            if order_id not in details and time.monotonic() - started > settings.answer_within_seconds:
                log.info("抖店 push: %d of %d messages done within %.1fs; the rest on the next push", len(events),
                         len(messages), settings.answer_within_seconds)
                return InboundReply(events=events, unmapped=unmapped, status=503, content_type=JSON,
                                    body=json.dumps({"code": 503, "msg": "busy: retry later"}))
            if order_id not in details and (cached := _DETAILS.get(_detail_key(settings, order_id))) is not None:
                details[order_id] = cached  # fetched for an earlier delivery of this push: no API call
            if order_id not in details:
                try:
                    client = shared_client(settings.app_key, secret, settings.shop_id, settings.api_base,
                                           settings.api_timeout_seconds)
                    details[order_id] = client.order_detail(order_id)
                    _DETAILS.put(_detail_key(settings, order_id), details[order_id])
                except DouyinApiError as exc:
                    log.warning("抖店 push message %s (tag %s) deferred: %s", message.msg_id, message.tag, exc)
                    return InboundReply(events=events, unmapped=unmapped, status=503, content_type=JSON,
                                        body=json.dumps({"code": 503, "msg": f"retry later: {exc}"},
                                                        ensure_ascii=False))
            events.append(event_from_message(message, details[order_id]))
        return InboundReply(events=events, unmapped=unmapped, body=SUCCESS, content_type=JSON)


class _RecentDetails:
    """Order details fetched in the last minutes, so a push answered 503 for lack of time progresses on its
    redelivery instead of fetching the same orders again."""

    def __init__(self, size: int = 2048, ttl: float = 600.0) -> None:
        self._items: OrderedDict[tuple[str, ...], tuple[float, dict[str, Any]]] = OrderedDict()
        self._size, self._ttl = size, ttl
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > self._ttl:
                return None
            return found[1]

    def put(self, key: tuple[str, ...], detail: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), detail)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_DETAILS = _RecentDetails()


def _detail_key(settings: Any, order_id: str) -> tuple[str, ...]:
    return settings.api_base, settings.app_key, settings.shop_id, order_id


def _answer() -> InboundReply:
    return InboundReply(body=SUCCESS, content_type=JSON)


def is_url_check(body: bytes) -> bool:
    """Whether the body is the console's URL check ``[{"tag":"0","msg_id":"0","data":"<timestamp>"}]``."""
    try:
        return all(m.tag in TEST_TAGS for m in parse_messages(body))
    except ConnectorProtocolError:
        return False


def push_sign_method(headers: dict[str, str], sign: str) -> SignMethod:
    """The method a push is signed with: as the request declares it (``sign-method`` or ``event-sign-method``
    header, the app's 推送签名方式 setting), else by the signature's form — an MD5 is 32 hex digits, an
    HMAC-SHA256 64, so the two cannot be mistaken for each other."""
    declared = (headers.get("sign-method") or headers.get("event-sign-method") or "").strip().lower()
    if declared:
        method = declared.replace("_", "-")
        if method in ("hmac-sha256", "hmacsha256", "hmac_sha256"):
            return "hmac-sha256"
        if method == "md5":
            return "md5"
        raise DouyinSignatureError(Msg("unknown sign method %(value)s; 抖店 signs with md5 or hmac-sha256",
                                       value=repr(declared[:20])))
    return "hmac-sha256" if len(sign) == 64 else "md5"
