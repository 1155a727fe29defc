"""Tideflow's own webhook signature: ``X-Tideflow-Signature: t=<ts>,v1=<hex HMAC-SHA256("<ts>.<body>")>``.

The scheme is ours, so there is no outside vector; the digest is pinned with an independent
implementation: ``printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test_secret``.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import SignatureVerificationError
from connectors.webhook import (
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

SECRET = "whsec_test_secret"
BODY = b'{"type":"order.paid","id":"evt_1","payload":{"amount_fen":1999}}'
T = 1700000000
V1 = "4b4b31d7c8007621a5c2675ec14c034633bd6d50411dabfef6db1e4632bed2d0"  # openssl dgst -sha256 -hmac
HEADER = f"t={T},v1={V1}"


def test_pinned_signature() -> None:
    assert compute_signature(SECRET, BODY, T) == V1
    assert sign_payload(SECRET, BODY, T) == HEADER
    assert sign_payload(SECRET.encode(), BODY, T) == HEADER


def test_constants() -> None:
    assert SIGNATURE_HEADER == "X-Tideflow-Signature"
    assert DEFAULT_TOLERANCE == 300


@pytest.mark.parametrize("now", [T, T + 300, T - 300, T + 1])
def test_verifies_inside_the_window(now: int) -> None:
    verify_signature(SECRET, BODY, HEADER, now=now)


@pytest.mark.parametrize("now", [T + 301, T - 301, T + 86_400])
def test_replay_outside_the_window(now: int) -> None:
    with pytest.raises(TimestampOutsideTolerance, match="±300 s"):
        verify_signature(SECRET, BODY, HEADER, now=now)


def test_custom_tolerance() -> None:
    verify_signature(SECRET, BODY, HEADER, now=T + 3600, tolerance=3600)
    with pytest.raises(TimestampOutsideTolerance):
        verify_signature(SECRET, BODY, HEADER, now=T + 1, tolerance=0)
    with pytest.raises(ValueError, match="tolerance"):
        verify_signature(SECRET, BODY, HEADER, now=T, tolerance=-1)


def test_forged_old_message_is_reported_as_a_mismatch() -> None:
    with pytest.raises(WebhookSignatureMismatch):
        verify_signature(SECRET, BODY + b" ", HEADER, now=T + 10_000)


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("other-secret", BODY, HEADER),
        (SECRET, BODY.replace(b"1999", b"2999"), HEADER),
        (SECRET, BODY, f"t={T + 1},v1={V1}"),  # the timestamp is signed too
        (SECRET, BODY, f"t={T},v1={'0' * 64}"),
        (SECRET, BODY, f"t={T},v1=签名"),
    ],
)
def test_mismatch(secret: str, body: bytes, header: str) -> None:
    with pytest.raises(WebhookSignatureMismatch, match="same webhook secret") as info:
        verify_signature(secret, body, header, now=T)
    assert compute_signature(secret, body, parse_signature_header(header)[0]) not in str(info.value)


def test_rotation_any_v1_entry_may_match() -> None:
    old = compute_signature("old-secret", BODY, T)
    header = f"t={T},v1={old},v1={V1}"
    verify_signature(SECRET, BODY, header, now=T)
    verify_signature("old-secret", BODY, header, now=T)


def test_unknown_schemes_and_whitespace_are_tolerated() -> None:
    verify_signature(SECRET, BODY, f" t = {T} , v0=deadbeef, v1={V1.upper()} ,v2=x", now=T)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        (f"v1={V1}", "no t="),
        (f"t={T}", "no v1="),
        (f"t={T},v1=", "no v1="),
        (f"t={T},t={T},v1={V1}", "more than one t="),
        (f"t=abc,v1={V1}", "unix seconds"),
        (f"t=-5,v1={V1}", "unix seconds"),
        (f"t=1e9,v1={V1}", "unix seconds"),
        (f"t={'9' * 13},v1={V1}", "unix seconds"),
        (f"t={T};v1={V1}", "unix seconds"),
        (f"t={T},{V1}", "without '='"),
    ],
)
def test_malformed_headers(header: str | None, message: str) -> None:
    with pytest.raises(MalformedSignatureHeader, match=message):
        verify_signature(SECRET, BODY, header, now=T)


@pytest.mark.parametrize("timestamp", [-1, True, 1.5, "1700000000"])
def test_sign_refuses_bad_timestamps(timestamp: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        sign_payload(SECRET, BODY, cast(Any, timestamp))


@pytest.mark.parametrize("secret", ["", b""])
def test_empty_secret_is_refused(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign_payload(secret, BODY, T)


def test_hierarchy() -> None:
    for cls in (MalformedSignatureHeader, TimestampOutsideTolerance, WebhookSignatureMismatch):
        assert issubclass(cls, WebhookSignatureError)
    assert issubclass(WebhookSignatureError, SignatureVerificationError)


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=64),
    body=st.binary(max_size=2048),
    timestamp=st.integers(min_value=0, max_value=10**12 - 1),
    skew=st.integers(min_value=-DEFAULT_TOLERANCE, max_value=DEFAULT_TOLERANCE),
)
def test_round_trip(secret: bytes, body: bytes, timestamp: int, skew: int) -> None:
    header = sign_payload(secret, body, timestamp)
    assert parse_signature_header(header) == (timestamp, [compute_signature(secret, body, timestamp)])
    verify_signature(secret, body, header, now=timestamp + skew)
    with pytest.raises(WebhookSignatureMismatch):
        verify_signature(secret, body + b"x", header, now=timestamp)
