"""Youzan push verification: ``Event-Sign = MD5(client_id + body + client_secret)``.

Youzan publishes the formula (developers.youzanyun.com "消息推送数据 MD5 校验示例") but no numeric
example, so the concatenation order is pinned with the RFC 1321 test suite (MD5("abc") =
900150983cd24fb0d6963f7d28e17f72) and a realistic push with ``openssl dgst -md5``.
"""

from __future__ import annotations

import pytest

from connectors.errors import SignatureVerificationError
from connectors.youzan import YouzanSignatureError, compute_event_sign, verify_event_sign

CLIENT_ID = "yz_client_id_123"
CLIENT_SECRET = "yz_client_secret_abc"
BODY = (
    b'{"client_id":"yz_client_id_123","id":"E20240101000000000001","kdt_id":12345,'
    b'"msg":"%7B%22tid%22%3A%22E2024%22%7D","type":"trade_TradePaid","version":1704067200}'
)
EVENT_SIGN = "3e749cbef04e58301a611defe41694d2"  # openssl dgst -md5 over client_id + body + client_secret


def test_concatenation_order_rfc1321() -> None:
    assert compute_event_sign("a", "c", b"b") == "900150983cd24fb0d6963f7d28e17f72"


def test_push_vector() -> None:
    assert compute_event_sign(CLIENT_ID, CLIENT_SECRET, BODY) == EVENT_SIGN


def test_verify() -> None:
    verify_event_sign(CLIENT_ID, CLIENT_SECRET, BODY, EVENT_SIGN)
    verify_event_sign(CLIENT_ID, CLIENT_SECRET, BODY, EVENT_SIGN.upper(), header_client_id=CLIENT_ID)


def test_the_msg_field_is_signed_url_encoded_as_received() -> None:
    decoded = BODY.replace(b"%7B%22tid%22%3A%22E2024%22%7D", b'{"tid":"E2024"}')
    with pytest.raises(YouzanSignatureError, match="before any decoding"):
        verify_event_sign(CLIENT_ID, CLIENT_SECRET, decoded, EVENT_SIGN)


@pytest.mark.parametrize(
    ("client_id", "secret", "event_sign"),
    [
        ("other_client", CLIENT_SECRET, EVENT_SIGN),
        (CLIENT_ID, "wrong", EVENT_SIGN),
        (CLIENT_ID, CLIENT_SECRET, "0" * 32),
        (CLIENT_ID, CLIENT_SECRET, ""),
    ],
)
def test_mismatch(client_id: str, secret: str, event_sign: str) -> None:
    with pytest.raises(YouzanSignatureError, match="client_secret") as info:
        verify_event_sign(client_id, secret, BODY, event_sign)
    assert EVENT_SIGN not in str(info.value)


def test_push_for_another_client() -> None:
    with pytest.raises(YouzanSignatureError, match="Client-Id 'someone_else'"):
        verify_event_sign(CLIENT_ID, CLIENT_SECRET, BODY, EVENT_SIGN, header_client_id="someone_else")


def test_error_is_a_signature_verification_error() -> None:
    assert issubclass(YouzanSignatureError, SignatureVerificationError)
