"""Shopify webhook verification.

Shopify signs each webhook with the app's client secret (shopify.dev, "Verify webhooks"):
``X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(key=client_secret, raw body))``. The digest must be
computed over the raw body bytes, before any JSON parsing, and compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from connectors.errors import SignatureVerificationError
from wording import Msg

HMAC_HEADER = "X-Shopify-Hmac-Sha256"


class ShopifyWebhookError(SignatureVerificationError):
    """A Shopify webhook did not verify."""


def compute_hmac(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value of ``body``: base64 of its HMAC-SHA256 under ``secret``."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def verify_webhook(secret: str, body: bytes, hmac_header: str | None) -> None:
    """Raise :class:`ShopifyWebhookError` unless ``hmac_header`` signs ``body`` (constant time)."""
    if not hmac_header or not hmac_header.strip():
        raise ShopifyWebhookError(Msg("the %(hmac_header)s header is missing: this request did not come from Shopify",
                                      hmac_header=HMAC_HEADER))
    try:
        given = base64.b64decode(hmac_header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ShopifyWebhookError(Msg("the %(hmac_header)s header is not base64", hmac_header=HMAC_HEADER)) from exc
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise ShopifyWebhookError(
            Msg("%(hmac_header)s does not match HMAC-SHA256 of the body: check that the secret is the app's client "
                "secret (API secret key), and verify the raw body bytes before any JSON parsing",
                hmac_header=HMAC_HEADER)
        )
