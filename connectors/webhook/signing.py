"""Tideflow's own webhook signature scheme, for inbound ``POST /api/events`` hooks and ``action.webhook``.

The sender adds one header::

    X-Tideflow-Signature: t=1700000000,v1=5f2b…e9

where ``t`` is the unix time of signing (seconds) and ``v1`` is the lower-case hex
``HMAC-SHA256(key=secret, f"{t}." + raw body)``. Signing the timestamp together with the body lets
the receiver refuse replays: a request whose ``t`` is more than ``tolerance`` seconds (default
300) away from the receiver's clock is rejected even when its signature is good.

Secret rotation: the sender may put several ``v1=`` entries in one header (one per active secret);
the request verifies when any of them matches. Entries of unknown schemes (``v0=``, ``v2=``) are
ignored, so the scheme can grow without breaking old receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from connectors.errors import SignatureVerificationError
from wording import Msg

SIGNATURE_HEADER = "X-Tideflow-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookSignatureError(SignatureVerificationError):
    """A Tideflow webhook signature did not verify."""


class MalformedSignatureHeader(WebhookSignatureError):
    """The signature header is missing or is not ``t=<unix seconds>,v1=<hex>``."""


class WebhookSignatureMismatch(WebhookSignatureError):
    """No ``v1`` entry matches HMAC-SHA256 of ``"<t>.<body>"`` under the secret."""


class TimestampOutsideTolerance(WebhookSignatureError):
    """The signature is good but ``t`` is too far from now: a replay, or a badly set clock."""


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError(Msg("the webhook secret must not be empty"))
    return key


def compute_signature(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """Lower-case hex HMAC-SHA256 of ``f"{timestamp}." + body``."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(Msg("timestamp must be a non-negative int of unix seconds, got %(timestamp)s",
                             timestamp=repr(timestamp)))
    return hmac.new(_key(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign_payload(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Tideflow-Signature`` header value for ``body`` signed at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute_signature(secret, body, timestamp)}"


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """Split a header into ``(t, [v1 signatures])``, or raise :class:`MalformedSignatureHeader`."""
    if not header or not header.strip():
        raise MalformedSignatureHeader(Msg("the %(signature_header)s header is missing",
                                           signature_header=SIGNATURE_HEADER))
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise MalformedSignatureHeader(
                Msg("%(signature_header)s must be 't=<unix seconds>,%(scheme)s=<hex>'; found an entry without '='",
                    signature_header=SIGNATURE_HEADER, scheme=SCHEME)
            )
        if name == "t":
            if timestamp is not None:
                raise MalformedSignatureHeader(Msg("%(signature_header)s has more than one t= entry",
                                                   signature_header=SIGNATURE_HEADER))
            if not _TIMESTAMP.fullmatch(value):
                raise MalformedSignatureHeader(Msg("%(signature_header)s t= must be unix seconds, got %(value)s",
                                                   signature_header=SIGNATURE_HEADER, value=repr(value)))
            timestamp = int(value)
        elif name == SCHEME and value:
            signatures.append(value)
    if timestamp is None:
        raise MalformedSignatureHeader(Msg("%(signature_header)s has no t=<unix seconds> entry",
                                           signature_header=SIGNATURE_HEADER))
    if not signatures:
        raise MalformedSignatureHeader(Msg("%(signature_header)s has no %(scheme)s=<hex> entry",
                                           signature_header=SIGNATURE_HEADER, scheme=SCHEME))
    return timestamp, signatures


def verify_signature(
    secret: str | bytes, body: bytes, header: str | None, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Raise a :class:`WebhookSignatureError` unless ``header`` signs ``body`` and is fresh.

    ``body`` is the raw request body; ``now`` is the receiver's unix time; ``tolerance`` is how many
    seconds ``t`` may differ from ``now`` either way.
    """
    if tolerance < 0:
        raise ValueError(Msg("tolerance must be >= 0 seconds, got %(tolerance)s", tolerance=tolerance))
    timestamp, signatures = parse_signature_header(header)
    expected = compute_signature(secret, body, timestamp).encode("ascii")
    matched = False
    for candidate in signatures:  # no early exit: time does not depend on which entry matched
        matched |= hmac.compare_digest(expected, candidate.lower().encode("utf-8"))
    if not matched:
        raise WebhookSignatureMismatch(
            Msg("no %(scheme)s signature in %(signature_header)s matches HMAC-SHA256 of '<t>.<body>': check that "
                "both sides use the same webhook secret and that the raw body is verified before any parsing",
                scheme=SCHEME, signature_header=SIGNATURE_HEADER)
        )
    if abs(now - timestamp) > tolerance:
        raise TimestampOutsideTolerance(
            Msg("the signature was made at t=%(timestamp)s, %(seconds)s s from now, outside the ±%(tolerance)s s "
                "window: a replayed request, or the sender's or receiver's clock is wrong", timestamp=timestamp,
                seconds=format(now - timestamp, '+d'), tolerance=tolerance)
        )
