"""Shopify webhook verification: ``X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, raw body))``.

Shopify documents the construction (shopify.dev "Verify webhooks") without a numeric example, so the
digest is pinned with RFC 4231 test case 2 (key ``Jefe``, data "what do ya want for nothing?",
HMAC-SHA256 = 5bdcc146…3843, here base64) and a UTF-8 body pinned with
``openssl dgst -sha256 -hmac … -binary | base64``.
"""

from __future__ import annotations

import pytest

from connectors.errors import SignatureVerificationError
from connectors.shopify import HMAC_HEADER, ShopifyWebhookError, compute_hmac, verify_webhook

RFC4231_BASE64 = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
SECRET = "shpss_example_secret"
BODY = '{"id":820982911946154508,"email":"jon@example.com","note":"测试"}'.encode()
BODY_HMAC = "EkZce+52cLrfcKlaQTHG3Oel0aVVyL5qCYtJ318ZjhQ="


def test_rfc4231_vector() -> None:
    assert compute_hmac("Jefe", b"what do ya want for nothing?") == RFC4231_BASE64
    verify_webhook("Jefe", b"what do ya want for nothing?", RFC4231_BASE64)


def test_utf8_body_vector() -> None:
    assert compute_hmac(SECRET, BODY) == BODY_HMAC
    verify_webhook(SECRET, BODY, BODY_HMAC)
    verify_webhook(SECRET, BODY, f" {BODY_HMAC}\n")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("wrong", BODY, BODY_HMAC),
        (SECRET, BODY + b" ", BODY_HMAC),
        (SECRET, BODY, RFC4231_BASE64),
        (SECRET, BODY, BODY_HMAC[:-4] + "AAA="),
    ],
)
def test_mismatch(secret: str, body: bytes, header: str) -> None:
    with pytest.raises(ShopifyWebhookError, match="client secret") as info:
        verify_webhook(secret, body, header)
    assert compute_hmac(secret, body) not in str(info.value)  # no signing oracle


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(ShopifyWebhookError, match="missing"):
        verify_webhook(SECRET, BODY, header)


@pytest.mark.parametrize("header", ["not base64!", "abc", "签名"])
def test_header_that_is_not_base64(header: str) -> None:
    with pytest.raises(ShopifyWebhookError, match="not base64"):
        verify_webhook(SECRET, BODY, header)


def test_header_name_and_hierarchy() -> None:
    assert HMAC_HEADER == "X-Shopify-Hmac-Sha256"
    assert issubclass(ShopifyWebhookError, SignatureVerificationError)
