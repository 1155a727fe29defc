"""The WeChat Official Account (微信公众号) connector: server-URL pushes in, template and
customer-service messages out.

Inbound (``/hooks/<connector id>``, configured as the account's 服务器地址(URL)):

* ``GET`` — URL check: ``signature`` = SHA1(sort(token, timestamp, nonce)); answer ``echostr``.
* ``POST`` — the same ``signature`` on every push. Plain mode (明文模式): the body is the message
  XML. Safe / compatible mode (安全模式 / 兼容模式, ``encrypt_type=aes``): the body's ``<Encrypt>`` is
  WXBizMsgCrypt ciphertext signed with ``msg_signature``, decrypted with the AppID as receive id.
  The answer is ``success``.

In plain mode nothing signs the body — only the query — so a captured signature could carry a forged
body. Plain-mode pushes are therefore accepted only while their ``timestamp`` is within
``max_clock_skew_seconds`` of now; safe mode needs no such window (replays decrypt to the same
event and are stored once). When an EncodingAESKey is configured, unencrypted pushes are refused.

=====================================  ============================  =====================================
push                                   Tideflow event                payload
=====================================  ============================  =====================================
Event ``subscribe``                    ``wechat.subscribed``         ``event_key``, ``scene`` (of a
                                                                     ``qrscene_…`` QR code), ``ticket``
Event ``SCAN``                         ``wechat.qr_scanned``         ``scene`` (a follower scanned a
                                                                     parametric QR code), ``ticket``
Event ``unsubscribe``                  ``wechat.unsubscribed``
Event ``CLICK`` / ``VIEW``             ``wechat.menu_clicked``       ``menu_type``, ``key`` / ``url``
Event ``TEMPLATESENDJOBFINISH``        ``wechat.template_delivered`` ``msg_id``, ``status``, ``delivered``
MsgType text / image / voice / video   ``wechat.message_received``   ``msg_type``, ``content`` (text),
/ shortvideo / location / link                                       ``msg_id``, media fields
=====================================  ============================  =====================================

The customer is ``{"wechat_openid": FromUserName}``; on subscribe the connector can look the
follower up (``user/info``) to add their ``unionid`` — best effort, never a reason to refuse a push.
Event ids: ``msg:<MsgId>`` for messages, ``template:<MsgID>`` for delivery reports, otherwise derived
from (FromUserName, CreateTime, Event, EventKey) — the fields WeChat recommends for deduplication.

Outbound: channel ``wechat_oa`` — a template message when a ``template_id`` is known (message options
or the connector's default), else a customer-service text message.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, OutboundMessage
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.replay import check_fresh
from connectors.wechat_oa.client import (
    DEFAULT_API_BASE,
    WeChatOAClient,
    WeChatOARejected,
    client_msg_id,
    shared_client,
)
from connectors.wechat_oa.signature import verify_url_signature
from connectors.wecom.api_errors import ApiError
from connectors.wecom.crypto import WeComCrypto, decode_aes_key
from connectors.wecom.message_xml import occurred_at, parse_message, require, stable_id
from wording import Msg

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT = 2.0
MESSAGE_TYPES = ("text", "image", "voice", "video", "shortvideo", "location", "link")
#: message fields copied into the payload (XML tag → payload key)
MESSAGE_FIELDS = {"Content": "content", "MediaId": "media_id", "PicUrl": "pic_url", "Format": "format",
                  "Recognition": "recognition", "ThumbMediaId": "thumb_media_id", "Location_X": "latitude",
                  "Location_Y": "longitude", "Scale": "scale", "Label": "label", "Title": "title",
                  "Description": "description", "Url": "url"}
#: option keys a send_message node (or its ``channel_options``) may set for this channel
TEMPLATE_OPTIONS = ("template_id", "data", "url", "miniprogram", "content_key")


class WeChatOASettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", title="AppID",
                        description="设置与开发 › 基本配置 › 开发者ID(AppID); the receive id of safe mode")
    api_base: str = Field(default=DEFAULT_API_BASE, title="API base URL",
                          description="WeChat's server API; change only for a proxy or a test server")
    rate_limit_per_second: float = Field(default=10.0, gt=0, le=500, title="API calls per second")
    default_template_id: str | None = Field(default=None, max_length=128, title="default template_id",
                                            description="template used when a message names none; without one, "
                                                        "messages go out as customer-service text (48 h window)")
    template_content_key: str | None = Field(default=None, max_length=64, title="template field for the text",
                                             description="the template data key that receives the rendered text, "
                                                         "e.g. thing1 or remark")
    default_template_url: str | None = Field(default=None, max_length=1024, title="template link")
    max_clock_skew_seconds: int = Field(default=300, ge=0, le=86_400, title="plain-mode timestamp window",
                                        description="plain-mode pushes older or newer than this are refused "
                                                    "(0 = no check); safe mode needs none")
    lookup_followers: bool = Field(default=True, title="look up new followers",
                                   description="add the follower's unionid (user/info) to wechat.subscribed")

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(Msg("must be an http(s) URL such as https://api.weixin.qq.com"))
        return value


class WeChatOASecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(title="Token", description="服务器配置 › 令牌(Token)")
    encoding_aes_key: SecretStr = Field(default=SecretStr(""), title="EncodingAESKey",
                                        description="服务器配置 › 消息加解密密钥; empty for plain mode (明文模式)")
    app_secret: SecretStr = Field(title="AppSecret", description="基本配置 › 开发者密码(AppSecret)")

    @field_validator("encoding_aes_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            decode_aes_key(value.get_secret_value())
        return value

    @field_validator("token", "app_secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(Msg("must not be empty"))
        return value


def client_for(settings: WeChatOASettings, secrets: WeChatOASecrets) -> WeChatOAClient:
    return shared_client(settings.app_id, secrets.app_secret.get_secret_value(), api_base=settings.api_base,
                         rate_per_second=settings.rate_limit_per_second)


def events_from_push(document: str | bytes) -> list[dict[str, Any]]:
    """The Tideflow events in one (decrypted) Official Account push."""
    fields = parse_message(document)
    require(fields, "FromUserName", "CreateTime", "MsgType")
    openid = fields["FromUserName"].strip()
    customer: dict[str, str] = {"wechat_openid": openid}
    unionid = (fields.get("UnionId") or fields.get("UnionID") or "").strip()
    if unionid:
        customer["wechat_unionid"] = unionid
    when = occurred_at(fields["CreateTime"])
    msg_type = fields["MsgType"]
    if msg_type in MESSAGE_TYPES:
        msg_id = fields.get("MsgId", "").strip()
        payload: dict[str, Any] = {"msg_type": msg_type, "msg_id": msg_id}
        payload.update({key: fields[tag] for tag, key in MESSAGE_FIELDS.items() if tag in fields})
        event_id = f"msg:{msg_id}" if msg_id else stable_id("msg", openid, fields["CreateTime"], msg_type)
        return [{"id": event_id, "type": "wechat.message_received", "customer": customer, "occurred_at": when,
                 "payload": payload}]
    if msg_type != "event":
        return []
    name = fields.get("Event", "")
    key = fields.get("EventKey", "")
    event_id = stable_id(name.lower() or "event", openid, fields["CreateTime"], name, key)
    if name == "subscribe":
        payload = {"event_key": key, "scene": key.removeprefix("qrscene_") if key.startswith("qrscene_") else "",
                   "ticket": fields.get("Ticket", "")}
        return [{"id": event_id, "type": "wechat.subscribed", "customer": customer, "occurred_at": when,
                 "payload": payload}]
    if name == "SCAN":  # a follower scanned a parametric QR code: EventKey is the scene itself
        return [{"id": event_id, "type": "wechat.qr_scanned", "customer": customer, "occurred_at": when,
                 "payload": {"event_key": key, "scene": key, "ticket": fields.get("Ticket", "")}}]
    if name == "unsubscribe":
        return [{"id": event_id, "type": "wechat.unsubscribed", "customer": customer, "occurred_at": when,
                 "payload": {}}]
    if name in ("CLICK", "VIEW"):
        payload = {"menu_type": name.lower(), "key": key} if name == "CLICK" else {
            "menu_type": "view", "url": key, "menu_id": fields.get("MenuId", "")}
        return [{"id": event_id, "type": "wechat.menu_clicked", "customer": customer, "occurred_at": when,
                 "payload": payload}]
    if name == "TEMPLATESENDJOBFINISH":
        msg_id = (fields.get("MsgID") or fields.get("MsgId") or "").strip()
        status = fields.get("Status", "")
        return [{"id": f"template:{msg_id}" if msg_id else event_id, "type": "wechat.template_delivered",
                 "customer": customer, "occurred_at": when,
                 "payload": {"msg_id": msg_id, "status": status, "delivered": status == "success"}}]
    return []


class WeChatOAConnector(Connector):
    kind: ClassVar[str] = "wechat_oa"
    label: ClassVar[dict[str, str]] = {"zh-CN": "微信公众号", "en": "WeChat Official Account"}
    Settings: ClassVar[type[BaseModel]] = WeChatOASettings
    Secrets: ClassVar[type[BaseModel]] = WeChatOASecrets
    channels: ClassVar[tuple[str, ...]] = ("wechat_oa",)

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        query = request.query
        missing = [name for name in ("signature", "timestamp", "nonce") if not query.get(name)]
        if missing:
            raise ConnectorProtocolError(Msg("the query string lacks %(names)s: is this URL the account's "
                                             "服务器地址(URL)?", names=", ".join(missing)))
        token = secrets.token.get_secret_value()
        verify_url_signature(token, query["signature"], query["timestamp"], query["nonce"])
        if request.method == "GET":
            echostr = query.get("echostr", "")
            if not echostr:
                raise ConnectorProtocolError(Msg("URL check without echostr"))
            return InboundReply(body=echostr.encode("utf-8"))
        if request.method != "POST":
            raise ConnectorProtocolError(Msg("WeChat calls the server URL with GET or POST, not %(method)s",
                                             method=request.method))
        key = secrets.encoding_aes_key.get_secret_value()
        if query.get("encrypt_type", "raw") == "aes":
            if not key:
                raise ConnectorProtocolError(Msg("the push is encrypted (安全模式) but no EncodingAESKey is "
                                                 "configured: copy it from 服务器配置"))
            if not query.get("msg_signature"):
                raise SignatureVerificationError(Msg("an encrypted push without msg_signature"))
            crypto = WeComCrypto(token, key, settings.app_id)
            document: str | bytes = crypto.decrypt_callback(query["msg_signature"], query["timestamp"],
                                                            query["nonce"], request.body)
        else:
            if key:
                raise SignatureVerificationError(Msg("an unencrypted push, but this connector is set up for safe "
                                                     "mode (an EncodingAESKey is configured): switch the account to "
                                                     "安全模式 or clear the key"))
            self._check_fresh(query["timestamp"], settings.max_clock_skew_seconds)
            document = request.body
        events = events_from_push(document)
        if settings.lookup_followers:
            for event in events:
                if event["type"] == "wechat.subscribed" and "wechat_unionid" not in event["customer"]:
                    self._enrich(event, settings, secrets)
        return InboundReply(events=events)

    @staticmethod
    def _check_fresh(timestamp: str, window: int) -> None:
        check_fresh(timestamp, window, what="plain-mode push")

    def _enrich(self, event: dict[str, Any], settings: WeChatOASettings, secrets: WeChatOASecrets) -> None:
        openid = event["customer"]["wechat_openid"]
        try:
            follower = client_for(settings, secrets).get_follower(openid, wait=0.0, timeout=LOOKUP_TIMEOUT)
        except ApiError as exc:
            log.info("WeChat OA follower lookup skipped for event %s: %s", event["id"], exc)
            return
        if follower.unionid:
            event["customer"]["wechat_unionid"] = follower.unionid

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        openid = message.identities.get("wechat_openid")
        if not openid:
            raise WeChatOARejected(Msg("the customer has no WeChat openid for this account (they never followed it), "
                                       "so the Official Account cannot reach them; use a fallback channel"))
        client = client_for(settings, secrets)
        done = client.delivered.get(message.key)
        if done is not None:
            return done
        nested = message.options.get("channel_options")
        options = {**(nested if isinstance(nested, dict) else {}),
                   **{k: message.options[k] for k in TEMPLATE_OPTIONS if message.options.get(k) is not None}}
        template_id = options.get("template_id") or settings.default_template_id
        if template_id:
            data = dict(options.get("data") or {})
            content_key = options.get("content_key") or settings.template_content_key
            if content_key:
                data[content_key] = message.content
            if not data:
                raise WeChatOARejected(Msg("a template message needs data: set data in the message options or "
                                           "template_content_key on the connector"))
            msgid = client.send_template(openid, str(template_id), data,
                                         url=options.get("url") or settings.default_template_url,
                                         miniprogram=options.get("miniprogram"),
                                         client_msg_id=client_msg_id(message.key))
            provider_id = f"template:{msgid}"
        else:
            text = "\n".join([message.content, *message.attachments]) if message.attachments else message.content
            client.send_custom_text(openid, text)
            provider_id = f"custom:{client_msg_id(message.key)[:16]}"
        client.delivered.put(message.key, provider_id)
        return provider_id
