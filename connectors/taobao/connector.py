"""The ``taobao`` connector: orders and refunds of one Taobao or Tmall shop, polled through TOP.

Inbound only, by polling: the engine asks every ``poll_interval_seconds`` for what changed since its
cursor (``engine/shop_sync.py``); this class turns TOP's answers into canonical ``order.*`` and
``refund.*`` events (channel ``tmall`` or ``taobao`` by ``shop_type``). With ``tmc`` on, it also reads
Taobao's message service every ``tmc_interval_seconds`` (:mod:`connectors.taobao.tmc`), and the windows
become the safety net behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.polling import MessageBatch, PollingConnector, http_url, pages_backward
from connectors.taobao import tmc
from connectors.taobao.client import DEFAULT_GATEWAY, TopClient
from connectors.taobao.orders import REFUND_FIELDS, TRADE_FIELDS, refund_events, trade_events
from connectors.taobao.signing import SIGN_METHODS
from wording import Msg

#: TOP: end_modified - start_modified ≤ 1 day
MAX_WINDOW = timedelta(days=1)
PAGE_SIZE = 50  # TOP suggests 40–50 per page for the increment API


class TaobaoSettings(BaseModel):
    """A Taobao/Tmall shop: which app, which shop, how often to poll."""

    model_config = ConfigDict(extra="forbid")
    app_key: str = Field(min_length=1, max_length=40, description="App Key (控制台 › 应用管理 › 应用证书)")
    shop: str = Field(min_length=1, max_length=80, pattern=r"^[^\s:]+$", examples=["tmall-flagship"],
                      description="your id for this shop in Tideflow (orders are keyed channel + shop + order id); "
                                  "no spaces or colons")
    shop_type: Literal["taobao", "tmall"] = Field(
        default="taobao", description="tmall: orders come in channel 'tmall'; taobao: channel 'taobao'")
    gateway_url: str = Field(default=DEFAULT_GATEWAY, max_length=300,
                             description="the TOP router (https://eco.taobao.com/router/rest)")
    sign_method: Literal["md5", "hmac", "hmac-sha256"] = Field(default="hmac-sha256",
                                                               description="how requests are signed")
    poll_interval_seconds: int = Field(default=60, ge=30, le=3600, description="seconds between two polls")
    backfill_hours: int = Field(default=0, ge=0, le=24 * 90,
                                description="the first poll reads this many hours back (TOP keeps 3 months); "
                                            "0: only changes from now on. Backfilled orders start journeys too")
    refunds: bool = Field(default=True, description="also poll refunds (taobao.refunds.receive.get)")
    attribution: dict[str, str] = Field(default_factory=dict, examples=[{"store": "TM01"}],
                                        description="settlement parties of every order of this shop")
    tmc: bool = Field(default=False, description="also read Taobao's message service (消息服务, TMC): trade and "
                                                 "refund messages arrive within tmc_interval_seconds; needs the "
                                                 "topics subscribed and the shop permitted (taobao.tmc.user.permit)")
    tmc_group: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$",
                           description="the TMC user group this shop is in; empty: the default group")
    tmc_interval_seconds: int = Field(default=10, ge=5, le=300, description="seconds between two reads of TMC")
    seller_nick: str = Field(default="", max_length=120,
                             description="the shop's seller nick: TMC messages of other sellers are kept as "
                                         "unmapped (empty: every message of the group is this shop's)")

    @field_validator("gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @property
    def channel(self) -> str:
        return self.shop_type


class TaobaoSecrets(BaseModel):
    """Write-only, encrypted at rest."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    app_secret: SecretStr = Field(default=SecretStr(""), description="App Secret of the app")
    session_key: SecretStr = Field(default=SecretStr(""),
                                   description="the shop's session key (access_token from the shop's authorisation)")


class TaobaoConnector(PollingConnector):
    kind = "taobao"
    label = {"zh-CN": "淘宝 / 天猫（订单与退款同步）", "en": "Taobao / Tmall (order and refund sync)"}
    Settings = TaobaoSettings
    Secrets = TaobaoSecrets
    max_window = MAX_WINDOW

    def client(self, settings: TaobaoSettings, secrets: TaobaoSecrets) -> TopClient:
        secret = secrets.app_secret.get_secret_value()
        session = secrets.session_key.get_secret_value()
        if not secret:
            raise ValueError(Msg("app_secret is not set: paste the App Secret (控制台 › 应用管理 › 应用证书)"))
        if not session:
            raise ValueError(Msg("session_key is not set: authorise the app for the shop and paste its session key"))
        return TopClient(settings.app_key, secret, session, gateway_url=settings.gateway_url,
                         sign_method=settings.sign_method if settings.sign_method in SIGN_METHODS else "md5")

    def consume_interval(self, settings: TaobaoSettings) -> int | None:
        return settings.tmc_interval_seconds if settings.tmc else None

    def consume(self, settings: TaobaoSettings, secrets: TaobaoSecrets) -> Iterator[MessageBatch]:
        if not settings.tmc:
            return
        with self.client(settings, secrets) as client:
            yield from tmc.consume(client, group=settings.tmc_group, shop=settings.shop, channel=settings.channel,
                                   attribution=settings.attribution, seller_nick=settings.seller_nick)

    def poll_window(self, stream: str, start: datetime, end: datetime, settings: Any,
                    secrets: Any) -> Iterator[list[dict[str, Any]]]:
        if stream == "refunds" and not settings.refunds:
            return
        with self.client(settings, secrets) as client:
            if stream == "orders":
                for trades in pages_backward(
                        lambda n: client.trades_sold_increment(start, end, n, PAGE_SIZE, TRADE_FIELDS), PAGE_SIZE):
                    yield [e for t in trades for e in trade_events(t, shop=settings.shop, channel=settings.channel,
                                                                  attribution=settings.attribution)]
            elif stream == "refunds":
                for refunds in pages_backward(
                        lambda n: client.refunds_receive(start, end, n, PAGE_SIZE, REFUND_FIELDS), PAGE_SIZE):
                    yield [e for r in refunds for e in refund_events(r, shop=settings.shop, channel=settings.channel)]
            else:
                raise ValueError(Msg("unknown stream '%(stream)s'; taobao polls orders and refunds", stream=stream))
