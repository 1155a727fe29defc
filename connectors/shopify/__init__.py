"""Shopify connector: webhook verification (``verify``), normalising webhooks to canonical order/refund
events (``inbound``), the Admin API client (``client``) and the connector (``connector``)."""

from connectors.shopify.verify import HMAC_HEADER, ShopifyWebhookError, compute_hmac, verify_webhook

__all__ = ["HMAC_HEADER", "ShopifyWebhookError", "compute_hmac", "verify_webhook"]
