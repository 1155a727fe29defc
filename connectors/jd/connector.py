"""The ``jd`` connector: orders and refund applications of one JD POP shop, polled through JOS.

Inbound only, by polling (``engine/shop_sync.py``): orders with ``jingdong.pop.order.search`` (or
``jingdong.pop.order.enSearch``, which encrypts the consignee) by modified time; refunds with
``jingdong.pop.afs.soa.refundapply.queryPageList``, once by application time and once by review time
(that API has no modified-time filter), so new applications and decisions both arrive; returns (售后服务单)
with ``jingdong.asc.query.list`` by application and approval time. What cannot be mapped is kept raw.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.jd.client import DEFAULT_GATEWAY, JosClient, asc_services
from connectors.jd.orders import ORDER_FIELDS, ORDER_STATES, asc_service_events, order_events, refund_apply_events
from connectors.polling import PollingConnector, http_url, pages_backward
from wording import Msg

#: JOS allows a month per query; a day keeps page numbers low, as JOS asks ("页数要尽量少")
MAX_WINDOW = timedelta(days=1)
ORDER_PAGE_SIZE = 100
REFUND_PAGE_SIZE = 50
REFUND_MAX_PAGES = 100
RETURN_PAGE_SIZE = 50


class JdSettings(BaseModel):
    """A JD POP shop: which app, which shop, how often to poll."""

    model_config = ConfigDict(extra="forbid")
    app_key: str = Field(min_length=1, max_length=64, description="App Key of the JOS app")
    shop: str = Field(min_length=1, max_length=80, pattern=r"^[^\s:]+$", examples=["jd-pop-1"],
                      description="your id for this shop in Tideflow; no spaces or colons")
    gateway_url: str = Field(default=DEFAULT_GATEWAY, max_length=300,
                             description="the JOS gateway (https://api.jd.com/routerjson)")
    order_api: Literal["jingdong.pop.order.search", "jingdong.pop.order.enSearch"] = Field(
        default="jingdong.pop.order.search",
        description="enSearch returns the consignee encrypted: no phone identity then")
    poll_interval_seconds: int = Field(default=60, ge=30, le=3600, description="seconds between two polls")
    backfill_hours: int = Field(default=0, ge=0, le=24 * 90,
                                description="the first poll reads this many hours back; 0: only changes from "
                                            "now on. Backfilled orders start journeys too")
    refunds: bool = Field(default=True, description="also poll refund applications")
    returns: bool = Field(default=True, description="also poll after-sale service orders (售后服务单: returns and "
                                                    "refund-only services, jingdong.asc.query.list); needs vender_id")
    vender_id: str = Field(default="", max_length=40, pattern=r"^\d*$",
                           description="the shop's JD vendor id (商家编号, buId of the after-sale APIs)")
    operator_pin: str = Field(default="tideflow", min_length=1, max_length=60,
                              description="the operator name the after-sale APIs record (operatePin / operateNick)")
    attribution: dict[str, str] = Field(default_factory=dict, examples=[{"store": "JD01"}],
                                        description="settlement parties of every order of this shop")

    @field_validator("gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class JdSecrets(BaseModel):
    """Write-only, encrypted at rest."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    app_secret: SecretStr = Field(default=SecretStr(""), description="App Secret of the JOS app")
    access_token: SecretStr = Field(default=SecretStr(""), description="the shop's access token (its authorisation)")


class JdConnector(PollingConnector):
    kind = "jd"
    label = {"zh-CN": "京东 POP（订单与退款同步）", "en": "JD POP (order and refund sync)"}
    Settings = JdSettings
    Secrets = JdSecrets
    max_window = MAX_WINDOW
    streams = ("orders", "refunds", "returns")

    def client(self, settings: JdSettings, secrets: JdSecrets) -> JosClient:
        secret = secrets.app_secret.get_secret_value()
        token = secrets.access_token.get_secret_value()
        if not secret:
            raise ValueError(Msg("app_secret is not set: paste the App Secret of the JOS app"))
        if not token:
            raise ValueError(Msg("access_token is not set: authorise the app for the shop and paste its access token"))
        return JosClient(settings.app_key, secret, token, gateway_url=settings.gateway_url)

    def poll_window(self, stream: str, start: datetime, end: datetime, settings: Any,
                    secrets: Any) -> Iterator[list[dict[str, Any]]]:
        if (stream == "refunds" and not settings.refunds) or (stream == "returns" and not settings.returns):
            return
        with self.client(settings, secrets) as client:
            if stream == "orders":
                for orders in pages_backward(lambda n: client.order_search(
                        settings.order_api, start, end, n, ORDER_PAGE_SIZE, ORDER_STATES, ORDER_FIELDS),
                        ORDER_PAGE_SIZE):
                    yield [e for o in orders for e in order_events(o, shop=settings.shop,
                                                                  attribution=settings.attribution)]
            elif stream == "returns":
                if not settings.vender_id:
                    return  # documented: returns need the vendor id
                for by in ("apply", "approve"):
                    for services in pages_backward(
                            lambda n, by=by: asc_services(client, by, start, end, n, RETURN_PAGE_SIZE,  # type: ignore[misc]
                                                          settings.vender_id, settings.operator_pin),
                            RETURN_PAGE_SIZE, REFUND_MAX_PAGES):
                        yield [e for s in services for e in asc_service_events(s, shop=settings.shop)]
            elif stream == "refunds":
                for by in ("apply", "check"):
                    for applies in pages_backward(
                            lambda n, by=by: client.refund_applies(by, start, end, n, REFUND_PAGE_SIZE),  # type: ignore[misc]
                            REFUND_PAGE_SIZE, REFUND_MAX_PAGES):
                        yield [e for a in applies for e in refund_apply_events(a, shop=settings.shop)]
            else:
                raise ValueError(Msg("unknown stream '%(stream)s'; jd polls orders, refunds and returns",
                                     stream=stream))
