"""The WeCom (企业微信) connector: 客户联系 callbacks in, welcome messages and mass-send tasks out.

Inbound (``/hooks/<connector id>``, configured as the callback URL of the app that receives 客户联系
events):

* ``GET`` — URL verification: ``msg_signature``, ``timestamp``, ``nonce``, ``echostr`` (encrypted)
  → answer the decrypted echostr as plain text.
* ``POST`` — an encrypted XML callback: verify ``msg_signature``, decrypt (receive id = CorpID),
  normalise (``connectors.wecom.events``) and answer ``success``. A bad signature is a
  :class:`~connectors.errors.SignatureVerificationError` (401, nothing stored), and so is a signed
  ``timestamp`` outside ``max_clock_skew_seconds`` (default 300 s) of this server's clock: a replay.

For a new contact the connector can look the customer up (``externalcontact/get``) to add their
name and WeChat unionid to the event — best effort, bounded to a short timeout, skipped when the rate
limiter is busy, never a reason to refuse the callback.

Outbound: channel ``wecom`` (``connectors.wecom.delivery``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, OutboundMessage
from connectors.errors import ConnectorProtocolError
from connectors.replay import DEFAULT_WINDOW_SECONDS, check_fresh
from connectors.wecom.api_errors import ApiError
from connectors.wecom.client import DEFAULT_API_BASE, WeComClient, shared_client
from connectors.wecom.crypto import WeComCrypto, decode_aes_key
from connectors.wecom.delivery import deliver
from connectors.wecom.events import events_from_callback, notices_from_callback
from connectors.wecom.jsapi import DEFAULT_OAUTH_BASE
from connectors.wecom.media import media_for
from wording import Msg

log = logging.getLogger(__name__)

#: the longest a callback waits for the contact lookup (WeCom gives the whole callback 5 s)
LOOKUP_TIMEOUT = 2.0


def _api_base(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError(Msg("must be an http(s) URL such as https://qyapi.weixin.qq.com"))
    return value


class WeComSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corp_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", title="CorpID (企业ID)",
                         description="我的企业 › 企业信息 › 企业ID; also the receive id of the callback encryption")
    agent_id: int | None = Field(default=None, title="AgentId",
                                 description="the self-built app that receives the callbacks; the chat sidebar "
                                             "(聊天工具栏) runs as this app")
    oauth_base: str = Field(default=DEFAULT_OAUTH_BASE, title="OAuth base URL",
                            description="WeCom's web sign-in (open.weixin.qq.com); change only for a test server")
    api_base: str = Field(default=DEFAULT_API_BASE, title="API base URL",
                          description="WeCom's server API; change only for a proxy or a test server")
    rate_limit_per_second: float = Field(default=10.0, gt=0, le=500, title="API calls per second",
                                         description="client-side limit shared by every worker thread")
    default_sender: str | None = Field(default=None, max_length=64, title="default sender (UserID)",
                                       description="staff member who sends mass-send tasks when the customer's own "
                                                   "staff member is unknown")
    image_hosts: list[str] = Field(default_factory=list, max_length=20, title="image hosts on private networks",
                                   description="hosts whose images may be fetched although they resolve to a "
                                               "private address (an intranet CDN); public hosts need no entry")
    lookup_contacts: bool = Field(default=True, title="look up new contacts",
                                  description="add the customer's name and unionid (externalcontact/get) to "
                                              "contact_added / contact_edited events")
    max_clock_skew_seconds: int = Field(default=DEFAULT_WINDOW_SECONDS, ge=0, le=86_400,
                                        title="callback timestamp window",
                                        description="signed callbacks whose timestamp is further than this from "
                                                    "the server's clock are refused as replays (0 = no check)")

    @field_validator("api_base", "oauth_base")
    @classmethod
    def _base(cls, value: str) -> str:
        return _api_base(value)


class WeComSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(title="Token", description="the callback Token (接收事件服务器 › Token)")
    encoding_aes_key: SecretStr = Field(title="EncodingAESKey", description="43 characters, from the same page")
    secret: SecretStr = Field(title="Secret", description="the 客户联系 secret, or the secret of a self-built app "
                                                          "listed under 客户联系 › API › 可调用应用")
    archive_secret: SecretStr | None = Field(default=None, title="Archive secret (会话内容存档 Secret)",
                                             description="管理工具 › 会话内容存档 › Secret: pulls archived chats "
                                                         "through the Finance SDK")
    app_secret: SecretStr | None = Field(default=None, title="App Secret (sidebar)",
                                         description="the Secret of the AgentId app (应用管理 › 自建 › Secret): the "
                                                     "chat sidebar signs staff in and signs JS-SDK calls with it; "
                                                     "empty when Secret already is that app's")

    @field_validator("encoding_aes_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        decode_aes_key(value.get_secret_value())  # BadKey (a ValueError) names the problem, never the key
        return value

    @field_validator("token", "secret")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(Msg("must not be empty"))
        return value


def client_for(settings: WeComSettings, secrets: WeComSecrets) -> WeComClient:
    return shared_client(settings.corp_id, secrets.secret.get_secret_value(), api_base=settings.api_base,
                         rate_per_second=settings.rate_limit_per_second)


def app_client_for(settings: WeComSettings, secrets: WeComSecrets) -> WeComClient:
    """The client of the AgentId app (``app_secret``, else ``secret`` when that already is the app's): app
    messages to staff (``message/send``) go out with this app's token."""
    secret = (secrets.app_secret or secrets.secret).get_secret_value()
    return shared_client(settings.corp_id, secret, api_base=settings.api_base,
                         rate_per_second=settings.rate_limit_per_second)


class WeComConnector(Connector):
    kind: ClassVar[str] = "wecom"
    label: ClassVar[dict[str, str]] = {"zh-CN": "企业微信", "en": "WeCom"}
    Settings: ClassVar[type[BaseModel]] = WeComSettings
    Secrets: ClassVar[type[BaseModel]] = WeComSecrets
    channels: ClassVar[tuple[str, ...]] = ("wecom",)

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        crypto = WeComCrypto(secrets.token.get_secret_value(), secrets.encoding_aes_key.get_secret_value(),
                             settings.corp_id)
        query = request.query
        missing = [name for name in ("msg_signature", "timestamp", "nonce") if not query.get(name)]
        if missing:
            raise ConnectorProtocolError(Msg("the query string lacks %(value)s: is this URL configured as the app's "
                                             "callback URL (接收事件服务器)?", value=', '.join(missing)))
        if request.method == "GET":
            echostr = query.get("echostr", "")
            if not echostr:
                raise ConnectorProtocolError(Msg("URL verification without echostr"))
            # base64 has no spaces: a '+' that reached us unencoded was form-decoded into ' '
            plain = crypto.verify_url(query["msg_signature"], query["timestamp"], query["nonce"],
                                      echostr.replace(" ", "+"))
            check_fresh(query["timestamp"], settings.max_clock_skew_seconds, what="URL verification")
            return InboundReply(body=plain.encode("utf-8"))
        if request.method != "POST":
            raise ConnectorProtocolError(Msg("WeCom calls the callback URL with GET or POST, not %(method)s",
                                             method=request.method))
        document = crypto.decrypt_callback(query["msg_signature"], query["timestamp"], query["nonce"], request.body)
        check_fresh(query["timestamp"], settings.max_clock_skew_seconds, what="callback")  # signed, so a replay
        events = events_from_callback(document)
        if settings.lookup_contacts:
            for event in events:
                if event["type"] in ("wecom.contact_added", "wecom.contact_edited"):
                    self._enrich(event, settings, secrets)
        return InboundReply(events=events, notices=notices_from_callback(document))

    def _enrich(self, event: dict[str, Any], settings: WeComSettings, secrets: WeComSecrets) -> None:
        external = event["customer"]["wecom_external_userid"]
        try:
            contact = client_for(settings, secrets).get_external_contact(external, wait=0.0, timeout=LOOKUP_TIMEOUT)
        except ApiError as exc:
            log.info("WeCom contact lookup skipped for event %s: %s", event["id"], exc)
            return
        if contact.unionid:
            event["customer"]["wechat_unionid"] = contact.unionid
        profile = event.setdefault("profile", {})
        if contact.name:
            profile["name"] = contact.name[:200]
        # what the platform says of the account, for referral anti-abuse rules (activities/growth/risk.py)
        profile.setdefault("attributes", {}).update({"wecom_has_avatar": bool(contact.avatar),
                                                     "wecom_has_nickname": bool(contact.name.strip())})

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        client = client_for(settings, secrets)
        return deliver(client, message, default_sender=settings.default_sender,
                       media=media_for(client, settings.image_hosts))
