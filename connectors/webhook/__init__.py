"""Tideflow's own webhooks (inbound events, ``action.webhook``). The protocol layer: HMAC signatures."""

from connectors.webhook.signing import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    MalformedSignatureHeader,
    TimestampOutsideTolerance,
    WebhookSignatureError,
    WebhookSignatureMismatch,
    compute_signature,
    parse_signature_header,
    sign_payload,
    verify_signature,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "MalformedSignatureHeader",
    "TimestampOutsideTolerance",
    "WebhookSignatureError",
    "WebhookSignatureMismatch",
    "compute_signature",
    "parse_signature_header",
    "sign_payload",
    "verify_signature",
]
