"""The Shopify connector: order and refund webhooks in, canonical order/refund events out.

Inbound (``POST /hooks/<connector id>``, the webhook subscriptions' address):

1. ``X-Shopify-Hmac-Sha256`` must be the base64 HMAC-SHA256 of the raw body under the app's client
   secret (:mod:`connectors.shopify.verify`, constant time). During a secret rotation the previous
   secret is accepted too. ``X-Shopify-Shop-Domain`` must be the configured shop. Otherwise 401,
   nothing stored.
2. Topics (``X-Shopify-Topic``): ``orders/create`` → ``order.created``, ``orders/paid`` → ``order.paid``,
   ``orders/fulfilled`` → ``order.shipped``, ``orders/cancelled`` → ``order.cancelled``,
   ``refunds/create`` → ``refund.completed`` (the order is fetched with the Admin API for the buyer;
   if Shopify cannot be reached the webhook is answered 503 and Shopify retries). Other topics are
   acknowledged without events; so are test orders when ``ignore_test_orders`` is on.
3. Event ids are ``shopify:<shop>:<X-Shopify-Webhook-Id>``: a redelivery is stored once.

There is no outbound message channel.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, Unmapped
from connectors.errors import ConnectorProtocolError
from connectors.shopify.client import DEFAULT_API_VERSION, ShopifyAdminClient, ShopifyApiError
from connectors.shopify.inbound import (
    DOMAIN,
    ORDER_TOPICS,
    REFUND_TOPICS,
    order_from_payload,
    parse_body,
    parse_time,
    refund_from_payload,
)
from connectors.shopify.verify import ShopifyWebhookError, verify_webhook
from wording import Msg, message_of

log = logging.getLogger(__name__)


class ShopifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shop_domain: str = Field(min_length=1, max_length=120, title="shop domain",
                             examples=["tideflow-demo.myshopify.com"],
                             description="the shop's myshopify.com domain (X-Shopify-Shop-Domain)")
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^(\d{4}-\d{2}|unstable)$", title="API version",
                             description="Admin API version used to fetch orders, e.g. 2025-07")
    api_base: str = Field(default="", max_length=200, title="API base URL",
                          description="empty: https://<shop domain>; set only for a proxy or a test server")
    api_timeout_seconds: float = Field(default=3.0, gt=0, le=30, title="API timeout (s)")
    ignore_test_orders: bool = Field(default=True, title="ignore test orders",
                                     description="orders paid with the Bogus gateway (\"test\": true) give no events")

    @field_validator("shop_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").rstrip("/")
        if not DOMAIN.match(value):
            raise ValueError(Msg("must be the shop's myshopify.com domain, e.g. tideflow-demo.myshopify.com"))
        return value

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(Msg("must be empty or an http(s) URL"))
        return value


class ShopifySecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_secret: SecretStr = Field(title="client secret", description="the app's client secret (API secret key): "
                                                                        "verifies X-Shopify-Hmac-Sha256")
    previous_webhook_secret: SecretStr = Field(default=SecretStr(""), title="previous client secret",
                                               description="accepted too while a rotated secret rolls out; clear it "
                                                           "afterwards")
    admin_access_token: SecretStr = Field(title="Admin API access token",
                                          description="shpat_… with read_orders: fetches the order of a refund")

    @field_validator("webhook_secret", "admin_access_token")
    @classmethod
    def _filled(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(Msg("must not be empty"))
        return value


def verify(secrets: ShopifySecrets, body: bytes, header: str | None) -> None:
    """The current secret, or during a rotation the previous one, must sign ``body``."""
    try:
        verify_webhook(secrets.webhook_secret.get_secret_value(), body, header)
    except ShopifyWebhookError:
        previous = secrets.previous_webhook_secret.get_secret_value()
        if not previous:
            raise
        verify_webhook(previous, body, header)


class ShopifyConnector(Connector):
    kind: ClassVar[str] = "shopify"
    label: ClassVar[dict[str, str]] = {"zh-CN": "Shopify 店铺", "en": "Shopify"}
    Settings: ClassVar[type[BaseModel]] = ShopifySettings
    Secrets: ClassVar[type[BaseModel]] = ShopifySecrets

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        if request.method != "POST":
            raise ConnectorProtocolError(Msg("Shopify sends webhooks with POST, not %(method)s", method=request.method))
        headers = request.headers
        verify(secrets, request.body, headers.get("x-shopify-hmac-sha256"))
        shop = headers.get("x-shopify-shop-domain", "").strip().lower()
        if shop != settings.shop_domain:
            raise ShopifyWebhookError(Msg("the webhook is from shop %(value)s, not %(shop_domain)s: check which "
                                          "connector's URL the subscription points to", value=repr(shop[:80]),
                                          shop_domain=settings.shop_domain))
        topic = headers.get("x-shopify-topic", "").strip()
        webhook_id = headers.get("x-shopify-webhook-id", "").strip()
        if not topic:
            raise ConnectorProtocolError(Msg("the X-Shopify-Topic header is missing"))
        payload = parse_body(request.body)
        if topic not in ORDER_TOPICS and topic not in REFUND_TOPICS:  # kept raw: visible, counted, not lost
            return InboundReply(body=b"", status=200, unmapped=[Unmapped(
                reason=Msg("topic %(topic)s gives no event", topic=topic[:80]),
                raw=request.body.decode("utf-8", "replace"),
                message_id=webhook_id[:80], kind=topic[:80])])
        if not webhook_id or len(webhook_id) > 80:
            raise ConnectorProtocolError(Msg("the X-Shopify-Webhook-Id header is missing or too long"))
        triggered = parse_time(headers.get("x-shopify-triggered-at"))
        if topic in ORDER_TOPICS:
            if settings.ignore_test_orders and payload.get("test") is True:
                return InboundReply(body=b"", status=200)
            return InboundReply(events=[order_from_payload(payload, shop, ORDER_TOPICS[topic], webhook_id, triggered)],
                                body=b"")
        client = ShopifyAdminClient(shop, secrets.admin_access_token.get_secret_value(),
                                    api_version=settings.api_version, api_base=settings.api_base,
                                    timeout=settings.api_timeout_seconds, max_wait=settings.api_timeout_seconds)
        try:
            order = client.get_order(str(payload.get("order_id") or ""))
        except ValueError as exc:
            raise ConnectorProtocolError(Msg("refunds/create: %(exc)s", exc=message_of(exc))) from None
        except ShopifyApiError as exc:
            log.warning("Shopify webhook %s (%s) deferred: %s", webhook_id, topic, exc)
            return InboundReply(status=503, body=json.dumps({"error": f"retry later: {exc}"}),
                                content_type="application/json")
        finally:
            client.close()
        if settings.ignore_test_orders and order.get("test") is True:
            return InboundReply(body=b"", status=200)
        return InboundReply(events=[refund_from_payload(payload, order, shop, REFUND_TOPICS[topic], webhook_id,
                                                        triggered)], body=b"")
