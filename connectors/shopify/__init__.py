"""Shopify connector. The protocol layer: webhook verification."""

from connectors.shopify.verify import HMAC_HEADER, ShopifyWebhookError, compute_hmac, verify_webhook

__all__ = ["HMAC_HEADER", "ShopifyWebhookError", "compute_hmac", "verify_webhook"]
